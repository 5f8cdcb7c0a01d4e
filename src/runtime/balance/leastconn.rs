//! `balance leastconn`: the server with the smallest load for its weight. Each server is keyed
//! by (sessions + queued + 1) × SCALE / weight, and an idle server by 0 so that under light
//! load idle servers are used before the heaviest one takes a second session. The "+ 1" ranks
//! servers by the load they would have once picked, so between equally loaded servers the
//! heavier weight goes first. Among equal keys the server picked longest ago wins, so equal
//! servers are used in turn.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{candidates, Balancer, PickCtx};
use crate::runtime::state::ServerState;

/// HAProxy's effective weight scale: the maximum weight (256) × 16.
const SCALE: u64 = 256 * 16;
/// Configured weights are multiplied by this to get effective weights.
const WEIGHT_SCALE: u64 = 16;

#[derive(Debug, Default)]
pub struct LeastConn {
    allbackups: bool,
    cands: Vec<usize>,
    /// Per server position, when it was last picked (0: never).
    last_pick: Vec<u64>,
    picks: u64,
}

impl LeastConn {
    pub fn new(allbackups: bool) -> LeastConn {
        LeastConn { allbackups, ..LeastConn::default() }
    }
}

/// The server's sort key; smaller is better.
fn key(s: &ServerState) -> u64 {
    let inflight = u64::from(s.cur.load(Ordering::Acquire)) + u64::from(s.queued.load(Ordering::Acquire));
    if inflight == 0 {
        return 0;
    }
    (inflight + 1) * SCALE / (u64::from(s.eweight()) * WEIGHT_SCALE).max(1)
}

impl Balancer for LeastConn {
    /// O(servers).
    fn kind(&self) -> super::LbKind {
        super::LbKind::ConnBased
    }

    fn pick(&mut self, servers: &[Arc<ServerState>], ctx: &PickCtx) -> Option<usize> {
        candidates(servers, self.allbackups, &mut self.cands);
        self.last_pick.resize(servers.len(), 0);
        let mut best: Option<(u64, u64, usize)> = None;
        let mut avoided = None;
        for &i in &self.cands {
            let Some(s) = servers.get(i) else { continue };
            if !s.usable() {
                continue;
            }
            if Some(i) == ctx.avoid {
                avoided = Some(i);
                continue;
            }
            let rank = (key(s), self.last_pick.get(i).copied().unwrap_or(0), i);
            if best.is_none_or(|b| rank < b) {
                best = Some(rank);
            }
        }
        let chosen = best.map(|(_, _, i)| i).or(avoided)?;
        self.picks += 1;
        if let Some(t) = self.last_pick.get_mut(chosen) {
            *t = self.picks;
        }
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn load(servers: &[Arc<ServerState>]) -> Vec<u32> {
        servers.iter().map(|s| s.cur.load(Ordering::Acquire)).collect()
    }

    #[test]
    fn leastconn_spreads_sessions_over_equal_servers() {
        let servers = farm(&[1, 1, 1]);
        let mut b = LeastConn::new(false);
        open_sessions(&mut b, &servers, 300);
        let l = load(&servers);
        assert!(l.iter().all(|&c| (99..=101).contains(&c)), "{l:?}");
        assert_eq!(l.iter().sum::<u32>(), 300);
    }

    #[test]
    fn leastconn_prefers_idle_server() {
        let servers = farm(&[1, 1, 1]);
        servers[0].cur.store(5, Ordering::Release);
        servers[2].cur.store(3, Ordering::Release);
        assert_eq!(LeastConn::new(false).pick(&servers, &PickCtx::default()), Some(1));
    }

    #[test]
    fn leastconn_prefers_an_idle_light_server_to_a_busy_heavy_one() {
        let servers = farm(&[10, 1]);
        servers[0].cur.store(1, Ordering::Release);
        assert_eq!(LeastConn::new(false).pick(&servers, &PickCtx::default()), Some(1));
    }

    #[test]
    fn leastconn_counts_queued_sessions() {
        let servers = farm(&[1, 1]);
        servers[0].cur.store(2, Ordering::Release);
        servers[1].cur.store(1, Ordering::Release);
        servers[1].queued.store(3, Ordering::Release);
        assert_eq!(LeastConn::new(false).pick(&servers, &PickCtx::default()), Some(0));
    }

    #[test]
    fn leastconn_respects_weights() {
        let servers = farm(&[2, 1]);
        let mut b = LeastConn::new(false);
        open_sessions(&mut b, &servers, 300);
        let l = load(&servers);
        assert!((199..=201).contains(&l[0]) && (99..=101).contains(&l[1]), "{l:?}");
    }

    #[test]
    fn leastconn_orders_held_sessions_as_haproxy_does() {
        // Observed from HAProxy 2.6: 15 sessions opened one after the other and held.
        let run = |weights: &[u32]| {
            let servers = farm(weights);
            let got = open_sessions(&mut LeastConn::new(false), &servers, 15);
            got.iter().map(|&i| (b'A' + i as u8) as char).collect::<String>()
        };
        assert_eq!(run(&[2, 1]), "ABAABAABAABAABA");
        assert_eq!(run(&[1, 1, 1]), "ABCABCABCABCABC");
        assert_eq!(run(&[10, 1]), "ABAAAAAAAAAAAAA");
    }

    #[test]
    fn leastconn_rotates_among_equal_servers() {
        // No session stays open: every key stays equal, so the servers take turns.
        let servers = farm(&[1, 1, 1]);
        let mut b = LeastConn::new(false);
        assert_eq!(picks(&mut b, &servers, 7), vec![0, 1, 2, 0, 1, 2, 0]);
        servers[1].cur.store(4, Ordering::Release);
        assert_eq!(picks(&mut b, &servers, 4), vec![2, 0, 2, 0]);
    }

    #[test]
    fn leastconn_skips_full_down_maintenance_and_weightless_servers() {
        let servers = vec![
            server(0, 1, false, 2),
            server(1, 1, false, 0),
            server(2, 1, false, 0),
            server(3, 0, false, 0),
            server(4, 1, false, 0),
        ];
        servers[0].cur.store(2, Ordering::Release);
        down(&servers[1]);
        servers[2].maintenance.store(true, Ordering::Release);
        servers[4].cur.store(50, Ordering::Release);
        let mut b = LeastConn::new(false);
        assert_eq!(picks(&mut b, &servers, 3), vec![4, 4, 4]);
    }

    #[test]
    fn leastconn_returns_none_when_all_are_full() {
        let servers = vec![server(0, 1, false, 1), server(1, 1, false, 1)];
        let mut b = LeastConn::new(false);
        assert_eq!(open_sessions(&mut b, &servers, 3), vec![0, 1]);
    }

    #[test]
    fn leastconn_uses_backups_only_when_actives_are_down() {
        let servers = vec![server(0, 1, false, 0), server(1, 1, true, 0), server(2, 1, true, 0)];
        let mut b = LeastConn::new(false);
        servers[0].cur.store(100, Ordering::Release);
        assert_eq!(picks(&mut b, &servers, 2), vec![0, 0]);
        down(&servers[0]);
        assert_eq!(picks(&mut b, &servers, 2), vec![1, 1]);
        let mut all = LeastConn::new(true);
        assert_eq!(picks(&mut all, &servers, 4), vec![1, 2, 1, 2]);
    }

    #[test]
    fn leastconn_avoids_the_failed_server_unless_alone() {
        let servers = farm(&[1, 1]);
        servers[1].cur.store(9, Ordering::Release);
        let ctx = PickCtx { avoid: Some(0), ..PickCtx::default() };
        let mut b = LeastConn::new(false);
        assert_eq!(b.pick(&servers, &ctx), Some(1));
        down(&servers[1]);
        assert_eq!(b.pick(&servers, &ctx), Some(0));
    }
}
