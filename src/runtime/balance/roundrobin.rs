//! `balance roundrobin`: weighted round robin, spread smoothly (weights 3:1 give A A B A, not
//! A A A B) and dynamic: weights and states are read at every pick, so a change applies to
//! the next pick without any rebuild.
//!
//! Each server accumulates credit equal to its weight per pick; the richest takes the session
//! and pays back the total weight. Over any window of Σweight picks each server is used exactly
//! its weight's worth of times.
//!
//! This is smoother than HAProxy's own tree-based order, which (observed on 2.6) serves
//! weights 3:1 as A A A B and 5:3:1 as A A B A C B A A B; the shares are the same.
use std::sync::Arc;

use super::{candidates, usable_at, weight_at, Balancer, PickCtx};
use crate::runtime::state::ServerState;

#[derive(Debug, Default)]
pub struct RoundRobin {
    allbackups: bool,
    cands: Vec<usize>,
    /// Credit per server position; a server out of the round has none.
    credit: Vec<i64>,
    /// Scratch: whether each position took part in this round.
    member: Vec<bool>,
}

impl RoundRobin {
    pub fn new(allbackups: bool) -> RoundRobin {
        RoundRobin { allbackups, ..RoundRobin::default() }
    }
}

impl Balancer for RoundRobin {
    /// O(servers).
    fn pick(&mut self, servers: &[Arc<ServerState>], ctx: &PickCtx) -> Option<usize> {
        candidates(servers, self.allbackups, &mut self.cands);
        self.credit.resize(servers.len(), 0);
        self.member.clear();
        self.member.resize(servers.len(), false);
        // Full servers and the one to avoid sit this round out.
        let mut avoided = None;
        let mut total = 0i64;
        for &i in &self.cands {
            if !usable_at(servers, i) {
                continue;
            }
            if Some(i) == ctx.avoid {
                avoided = Some(i);
                continue;
            }
            if let Some(m) = self.member.get_mut(i) {
                *m = true;
                total += i64::from(weight_at(servers, i));
            }
        }
        let mut best: Option<(usize, i64)> = None;
        for (i, (credit, &member)) in self.credit.iter_mut().zip(&self.member).enumerate() {
            if !member {
                // Whoever leaves the round (down, full, avoided) comes back without credit.
                *credit = 0;
                continue;
            }
            *credit += i64::from(weight_at(servers, i));
            if best.is_none_or(|(_, c)| *credit > c) {
                best = Some((i, *credit));
            }
        }
        match best {
            Some((i, _)) => {
                if let Some(c) = self.credit.get_mut(i) {
                    *c -= total;
                }
                Some(i)
            }
            None => avoided,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::super::testutil::*;
    use super::*;

    #[test]
    fn roundrobin_interleaves_weights_three_to_one() {
        let servers = farm(&[3, 1]);
        let mut b = RoundRobin::new(false);
        assert_eq!(picks(&mut b, &servers, 8), vec![0, 0, 1, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn roundrobin_totals_follow_weights() {
        let servers = farm(&[3, 1, 2]);
        let mut b = RoundRobin::new(false);
        assert_eq!(counts(&picks(&mut b, &servers, 600), 3), vec![300, 100, 200]);
    }

    #[test]
    fn roundrobin_equal_weights_take_turns() {
        let servers = farm(&[1, 1, 1]);
        let mut b = RoundRobin::new(false);
        assert_eq!(picks(&mut b, &servers, 6), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn roundrobin_follows_weight_changes_at_once() {
        let mut b = RoundRobin::new(false);
        let before = farm(&[1, 1]);
        assert_eq!(counts(&picks(&mut b, &before, 100), 2), vec![50, 50]);
        let after = farm(&[1, 4]);
        assert_eq!(counts(&picks(&mut b, &after, 100), 2), vec![20, 80]);
    }

    #[test]
    fn roundrobin_skips_down_full_and_weightless_servers() {
        let servers =
            vec![server(0, 1, false, 0), server(1, 1, false, 2), server(2, 0, false, 0), server(3, 1, false, 0)];
        down(&servers[0]);
        servers[1].cur.store(2, Ordering::Release);
        let mut b = RoundRobin::new(false);
        assert_eq!(picks(&mut b, &servers, 4), vec![3, 3, 3, 3]);
        servers[1].cur.store(0, Ordering::Release);
        assert_eq!(picks(&mut b, &servers, 4), vec![1, 3, 1, 3]);
    }

    #[test]
    fn roundrobin_avoids_the_failed_server_unless_it_is_alone() {
        let servers = farm(&[1, 1]);
        let mut b = RoundRobin::new(false);
        let ctx = PickCtx { avoid: Some(0), ..PickCtx::default() };
        for _ in 0..4 {
            assert_eq!(b.pick(&servers, &ctx), Some(1));
        }
        down(&servers[1]);
        assert_eq!(b.pick(&servers, &ctx), Some(0));
    }

    #[test]
    fn roundrobin_uses_backups_only_when_actives_are_down() {
        let servers = vec![server(0, 1, false, 0), server(1, 1, true, 0), server(2, 1, true, 0)];
        let mut b = RoundRobin::new(false);
        assert_eq!(picks(&mut b, &servers, 3), vec![0, 0, 0]);
        down(&servers[0]);
        assert_eq!(picks(&mut b, &servers, 3), vec![1, 1, 1]);
        let mut all = RoundRobin::new(true);
        assert_eq!(picks(&mut all, &servers, 4), vec![1, 2, 1, 2]);
    }

    #[test]
    fn roundrobin_returns_none_when_everything_is_down() {
        let servers = farm(&[1, 1]);
        down(&servers[0]);
        down(&servers[1]);
        assert_eq!(RoundRobin::new(false).pick(&servers, &PickCtx::default()), None);
    }
}
