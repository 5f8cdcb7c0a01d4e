//! `balance hash <expr>` over the layer-4 fetches a TCP proxy knows at connect time: `src`,
//! `src_port`, `dst`, `dst_port`. The sample is hashed as HAProxy's binary form (address
//! bytes in network order; a port as an 8-byte big-endian integer), or as its text with
//! `hash-type ... none`, then placed through the map or the ring.
use std::net::IpAddr;
use std::sync::Arc;

use super::hashfn::{HashFunc, HashType};
use super::lookup::HashTable;
use super::{Balancer, PickCtx};
use crate::runtime::state::ServerState;

/// A layer-4 sample fetch (typed by the model).
pub use crate::model::balance::HashFetch as Fetch;

/// The expression `balance hash` hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashExpr {
    pub fetch: Fetch,
}

impl HashExpr {
    /// The sample's bytes as the hash function sees them, or None when it is not available.
    fn key(&self, ctx: &PickCtx, text: bool) -> Option<Vec<u8>> {
        let addr = |a: IpAddr| match (a, text) {
            (_, true) => a.to_string().into_bytes(),
            (IpAddr::V4(v4), false) => v4.octets().to_vec(),
            (IpAddr::V6(v6), false) => v6.octets().to_vec(),
        };
        let port = |p: u16| if text { p.to_string().into_bytes() } else { u64::from(p).to_be_bytes().to_vec() };
        match self.fetch {
            Fetch::Src => ctx.src.map(addr),
            Fetch::Dst => ctx.dst.map(addr),
            Fetch::SrcPort => ctx.src_port.map(port),
            Fetch::DstPort => ctx.dst_port.map(port),
        }
    }
}

#[derive(Debug)]
pub struct Hash {
    expr: HashExpr,
    table: HashTable,
}

impl Hash {
    pub fn new(expr: HashExpr, kind: HashType, factor: Option<u32>, allbackups: bool) -> Hash {
        Hash { expr, table: HashTable::new(kind, factor, allbackups) }
    }
}

impl Balancer for Hash {
    /// O(servers + key length) plus the map or ring lookup.
    fn kind(&self) -> super::LbKind {
        super::LbKind::Hashed
    }

    fn needs_dst(&self) -> bool {
        matches!(self.expr.fetch, Fetch::Dst | Fetch::DstPort)
    }

    fn pick(&mut self, servers: &[Arc<ServerState>], ctx: &PickCtx) -> Option<usize> {
        let kind = self.table.kind;
        // A missing sample means round robin, as HAProxy does.
        let hash = self.expr.key(ctx, kind.func == HashFunc::None).map(|k| kind.hash(&k));
        self.table.pick(servers, hash, ctx.avoid)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::atomic::Ordering;

    use super::super::build;
    use super::super::hashfn::{full_hash, sdbm};
    use super::super::tests::typed;
    use super::super::testutil::*;
    use super::*;

    fn hash(expr: &str, hash_type: &[&str], factor: Option<u32>) -> Box<dyn Balancer> {
        let spec = typed(&["hash", expr], hash_type).unwrap();
        build(&super::super::Balance { hash_balance_factor: factor, ..spec }).unwrap()
    }

    fn conn(src: [u8; 4], sport: u16, dport: u16) -> PickCtx {
        PickCtx {
            src: Some(IpAddr::V4(Ipv4Addr::from(src))),
            src_port: Some(sport),
            dst: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            dst_port: Some(dport),
            avoid: None,
        }
    }

    #[test]
    fn hash_src_places_clients_as_haproxy_does() {
        // Observed from HAProxy 2.6: clients 127.0.0.1 to .40, weights 1, 1, 1, 2.
        let run = |hash_type: &[&str]| {
            let servers = farm(&[1, 1, 1, 2]);
            let mut b = hash("src", hash_type, None);
            (1..=40u8)
                .filter_map(|n| b.pick(&servers, &conn([127, 0, 0, n], 1, 1)))
                .map(|i| (b'A' + i as u8) as char)
                .collect::<String>()
        };
        assert_eq!(run(&["map-based", "wt6"]), "DAADCABDDDDDADACCAADCDABBAAABDACCBBCDBDC");
        assert_eq!(run(&["consistent", "djb2"]), "B".repeat(40));
    }

    #[test]
    fn hash_src_is_sdbm_of_the_address_bytes_modulo_weight() {
        let servers = farm(&[1, 1, 1]);
        let mut b = hash("src", &[], None);
        let want = (sdbm(&[10, 1, 2, 3]) % 3) as usize;
        assert_eq!(b.pick(&servers, &conn([10, 1, 2, 3], 1, 1)), Some(want));
    }

    #[test]
    fn hash_port_is_hashed_as_an_eight_byte_integer() {
        let servers = farm(&[1, 1, 1, 1, 1]);
        let mut b = hash("src_port", &["map-based", "djb2", "avalanche"], None);
        let want = (full_hash(super::super::hashfn::djb2(&4242u64.to_be_bytes())) % 5) as usize;
        assert_eq!(b.pick(&servers, &conn([10, 0, 0, 1], 4242, 80)), Some(want));
    }

    #[test]
    fn hash_type_none_uses_the_port_number_itself() {
        let servers = farm(&[1, 1, 1, 1]);
        let mut b = hash("dst_port", &["map-based", "none"], None);
        assert_eq!(b.pick(&servers, &conn([10, 0, 0, 1], 1, 8082)), Some(8082 % 4));
    }

    #[test]
    fn hash_is_stable_per_key_and_spreads_over_keys() {
        for ht in [&["map-based", "crc32"][..], &["consistent", "wt6"], &["consistent"]] {
            let servers = farm(&[1, 1, 1]);
            let mut b = hash("src_port", ht, None);
            let mut got = Vec::new();
            for port in 1000..1600u16 {
                let ctx = conn([10, 0, 0, 1], port, 80);
                let first = b.pick(&servers, &ctx);
                assert_eq!(b.pick(&servers, &ctx), first);
                got.extend(first);
            }
            assert!(counts(&got, 3).iter().all(|&c| c > 100), "{ht:?}: {:?}", counts(&got, 3));
        }
    }

    #[test]
    fn hash_without_the_sample_falls_back_to_round_robin() {
        let servers = farm(&[1, 1, 1]);
        let mut b = hash("src", &[], None);
        assert_eq!(picks(b.as_mut(), &servers, 6), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn hash_never_picks_down_maintenance_or_weightless_servers() {
        let servers = farm(&[1, 1, 0, 1]);
        down(&servers[0]);
        servers[1].maintenance.store(true, Ordering::Release);
        for ht in [&[][..], &["consistent"]] {
            let mut b = hash("src_port", ht, None);
            for port in 0..200 {
                assert_eq!(b.pick(&servers, &conn([10, 0, 0, 1], port, 80)), Some(3));
            }
        }
    }

    #[test]
    fn hash_balance_factor_bounds_the_load_of_a_hot_key() {
        // Every session carries the same key; unbounded, they all land on one server.
        let servers = farm(&[1, 1, 1, 1]);
        let ctx = conn([10, 0, 0, 1], 5555, 80);
        let open = |b: &mut dyn Balancer| {
            for s in &servers {
                s.cur.store(0, Ordering::Release);
            }
            for _ in 0..100 {
                let i = b.pick(&servers, &ctx).unwrap();
                servers[i].cur.fetch_add(1, Ordering::AcqRel);
            }
            servers.iter().map(|s| s.cur.load(Ordering::Acquire)).collect::<Vec<_>>()
        };
        let unbounded = open(hash("src_port", &["consistent"], None).as_mut());
        assert_eq!(unbounded.iter().max(), Some(&100));
        let bounded = open(hash("src_port", &["consistent"], Some(125)).as_mut());
        // Average 25 per server; 125% of it is about 32 (rounded up over the new session).
        assert!(bounded.iter().all(|&c| c <= 32), "{bounded:?}");
        assert_eq!(bounded.iter().sum::<u32>(), 100);
    }

    #[test]
    fn hash_rejects_fetches_the_tcp_runtime_does_not_have() {
        assert!(build(&typed(&["hash", "req.hdr(host)"], &[]).unwrap()).is_err());
        assert!(build(&typed(&["hash", "dst"], &[]).unwrap()).unwrap().needs_dst());
    }
}
