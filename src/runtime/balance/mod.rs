//! Server selection: one file per algorithm, behind one trait.
//!
//! Every algorithm first narrows the backend to its candidate tier ([`candidates`]): the
//! eligible active servers, or, when none is eligible, the backups (the first one, or all of
//! them with `option allbackups`). Inside the tier, servers at maxconn are skipped (their
//! `usable()` is false); when every server of the tier is full, `pick` returns None and the
//! caller queues, as HAProxy does (a full active farm does not spill onto backups).
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::state::ServerState;

mod chash;
mod first;
mod hash;
mod hashfn;
mod leastconn;
mod lookup;
mod map;
mod random;
mod roundrobin;
mod source;
mod static_rr;

pub use crate::model::balance::{HashFunc, HashMethod, HashType};
pub use first::First;
pub use hash::{Fetch, Hash, HashExpr};
pub use leastconn::LeastConn;
pub use random::Random;
pub use roundrobin::RoundRobin;
pub use source::Source;
pub use static_rr::StaticRr;

/// What a pick may depend on.
#[derive(Clone, Copy, Debug, Default)]
pub struct PickCtx {
    /// The client's address (for `source` and L4 hashes).
    pub src: Option<IpAddr>,
    /// The client's port and the frontend's address and port, for `hash` over L4 fetches.
    pub src_port: Option<u16>,
    pub dst: Option<IpAddr>,
    pub dst_port: Option<u16>,
    /// A server to avoid (the one that just failed, for `option redispatch`).
    pub avoid: Option<usize>,
}

/// A load-balancing algorithm. `pick` returns the index of a usable server in `servers`, or
/// None when every server is down or full (the caller then queues or fails).
pub trait Balancer: Send {
    fn pick(&mut self, servers: &[Arc<ServerState>], ctx: &PickCtx) -> Option<usize>;

    /// HAProxy's algorithm kind, which decides when a failed connection redispatches.
    fn kind(&self) -> LbKind {
        LbKind::RoundRobin
    }

    /// Whether picks read the frontend address (`dst`, `dst_port`): only then does the loop
    /// ask the kernel for it.
    fn needs_dst(&self) -> bool {
        false
    }
}

/// HAProxy's three families of algorithms (BE_LB_KIND_*): round-robin-like (roundrobin,
/// static-rr, random), connection-based (leastconn, first), hash-based (source, hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbKind {
    RoundRobin,
    ConnBased,
    Hashed,
}

/// The one answer to "who serves this session", for assigning and for draining queues alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// This server (its position in the backend) takes the session now.
    Server(usize),
    /// Servers are eligible but every one of the tier is at its limit: wait in the queue.
    Full,
    /// No server is eligible (all down, in maintenance or weightless): give up.
    NoServer,
}

/// Asks `b` for a server and tells a full tier from an empty one, with the same tier rules
/// the algorithms use ([`candidates`]).
pub fn choose(b: &mut dyn Balancer, servers: &[Arc<ServerState>], ctx: &PickCtx) -> Pick {
    if let Some(i) = b.pick(servers, ctx).filter(|&i| usable_at(servers, i)) {
        return Pick::Server(i);
    }
    // The tier is empty exactly when no server at all is eligible.
    if servers.iter().any(|s| s.eligible()) {
        Pick::Full
    } else {
        Pick::NoServer
    }
}

pub use crate::model::balance::Balance;
use crate::model::balance::{Algorithm, HashKey};

/// An algorithm the model typed but the TCP runtime cannot run (the model reported it as
/// unsupported, so only an embedder that ignores that gets here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotRunnable(pub String);

impl std::fmt::Display for NotRunnable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "balance {}: not supported by the TCP runtime", self.0)
    }
}

/// Builds the balancer a backend's typed directives describe.
pub fn build(spec: &Balance) -> Result<Box<dyn Balancer>, NotRunnable> {
    let hash_type = spec.hash_type;
    let factor = spec.hash_balance_factor.filter(|f| *f > 0);
    let ab = spec.allbackups;
    Ok(match &spec.algorithm {
        Algorithm::RoundRobin => Box::new(RoundRobin::new(ab)),
        Algorithm::StaticRr => Box::new(StaticRr::new(ab)),
        Algorithm::LeastConn => Box::new(LeastConn::new(ab)),
        Algorithm::First => Box::new(First::new(ab)),
        Algorithm::Source => Box::new(Source::new(hash_type, factor, ab)),
        Algorithm::Random { draws } => Box::new(Random::new(*draws, factor, ab)),
        Algorithm::Hash(HashKey::Fetch(fetch)) => {
            Box::new(Hash::new(HashExpr { fetch: *fetch }, hash_type, factor, ab))
        }
        other @ (Algorithm::Hash(HashKey::Expr(_)) | Algorithm::Other(_)) => return Err(NotRunnable(other.name())),
    })
}

/// Fills `out` with the positions of the servers an algorithm may choose from now, in
/// declaration order: every eligible (up, not in maintenance, weight > 0) active server; when
/// there is none, the first eligible backup, or every eligible backup with `allbackups`. Full
/// servers stay in the set (they keep their place in maps and rings); callers test `usable()`.
/// O(servers).
pub fn candidates(servers: &[Arc<ServerState>], allbackups: bool, out: &mut Vec<usize>) {
    out.clear();
    out.extend(servers.iter().enumerate().filter(|(_, s)| !s.backup && s.eligible()).map(|(i, _)| i));
    if !out.is_empty() {
        return;
    }
    let backups = servers.iter().enumerate().filter(|(_, s)| s.backup && s.eligible()).map(|(i, _)| i);
    if allbackups {
        out.extend(backups);
    } else {
        out.extend(backups.take(1));
    }
}

/// Whether the server at `i` may take a session now.
fn usable_at(servers: &[Arc<ServerState>], i: usize) -> bool {
    servers.get(i).is_some_and(|s| s.usable())
}

/// The server's weight, or 0 when `i` is out of range.
fn weight_at(servers: &[Arc<ServerState>], i: usize) -> u32 {
    servers.get(i).map_or(0, |s| s.eweight())
}

/// Sessions the server holds now.
fn cur_at(servers: &[Arc<ServerState>], i: usize) -> u32 {
    servers.get(i).map_or(0, |s| s.cur.load(Ordering::Acquire))
}

/// The (position, weight) list a map or ring is built from; a change in it means a rebuild.
fn signature(servers: &[Arc<ServerState>], cands: &[usize], out: &mut Vec<(usize, u32)>) {
    out.clear();
    out.extend(cands.iter().map(|&i| (i, weight_at(servers, i))));
}

/// HAProxy scales configured weights by 16 internally; shares are rounded at that scale.
const WEIGHT_SCALE: u64 = 16;

/// Bounded-load consistent hashing (`hash-balance-factor`): the sessions of the whole backend
/// plus the one being placed, times factor %, rounded up, are shared among the tier's servers
/// in proportion to their weights (the remainder spread by cumulative weight, so the shares
/// add up exactly); a server may take one more session while it holds fewer than its share,
/// and every server's share is at least 1.
#[derive(Clone, Copy, Debug)]
struct LoadBound {
    tot_slots: u64,
    tot_weight: u64,
}

impl LoadBound {
    /// O(servers): sums the backend's sessions and the tier's weights.
    fn new(servers: &[Arc<ServerState>], cands: &[usize], factor: u32) -> LoadBound {
        let served: u64 = servers.iter().map(|s| u64::from(s.cur.load(Ordering::Acquire))).sum();
        let tot_slots = ((served + 1) * u64::from(factor)).div_ceil(100);
        let tot_weight = cands.iter().map(|&i| u64::from(weight_at(servers, i))).sum::<u64>() * WEIGHT_SCALE;
        LoadBound { tot_slots, tot_weight }
    }

    /// Whether a server of weight `w`, preceded in the tier by `cumulative` weight and holding
    /// `cur` sessions, may take one more.
    fn allows(&self, cur: u32, w: u32, cumulative: u64) -> bool {
        if self.tot_weight == 0 {
            return true;
        }
        let (w, cumulative) = (u64::from(w) * WEIGHT_SCALE, cumulative * WEIGHT_SCALE);
        let per_weight = self.tot_slots / self.tot_weight;
        let rem = self.tot_slots % self.tot_weight;
        let share = w * per_weight + ((cumulative + w) * rem) / self.tot_weight - (cumulative * rem) / self.tot_weight;
        u64::from(cur) < share.max(1)
    }
}

/// Weight of the tier's servers declared before each candidate, for [`LoadBound::allows`].
fn cumulative_weights(servers: &[Arc<ServerState>], cands: &[usize], out: &mut Vec<u64>) {
    out.clear();
    let mut sum = 0u64;
    for &i in cands {
        out.push(sum);
        sum += u64::from(weight_at(servers, i));
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::net::SocketAddr;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use super::{Balancer, PickCtx};
    use crate::runtime::state::ServerState;

    pub fn server(index: usize, weight: u32, backup: bool, maxconn: u32) -> Arc<ServerState> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8000 + index as u16));
        Arc::new(ServerState {
            weight,
            backup,
            maxconn,
            ..ServerState::new(index, "be", &format!("s{}", index + 1), addr)
        })
    }

    /// Active servers with these weights, no maxconn.
    pub fn farm(weights: &[u32]) -> Vec<Arc<ServerState>> {
        weights.iter().enumerate().map(|(i, &w)| server(i, w, false, 0)).collect()
    }

    pub fn down(s: &ServerState) {
        s.up.store(false, Ordering::Release);
    }

    /// Picks `n` times; each pick opens a session that stays open. Returns the picks.
    pub fn open_sessions(b: &mut dyn Balancer, servers: &[Arc<ServerState>], n: usize) -> Vec<usize> {
        let ctx = PickCtx::default();
        let mut picks = Vec::with_capacity(n);
        for _ in 0..n {
            if let Some(i) = b.pick(servers, &ctx) {
                if let Some(s) = servers.get(i) {
                    s.cur.fetch_add(1, Ordering::AcqRel);
                    s.total.fetch_add(1, Ordering::AcqRel);
                }
                picks.push(i);
            }
        }
        picks
    }

    /// Picks `n` times without any session staying open.
    pub fn picks(b: &mut dyn Balancer, servers: &[Arc<ServerState>], n: usize) -> Vec<usize> {
        let ctx = PickCtx::default();
        (0..n).filter_map(|_| b.pick(servers, &ctx)).collect()
    }

    pub fn counts(picks: &[usize], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &p in picks {
            if let Some(slot) = c.get_mut(p) {
                *slot += 1;
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    /// The typed value the model makes of these `balance` and `hash-type` words.
    pub(crate) fn typed(algo: &[&str], hash_type: &[&str]) -> Result<Balance, String> {
        use crate::model::balance::{parse_algorithm, parse_hash_type};
        let v = crate::version::Version::NEWEST;
        let algo = algo.strip_prefix(&["balance"]).unwrap_or(algo);
        let hash_type = hash_type.strip_prefix(&["hash-type"]).unwrap_or(hash_type);
        let algorithm = if algo.is_empty() { Ok(Algorithm::RoundRobin) } else { parse_algorithm(algo, v) };
        let hash_type = if hash_type.is_empty() { Ok(Default::default()) } else { parse_hash_type(hash_type, v) };
        Ok(Balance {
            algorithm: algorithm.map_err(|e| e.1)?,
            hash_type: hash_type.map_err(|e| e.1)?,
            ..Balance::default()
        })
    }

    /// Words to a balancer, failing where the model or the runtime refuses them.
    fn spec(algo: &[&str], hash_type: &[&str]) -> Result<Balance, String> {
        typed(algo, hash_type)
    }

    fn build(spec: &Result<Balance, String>) -> Result<Box<dyn Balancer>, String> {
        let spec = spec.clone()?;
        super::build(&spec).map_err(|e| e.to_string())
    }

    #[test]
    fn build_accepts_every_tcp_algorithm() {
        for algo in [
            &["roundrobin"][..],
            &["static-rr"],
            &["leastconn"],
            &["first"],
            &["source"],
            &["random"],
            &["random(3)"],
            &["hash", "src"],
            &["hash", "dst_port"],
            &["balance", "leastconn"],
        ] {
            for ht in [&[][..], &["consistent"], &["map-based", "crc32", "avalanche"], &["hash-type", "consistent"]] {
                assert!(build(&spec(algo, ht)).is_ok(), "{algo:?} {ht:?}");
            }
        }
    }

    #[test]
    fn build_defaults_to_roundrobin() {
        let servers = farm(&[3, 1]);
        let mut b = super::build(&Balance::default()).unwrap();
        assert_eq!(picks(b.as_mut(), &servers, 4), vec![0, 0, 0, 1]);
    }

    #[test]
    fn build_rejects_what_the_runtime_cannot_do() {
        assert!(build(&spec(&["uri"], &[])).is_err());
        assert!(build(&spec(&["hash"], &[])).is_err());
        assert!(build(&spec(&["hash", "req.cookie(x)"], &[])).is_err());
        assert!(build(&spec(&["random(0)"], &[])).is_err());
        // HAProxy ignores words after an algorithm that takes none.
        assert!(build(&spec(&["leastconn", "x"], &[])).is_ok());
        assert!(build(&spec(&["source"], &["ring"])).is_err());
        assert!(build(&spec(&["source"], &["consistent", "md5"])).is_err());
    }

    #[test]
    fn candidates_are_the_active_servers_when_one_is_up() {
        let mut servers = farm(&[1, 1]);
        servers.push(server(2, 1, true, 0));
        let mut out = Vec::new();
        candidates(&servers, false, &mut out);
        assert_eq!(out, vec![0, 1]);
        down(&servers[0]);
        candidates(&servers, false, &mut out);
        assert_eq!(out, vec![1]);
    }

    #[test]
    fn candidates_fall_back_to_the_first_eligible_backup() {
        let servers = vec![server(0, 1, false, 0), server(1, 1, true, 0), server(2, 1, true, 0)];
        down(&servers[0]);
        let mut out = Vec::new();
        candidates(&servers, false, &mut out);
        assert_eq!(out, vec![1]);
        down(&servers[1]);
        candidates(&servers, false, &mut out);
        assert_eq!(out, vec![2]);
    }

    #[test]
    fn candidates_take_every_backup_with_allbackups() {
        let servers = vec![server(0, 1, false, 0), server(1, 1, true, 0), server(2, 1, true, 0)];
        down(&servers[0]);
        let mut out = Vec::new();
        candidates(&servers, true, &mut out);
        assert_eq!(out, vec![1, 2]);
    }

    #[test]
    fn candidates_never_hold_down_maintenance_or_weightless_servers() {
        let servers = farm(&[1, 1, 0, 1]);
        down(&servers[0]);
        servers[1].maintenance.store(true, Ordering::Release);
        let mut out = Vec::new();
        candidates(&servers, false, &mut out);
        assert_eq!(out, vec![3]);
    }

    #[test]
    fn full_actives_do_not_spill_onto_backups() {
        let servers = vec![server(0, 1, false, 1), server(1, 1, true, 0)];
        servers[0].cur.store(1, Ordering::Release);
        let mut out = Vec::new();
        candidates(&servers, false, &mut out);
        assert_eq!(out, vec![0]);
        let mut b = build(&spec(&["roundrobin"], &[])).unwrap();
        assert_eq!(b.pick(&servers, &PickCtx::default()), None);
    }

    #[test]
    fn choose_queues_when_the_actives_are_full_even_with_a_free_backup() {
        // The config that used to spin: two actives at maxconn 1, one backup.
        let servers = vec![server(0, 1, false, 1), server(1, 1, false, 1), server(2, 1, true, 0)];
        let mut b = super::build(&Balance::default()).unwrap();
        let ctx = PickCtx::default();
        assert_eq!(choose(b.as_mut(), &servers, &ctx), Pick::Server(0));
        servers[0].acquire();
        assert_eq!(choose(b.as_mut(), &servers, &ctx), Pick::Server(1));
        servers[1].acquire();
        assert_eq!(choose(b.as_mut(), &servers, &ctx), Pick::Full, "a full farm queues; the backup waits");
        servers[0].release();
        assert_eq!(choose(b.as_mut(), &servers, &ctx), Pick::Server(0));
    }

    #[test]
    fn choose_falls_back_to_backups_and_gives_up_when_nothing_is_eligible() {
        let servers = vec![server(0, 1, false, 0), server(1, 1, true, 1)];
        let mut b = super::build(&Balance::default()).unwrap();
        let ctx = PickCtx::default();
        down(&servers[0]);
        assert_eq!(choose(b.as_mut(), &servers, &ctx), Pick::Server(1));
        servers[1].acquire();
        assert_eq!(choose(b.as_mut(), &servers, &ctx), Pick::Full, "the backup tier is full");
        down(&servers[1]);
        assert_eq!(choose(b.as_mut(), &servers, &ctx), Pick::NoServer);
    }

    #[test]
    fn load_bound_shares_slots_by_weight() {
        // 9 sessions open + 1 new, factor 150: 15 slots over weights 1+2 → shares 5 and 10.
        let servers = farm(&[1, 2]);
        servers[0].cur.store(4, Ordering::Release);
        servers[1].cur.store(5, Ordering::Release);
        let b = LoadBound::new(&servers, &[0, 1], 150);
        assert!(b.allows(4, 1, 0));
        assert!(!b.allows(5, 1, 0));
        assert!(b.allows(9, 2, 1));
        assert!(!b.allows(10, 2, 1));
    }
}
