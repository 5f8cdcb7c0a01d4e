//! `balance source`: the client's address designates the server, through the weighted map
//! (`hash-type map-based`, the default) or the consistent ring (`hash-type consistent`).
use std::net::IpAddr;
use std::sync::Arc;

use super::hashfn::HashType;
use super::lookup::HashTable;
use super::{Balancer, PickCtx};
use crate::runtime::state::ServerState;

#[derive(Debug)]
pub struct Source {
    table: HashTable,
}

impl Source {
    pub fn new(kind: HashType, factor: Option<u32>, allbackups: bool) -> Source {
        Source { table: HashTable::new(kind, factor, allbackups) }
    }
}

/// The address's 32-bit big-endian words XORed together (HAProxy ignores the hash function
/// here and applies only the avalanche modifier).
fn address_hash(addr: IpAddr, kind: &HashType) -> u32 {
    let h = match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v >> 96) as u32 ^ (v >> 64) as u32 ^ (v >> 32) as u32 ^ v as u32
        }
    };
    kind.finish(h)
}

impl Balancer for Source {
    /// O(servers) plus an O(1) map or O(log points) ring lookup in the usual case.
    fn kind(&self) -> super::LbKind {
        super::LbKind::Hashed
    }

    fn pick(&mut self, servers: &[Arc<ServerState>], ctx: &PickCtx) -> Option<usize> {
        // Without a client address (a unix socket), round robin applies.
        let hash = ctx.src.map(|a| address_hash(a, &self.table.kind));
        self.table.pick(servers, hash, ctx.avoid)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::atomic::Ordering;

    use super::super::build;
    use super::super::tests::typed;
    use super::super::testutil::*;
    use super::*;

    fn source(hash_type: &[&str]) -> Box<dyn Balancer> {
        build(&typed(&["source"], hash_type).unwrap()).unwrap()
    }

    fn from(ip: IpAddr) -> PickCtx {
        PickCtx { src: Some(ip), ..PickCtx::default() }
    }

    fn client(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    /// Servers picked for clients 127.0.0.1 to 127.0.0.40 over weights 1, 1, 1, 2, as letters.
    fn loopback_clients(b: &mut dyn Balancer) -> String {
        let servers = farm(&[1, 1, 1, 2]);
        (1..=40u8)
            .filter_map(|n| b.pick(&servers, &from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))))
            .map(|i| (b'A' + i as u8) as char)
            .collect()
    }

    #[test]
    fn source_places_clients_as_haproxy_does() {
        // Observed from HAProxy 2.6 with the same servers and client addresses.
        assert_eq!(loopback_clients(source(&["map-based"]).as_mut()), "CDABDCDABDCDABDCDABDCDABDCDABDCDABDCDABD");
        assert_eq!(loopback_clients(source(&["consistent"]).as_mut()), "DDDADACADDBDDCDAADADADBDAAADDABDDCDDADDD");
    }

    #[test]
    fn source_is_stable_per_address() {
        for ht in [&[][..], &["consistent"]] {
            let servers = farm(&[1, 1, 1]);
            let mut b = source(ht);
            for n in 0..50 {
                let first = b.pick(&servers, &from(client(n)));
                for _ in 0..5 {
                    assert_eq!(b.pick(&servers, &from(client(n))), first);
                }
            }
        }
    }

    #[test]
    fn source_spreads_over_addresses() {
        for ht in [&[][..], &["consistent"]] {
            let servers = farm(&[1, 1, 1]);
            let mut b = source(ht);
            let got: Vec<usize> = (0..600).filter_map(|n| b.pick(&servers, &from(client(n * 7919)))).collect();
            let c = counts(&got, 3);
            assert!(c.iter().all(|&k| k > 100), "{ht:?}: {c:?}");
        }
    }

    #[test]
    fn source_map_based_is_address_modulo_total_weight() {
        let servers = farm(&[1, 1, 1]);
        let mut b = source(&[]);
        // 10.0.0.4 = 0x0a000004; mod 3 = 2 (the map of equal weights is in declaration order).
        assert_eq!(b.pick(&servers, &from(client(4))), Some((0x0a00_0004u32 % 3) as usize));
    }

    #[test]
    fn source_hashes_ipv6_addresses() {
        let servers = farm(&[1, 1]);
        let mut b = source(&[]);
        let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        let h = 0x2001_0db8u32 ^ 1;
        assert_eq!(b.pick(&servers, &from(ip)), Some((h % 2) as usize));
    }

    #[test]
    fn consistent_source_moves_only_the_keys_of_a_lost_server() {
        let servers = farm(&[1, 1, 1, 1]);
        let mut b = source(&["consistent"]);
        let keys: Vec<IpAddr> = (0..2000).map(|n| client(n * 104_729)).collect();
        let before: Vec<_> = keys.iter().map(|&k| b.pick(&servers, &from(k))).collect();
        down(&servers[2]);
        let after: Vec<_> = keys.iter().map(|&k| b.pick(&servers, &from(k))).collect();
        let mut moved = 0;
        for (x, y) in before.iter().zip(&after) {
            if x != y {
                // Only the lost server's keys move.
                assert_eq!(*x, Some(2));
                moved += 1;
            }
            assert_ne!(*y, Some(2));
        }
        // About a quarter of the keys lived on the lost server.
        assert!((300..=700).contains(&moved), "moved {moved}");
    }

    #[test]
    fn map_based_source_remaps_most_keys_when_a_server_goes_down() {
        let servers = farm(&[1, 1, 1, 1]);
        let mut b = source(&[]);
        let keys: Vec<IpAddr> = (0..1000).map(|n| client(n * 104_729)).collect();
        let before: Vec<_> = keys.iter().map(|&k| b.pick(&servers, &from(k))).collect();
        down(&servers[2]);
        let moved = keys.iter().zip(&before).filter(|(&k, &x)| b.pick(&servers, &from(k)) != x).count();
        assert!(moved > 500, "moved {moved}");
    }

    #[test]
    fn source_without_address_falls_back_to_round_robin() {
        let servers = farm(&[1, 1]);
        let mut b = source(&[]);
        assert_eq!(picks(b.as_mut(), &servers, 4), vec![0, 1, 0, 1]);
    }

    #[test]
    fn source_skips_a_full_server_and_returns_when_it_frees() {
        let servers = vec![server(0, 1, false, 1), server(1, 1, false, 0)];
        let mut b = source(&[]);
        let key = client(0); // 0x0a000000 % 2 = 0
        assert_eq!(b.pick(&servers, &from(key)), Some(0));
        servers[0].cur.store(1, Ordering::Release);
        assert_eq!(b.pick(&servers, &from(key)), Some(1));
        servers[0].cur.store(0, Ordering::Release);
        assert_eq!(b.pick(&servers, &from(key)), Some(0));
    }

    #[test]
    fn source_uses_backups_only_when_actives_are_down() {
        let servers = vec![server(0, 1, false, 0), server(1, 1, true, 0), server(2, 1, true, 0)];
        let mut b = source(&["consistent"]);
        for n in 0..20 {
            assert_eq!(b.pick(&servers, &from(client(n))), Some(0));
        }
        down(&servers[0]);
        for n in 0..20 {
            assert_eq!(b.pick(&servers, &from(client(n))), Some(1));
        }
    }
}
