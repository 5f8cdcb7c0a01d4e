//! `balance static-rr`: round robin over the weighted map, which is rebuilt only when the
//! tier changes (a server goes down or up), not per pick.
use std::sync::Arc;

use super::map::WeightMap;
use super::{candidates, Balancer, PickCtx};
use crate::runtime::state::ServerState;

#[derive(Debug, Default)]
pub struct StaticRr {
    allbackups: bool,
    cands: Vec<usize>,
    map: WeightMap,
}

impl StaticRr {
    pub fn new(allbackups: bool) -> StaticRr {
        StaticRr { allbackups, ..StaticRr::default() }
    }
}

impl Balancer for StaticRr {
    /// O(servers) to check the tier, O(1) per pick when no server is full.
    fn pick(&mut self, servers: &[Arc<ServerState>], ctx: &PickCtx) -> Option<usize> {
        candidates(servers, self.allbackups, &mut self.cands);
        self.map.refresh(servers, &self.cands);
        self.map.next_rr(servers, ctx.avoid)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::super::testutil::*;
    use super::*;

    #[test]
    fn static_rr_follows_the_weighted_map() {
        let servers = farm(&[3, 1]);
        let mut b = StaticRr::new(false);
        assert_eq!(picks(&mut b, &servers, 8), vec![0, 0, 0, 1, 0, 0, 0, 1]);
    }

    #[test]
    fn static_rr_orders_as_haproxy_does() {
        // Sequences observed from HAProxy 2.6 with `balance static-rr` over these weights.
        let name = |v: Vec<usize>| v.iter().map(|&i| (b'A' + i as u8) as char).collect::<String>();
        let mut b = StaticRr::new(false);
        assert_eq!(name(picks(&mut b, &farm(&[5, 3, 1]), 18)), "AABABABACAABABABAC");
        let mut b = StaticRr::new(false);
        assert_eq!(name(picks(&mut b, &farm(&[2, 1, 1]), 18)), "AABCAABCAABCAABCAA");
    }

    #[test]
    fn static_rr_totals_follow_weights() {
        let servers = farm(&[2, 1, 1]);
        let mut b = StaticRr::new(false);
        assert_eq!(counts(&picks(&mut b, &servers, 400), 3), vec![200, 100, 100]);
    }

    #[test]
    fn static_rr_reintroduces_a_server_as_soon_as_it_is_up() {
        let servers = farm(&[1, 1, 1]);
        let mut b = StaticRr::new(false);
        down(&servers[1]);
        assert_eq!(counts(&picks(&mut b, &servers, 10), 3), vec![5, 0, 5]);
        servers[1].up.store(true, Ordering::Release);
        assert_eq!(counts(&picks(&mut b, &servers, 9), 3), vec![3, 3, 3]);
    }

    #[test]
    fn static_rr_skips_full_servers() {
        let servers = vec![server(0, 1, false, 1), server(1, 1, false, 0)];
        servers[0].cur.store(1, Ordering::Release);
        let mut b = StaticRr::new(false);
        assert_eq!(picks(&mut b, &servers, 3), vec![1, 1, 1]);
    }

    #[test]
    fn static_rr_uses_all_backups_with_allbackups() {
        let servers = vec![server(0, 1, false, 0), server(1, 1, true, 0), server(2, 1, true, 0)];
        down(&servers[0]);
        let mut one = StaticRr::new(false);
        assert_eq!(picks(&mut one, &servers, 4), vec![1, 1, 1, 1]);
        let mut all = StaticRr::new(true);
        assert_eq!(picks(&mut all, &servers, 4), vec![1, 2, 1, 2]);
    }
}
