//! `balance first`: the first server, in id order, with a free connection slot. Ids default
//! to declaration order, which is the order of `servers`; weights are ignored.
use std::sync::Arc;

use super::{candidates, usable_at, Balancer, PickCtx};
use crate::runtime::state::ServerState;

#[derive(Debug, Default)]
pub struct First {
    allbackups: bool,
    cands: Vec<usize>,
}

impl First {
    pub fn new(allbackups: bool) -> First {
        First { allbackups, ..First::default() }
    }
}

impl Balancer for First {
    /// O(servers).
    fn kind(&self) -> super::LbKind {
        super::LbKind::ConnBased
    }

    fn pick(&mut self, servers: &[Arc<ServerState>], ctx: &PickCtx) -> Option<usize> {
        candidates(servers, self.allbackups, &mut self.cands);
        let mut usable = self.cands.iter().copied().filter(|&i| usable_at(servers, i));
        let first = usable.next()?;
        if Some(first) != ctx.avoid {
            return Some(first);
        }
        // The avoided server is taken again only when no other has room.
        usable.next().or(Some(first))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::super::testutil::*;
    use super::*;

    fn farm_with_maxconn(n: usize, maxconn: u32) -> Vec<Arc<ServerState>> {
        (0..n).map(|i| server(i, 1, false, maxconn)).collect()
    }

    #[test]
    fn first_fills_server_one_to_maxconn_then_server_two() {
        let servers = farm_with_maxconn(3, 3);
        let mut b = First::new(false);
        assert_eq!(open_sessions(&mut b, &servers, 7), vec![0, 0, 0, 1, 1, 1, 2]);
    }

    #[test]
    fn first_returns_to_server_one_when_it_frees_a_slot() {
        let servers = farm_with_maxconn(2, 2);
        let mut b = First::new(false);
        open_sessions(&mut b, &servers, 3);
        servers[0].cur.fetch_sub(1, Ordering::AcqRel);
        assert_eq!(b.pick(&servers, &PickCtx::default()), Some(0));
    }

    #[test]
    fn first_returns_none_when_every_server_is_full() {
        let servers = farm_with_maxconn(2, 1);
        let mut b = First::new(false);
        assert_eq!(open_sessions(&mut b, &servers, 3), vec![0, 1]);
    }

    #[test]
    fn first_ignores_weights_but_not_weight_zero() {
        let servers = vec![server(0, 0, false, 0), server(1, 1, false, 0), server(2, 100, false, 0)];
        let mut b = First::new(false);
        assert_eq!(picks(&mut b, &servers, 3), vec![1, 1, 1]);
    }

    #[test]
    fn first_skips_down_and_maintenance_servers() {
        let servers = farm(&[1, 1, 1]);
        down(&servers[0]);
        servers[1].maintenance.store(true, Ordering::Release);
        assert_eq!(picks(&mut First::new(false), &servers, 2), vec![2, 2]);
    }

    #[test]
    fn first_avoids_the_failed_server_when_another_has_room() {
        let servers = farm(&[1, 1]);
        let ctx = PickCtx { avoid: Some(0), ..PickCtx::default() };
        let mut b = First::new(false);
        assert_eq!(b.pick(&servers, &ctx), Some(1));
        down(&servers[1]);
        assert_eq!(b.pick(&servers, &ctx), Some(0));
    }

    #[test]
    fn first_uses_the_first_backup_when_actives_are_down() {
        let servers = vec![server(0, 1, false, 0), server(1, 1, true, 1), server(2, 1, true, 0)];
        let mut b = First::new(false);
        down(&servers[0]);
        // Without allbackups only the first backup serves, even when it is full.
        assert_eq!(open_sessions(&mut b, &servers, 2), vec![1]);
        let mut all = First::new(true);
        assert_eq!(open_sessions(&mut all, &servers, 1), vec![2]);
    }
}
