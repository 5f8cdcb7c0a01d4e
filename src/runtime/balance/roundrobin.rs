//! `balance roundrobin`: HAProxy's fast weighted round robin (lb_fwrr), reproduced so that
//! the servers come in exactly HAProxy 2.6's order (weights 3:1 give A A A B, 5:3:1 give
//! A A B A C B A A B), and dynamic: a server going down or up, or a weight change, is seen at
//! the next pick and placed the way HAProxy places it.
//!
//! The facts of the algorithm, per group of servers (the actives, and the backups):
//! - weights are scaled by 16 ("effective weight"); a round ("time range") is as long as the
//!   sum of the effective weights of the group, and `curr_pos` advances by one per pick;
//! - three ordered queues: "init" (servers not placed yet, heaviest first), "curr" (servers
//!   placed in this round, by next position) and "next" (servers placed beyond this round);
//!   when "curr" runs dry the round ends: "next" becomes "init" and the round restarts;
//! - a pick takes the first of "curr" if its position has come, else the heaviest of "init";
//!   the chosen server's next position moves on by round length / weight (the remainder is
//!   carried), and it is queued again in "curr" or, past the round, in "next";
//! - equal keys come out in insertion order (ebtree duplicates are appended);
//! - full servers (and the one to avoid) are taken out as if consumed and queued back after
//!   the pick; if the round ended meanwhile they go back to "init" by weight.
//!
//! What differs from HAProxy: hapx queues sessions per backend, not per server, so a server
//! with sessions waiting in HAProxy's per-server queue is not counted as full here; with a
//! single backup in use (no `option allbackups`) a full backup makes `pick` return None (the
//! caller queues) where HAProxy returns it and queues on it; state and weight changes are
//! applied at the next pick, in declaration order, rather than when the check fires.
use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Balancer, PickCtx};
use crate::runtime::state::ServerState;

/// Configured weights are scaled by this much (HAProxy's BE_WEIGHT_SCALE).
const SCALE: u32 = 16;
/// The largest configured weight, and the multiplier of a position in a "curr" key.
const UWEIGHT_RANGE: u32 = 256;
/// The largest effective weight.
const EWEIGHT_MAX: u32 = UWEIGHT_RANGE * SCALE;

/// (key, insertion number, server position): the order of an ebtree with duplicates.
type Node = (u32, u64, usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    T0,
    T1,
    Curr,
}

/// One group of servers (actives or backups) and its three queues.
#[derive(Debug)]
struct Group {
    t0: BTreeSet<Node>,
    t1: BTreeSet<Node>,
    curr: BTreeSet<Node>,
    /// Which of t0/t1 holds the servers waiting to be placed, and which the next round's.
    init: Loc,
    next: Loc,
    curr_pos: i32,
    curr_weight: i32,
    next_weight: i32,
}

impl Group {
    fn new(total: i32) -> Group {
        Group {
            t0: BTreeSet::new(),
            t1: BTreeSet::new(),
            curr: BTreeSet::new(),
            init: Loc::T0,
            next: Loc::T1,
            curr_pos: total,
            curr_weight: total,
            next_weight: total,
        }
    }

    fn tree(&mut self, loc: Loc) -> &mut BTreeSet<Node> {
        match loc {
            Loc::T0 => &mut self.t0,
            Loc::T1 => &mut self.t1,
            Loc::Curr => &mut self.curr,
        }
    }

    fn first(&mut self, loc: Loc) -> Option<usize> {
        self.tree(loc).first().map(|&(_, _, i)| i)
    }

    /// The round is over: the next round's servers wait to be placed.
    fn switch_trees(&mut self) {
        std::mem::swap(&mut self.init, &mut self.next);
        self.curr_weight = self.next_weight;
        self.curr_pos = self.curr_weight;
    }
}

/// What the balancer knows of one server (HAProxy keeps these in the server itself).
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// The queue the server sits in, with its key and insertion number.
    node: Option<(Loc, u32, u64)>,
    npos: u32,
    lpos: u32,
    rweight: u32,
    /// The effective weight last seen (kept while the server is down).
    eweight: u32,
    /// Whether the server took part in the balancing when last seen (up, weight > 0).
    usable: bool,
    backup: bool,
}

#[derive(Debug)]
pub struct RoundRobin {
    allbackups: bool,
    /// Whether the groups were built (at the first pick, from the servers then).
    ready: bool,
    act: Group,
    bck: Group,
    slots: Vec<Slot>,
    /// Insertion counter, for the order of equal keys.
    seq: u64,
    /// Scratch: servers taken out during a pick because full or avoided, in that order.
    full: Vec<usize>,
}

fn eweight_of(s: &ServerState) -> u32 {
    s.eweight().min(UWEIGHT_RANGE) * SCALE
}

impl RoundRobin {
    pub fn new(allbackups: bool) -> RoundRobin {
        RoundRobin {
            allbackups,
            ready: false,
            act: Group::new(0),
            bck: Group::new(0),
            slots: Vec::new(),
            seq: 0,
            full: Vec::new(),
        }
    }

    fn slot(&self, i: usize) -> Slot {
        self.slots.get(i).copied().unwrap_or_default()
    }

    fn slot_mut(&mut self, i: usize) -> Option<&mut Slot> {
        self.slots.get_mut(i)
    }

    fn group(&mut self, backup: bool) -> &mut Group {
        if backup {
            &mut self.bck
        } else {
            &mut self.act
        }
    }

    fn group_of(&mut self, i: usize) -> &mut Group {
        let backup = self.slot(i).backup;
        self.group(backup)
    }

    /// Builds both groups from scratch: every usable server waits in "init", heaviest first,
    /// equal weights in declaration order.
    fn init(&mut self, servers: &[Arc<ServerState>]) {
        self.slots.clear();
        self.slots.extend(servers.iter().map(|s| Slot {
            eweight: eweight_of(s),
            usable: s.eligible(),
            backup: s.backup,
            ..Slot::default()
        }));
        let total = |backup: bool, slots: &[Slot]| -> i32 {
            let sum: u32 = slots.iter().filter(|s| s.usable && s.backup == backup).map(|s| s.eweight).sum();
            i32::try_from(sum).unwrap_or(i32::MAX)
        };
        self.act = Group::new(total(false, &self.slots));
        self.bck = Group::new(total(true, &self.slots));
        for i in 0..self.slots.len() {
            if self.slot(i).usable {
                let init = self.group_of(i).init;
                self.queue_by_weight(i, init);
            }
        }
        self.ready = true;
    }

    /// Applies what changed since the last pick (up/down, weight), as HAProxy's status and
    /// weight callbacks do.
    fn sync(&mut self, servers: &[Arc<ServerState>]) {
        if !self.ready || servers.len() != self.slots.len() {
            return self.init(servers);
        }
        for (i, s) in servers.iter().enumerate() {
            let old = self.slot(i);
            let (usable, eweight) = (s.eligible(), eweight_of(s));
            if old.backup != s.backup {
                return self.init(servers);
            }
            match (old.usable, usable) {
                (false, false) => {
                    if let Some(slot) = self.slot_mut(i) {
                        slot.eweight = eweight;
                    }
                }
                (false, true) => self.set_up(i, eweight),
                (true, false) => self.set_down(i, eweight),
                (true, true) if old.eweight != eweight => self.set_weight(i, eweight),
                (true, true) => {}
            }
        }
    }

    fn set_down(&mut self, i: usize, eweight: u32) {
        let old = self.slot(i).eweight;
        let g = self.group_of(i);
        g.next_weight = g.next_weight.wrapping_sub(old as i32);
        self.dequeue(i);
        if let Some(slot) = self.slot_mut(i) {
            slot.usable = false;
            slot.eweight = eweight;
        }
    }

    fn set_up(&mut self, i: usize, eweight: u32) {
        if let Some(slot) = self.slot_mut(i) {
            slot.usable = true;
            slot.eweight = eweight;
        }
        let g = self.group_of(i);
        g.next_weight = g.next_weight.wrapping_add(eweight as i32);
        self.get_srv(i);
        // It joins after the servers already placed, as if it had just been served.
        let g = self.group_of(i);
        let room = g.next_weight.wrapping_add(g.curr_weight).wrapping_sub(g.curr_pos) as u32;
        let npos = (g.curr_pos as u32).wrapping_add(room / eweight.max(1));
        if let Some(slot) = self.slot_mut(i) {
            slot.npos = npos;
        }
        self.queue_srv(i);
    }

    fn set_weight(&mut self, i: usize, eweight: u32) {
        let old = self.slot(i);
        let g = self.group_of(i);
        g.next_weight = g.next_weight.wrapping_sub(old.eweight as i32).wrapping_add(eweight as i32);
        let init = g.init;
        if let Some(slot) = self.slot_mut(i) {
            slot.eweight = eweight;
        }
        match old.node.map(|(loc, _, _)| loc) {
            Some(loc) if loc == init => {
                self.dequeue(i);
                self.queue_by_weight(i, init);
            }
            _ => {
                self.get_srv(i);
                let s = self.slot(i);
                let g = self.group_of(i);
                let (curr_pos, next_weight) = (g.curr_pos as u32, g.next_weight as u32);
                // Keep its last position, at the new pace, but never later than planned and
                // never right now.
                let step = next_weight / eweight.max(1);
                let mut npos = s.lpos.wrapping_add(step);
                if npos > s.npos {
                    npos = s.npos;
                }
                if npos < curr_pos.wrapping_add(2) {
                    npos = curr_pos.wrapping_add(step);
                }
                if let Some(slot) = self.slot_mut(i) {
                    slot.npos = npos;
                    slot.rweight = 0;
                }
                self.dequeue(i);
                self.queue_srv(i);
            }
        }
    }

    fn insert(&mut self, i: usize, loc: Loc, key: u32) {
        self.seq += 1;
        let seq = self.seq;
        self.group_of(i).tree(loc).insert((key, seq, i));
        if let Some(slot) = self.slot_mut(i) {
            slot.node = Some((loc, key, seq));
        }
    }

    fn dequeue(&mut self, i: usize) {
        if let Some((loc, key, seq)) = self.slot_mut(i).and_then(|s| s.node.take()) {
            self.group_of(i).tree(loc).remove(&(key, seq, i));
        }
    }

    /// Queues a server among those waiting to be placed: heaviest first.
    fn queue_by_weight(&mut self, i: usize, loc: Loc) {
        let key = EWEIGHT_MAX.saturating_sub(self.slot(i).eweight);
        self.insert(i, loc, key);
    }

    /// Queues a server by its next position: in this round if it falls inside it (and inside
    /// the next round's length), else in the next round's queue, its position made relative.
    fn queue_srv(&mut self, i: usize) {
        let s = self.slot(i);
        if !s.usable {
            return;
        }
        let g = self.group_of(i);
        let (curr_weight, next_weight) = (g.curr_weight, g.next_weight);
        if s.eweight == 0
            || s.npos >= curr_weight.wrapping_mul(2) as u32
            || s.npos >= curr_weight.wrapping_add(next_weight) as u32
        {
            let next = g.next;
            if let Some(slot) = self.slot_mut(i) {
                slot.npos = slot.npos.wrapping_sub(curr_weight as u32);
            }
            self.queue_by_weight(i, next);
        } else {
            // Position first; at equal positions the heavier server, then the one with the
            // smaller carried remainder.
            let tie = EWEIGHT_MAX.wrapping_add(s.rweight).wrapping_sub(s.eweight) / SCALE;
            let key = UWEIGHT_RANGE.wrapping_mul(s.npos).wrapping_add(tie);
            self.insert(i, Loc::Curr, key);
        }
    }

    /// Resets a server's position as it leaves the queue it sits in.
    fn get_srv(&mut self, i: usize) {
        let s = self.slot(i);
        let g = self.group_of(i);
        let (init, next, curr_weight, curr_pos) = (g.init, g.next, g.curr_weight, g.curr_pos);
        let Some(slot) = self.slot_mut(i) else { return };
        match s.node.map(|(loc, _, _)| loc) {
            Some(loc) if loc == init => {
                slot.npos = 0;
                slot.rweight = 0;
            }
            Some(loc) if loc == next => slot.npos = slot.npos.wrapping_add(curr_weight as u32),
            Some(_) => {}
            None => slot.npos = curr_pos as u32,
        }
    }

    /// The server whose turn it is in this round, or the heaviest not yet placed when no
    /// position has come yet; None when both queues are empty.
    fn turn_in_group(&mut self, backup: bool) -> Option<usize> {
        let g = self.group(backup);
        let curr_pos = g.curr_pos as u32;
        let (first_curr, first_init) = (g.first(Loc::Curr), g.first(g.init));
        if let Some(i) = first_curr {
            let s = self.slot(i);
            if s.eweight > 0 && s.npos <= curr_pos {
                return Some(i);
            }
        }
        if let Some(i) = first_init {
            if self.slot(i).eweight > 0 {
                if let Some(slot) = self.slot_mut(i) {
                    slot.npos = 0;
                    slot.rweight = 0;
                }
                return Some(i);
            }
        }
        first_curr
    }

    /// Moves the chosen server's next position on by the round length over its weight,
    /// carrying the remainder.
    fn update_position(&mut self, backup: bool, i: usize) {
        let g = self.group(backup);
        let (curr_pos, next_weight) = (g.curr_pos as u32, g.next_weight as u32);
        let Some(s) = self.slot_mut(i) else { return };
        let w = s.eweight;
        if w == 0 {
            return;
        }
        if s.npos == 0 {
            s.npos = curr_pos;
        }
        s.lpos = s.npos;
        s.npos = s.npos.wrapping_add(next_weight / w);
        s.rweight = s.rweight.wrapping_add(next_weight % w);
        if s.rweight >= w {
            s.rweight -= w;
            s.npos = s.npos.wrapping_add(1);
        }
    }

    /// One pick inside a group: HAProxy's fwrr_get_next_server.
    fn next_in_group(&mut self, backup: bool, servers: &[Arc<ServerState>], avoid: Option<usize>) -> Option<usize> {
        self.full.clear();
        let mut switched = false;
        let mut avoided = None;
        let picked = 'pick: loop {
            let g = self.group(backup);
            if g.curr_weight == 0 {
                g.curr_weight = g.next_weight;
                g.curr_pos = g.next_weight;
            }
            let i = loop {
                if let Some(i) = self.turn_in_group(backup) {
                    break i;
                }
                if switched {
                    break 'pick avoided;
                }
                switched = true;
                self.group(backup).switch_trees();
            };
            self.update_position(backup, i);
            self.dequeue(i);
            let g = self.group(backup);
            g.curr_pos = g.curr_pos.wrapping_add(1);
            if servers.get(i).is_some_and(|s| s.usable()) {
                if Some(i) != avoid || avoided.is_some() {
                    break Some(i);
                }
                avoided = Some(i);
            }
            self.full.push(i);
        };
        if let Some(i) = picked {
            self.queue_srv(i);
        }
        // Those taken out come back, the latest first: as if served, or, once the round has
        // changed, among the servers waiting to be placed.
        let full = std::mem::take(&mut self.full);
        for &f in full.iter().rev() {
            if Some(f) == picked {
                continue;
            }
            if switched {
                let init = self.group(backup).init;
                self.queue_by_weight(f, init);
            } else {
                self.queue_srv(f);
            }
        }
        self.full = full;
        picked
    }
}

impl Balancer for RoundRobin {
    /// O(servers) to notice changes, then O(log servers) per server looked at.
    fn pick(&mut self, servers: &[Arc<ServerState>], ctx: &PickCtx) -> Option<usize> {
        self.sync(servers);
        if self.slots.iter().any(|s| s.usable && !s.backup) {
            return self.next_in_group(false, servers, ctx.avoid);
        }
        if !self.allbackups {
            // The first backup alone takes everything.
            let first = self.slots.iter().position(|s| s.usable && s.backup)?;
            return servers.get(first).filter(|s| s.usable()).map(|_| first);
        }
        if self.slots.iter().any(|s| s.usable && s.backup) {
            return self.next_in_group(true, servers, ctx.avoid);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::super::testutil::*;
    use super::*;

    /// Picks as server letters (a = position 0).
    fn order_of(picks: Vec<usize>) -> String {
        picks.iter().map(|&i| char::from(b'a' + i as u8)).collect()
    }

    /// Server letters picked `n` times in a row from a fresh farm.
    fn order(weights: &[u32], n: usize) -> String {
        let servers = farm(weights);
        let mut b = RoundRobin::new(false);
        order_of(picks(&mut b, &servers, n))
    }

    // The expected orders below were observed on HAProxy 2.6.12, one connection at a time.
    #[test]
    fn roundrobin_serves_three_to_one_in_a_burst_like_haproxy() {
        assert_eq!(order(&[3, 1], 12), "aaabaaabaaab");
        assert_eq!(order(&[1, 3], 12), "bbbabbbabbba");
    }

    #[test]
    fn roundrobin_order_matches_haproxy_for_small_farms() {
        assert_eq!(order(&[5, 3, 1], 27), "aabacbaabaabacbaabaabacbaab");
        assert_eq!(order(&[2, 1, 1], 12), "abacabacabac");
        assert_eq!(order(&[1, 2, 3], 18), "cbcacbcbcacbcbcacb");
        assert_eq!(order(&[2, 3], 15), "bbababbababbaba");
        assert_eq!(order(&[3, 3, 1], 21), "abababcabababcabababc");
        assert_eq!(order(&[4, 3, 2, 1], 30), "abacbadabcabacbadabcabacbadabc");
        assert_eq!(order(&[7, 5, 2], 42), "ababacababaabcababacababaabcababacababaabc");
        assert_eq!(order(&[10, 1], 33), "aaaaaaaaaabaaaaaaaaaabaaaaaaaaaab");
    }

    /// Observed on HAProxy 2.6.12 with health checks: b's listener closed after 7 sessions,
    /// reopened after 5 more.
    #[test]
    fn roundrobin_places_a_server_going_down_and_up_like_haproxy() {
        let servers = farm(&[2, 3, 1]);
        let mut b = RoundRobin::new(false);
        assert_eq!(order_of(picks(&mut b, &servers, 7)), "babcbab");
        down(&servers[1]);
        assert_eq!(order_of(picks(&mut b, &servers, 5)), "aacaa");
        servers[1].up.store(true, Ordering::Release);
        assert_eq!(order_of(picks(&mut b, &servers, 14)), "cbababcbababcb");
    }

    /// Observed on HAProxy 2.6.12: a (weight 3, maxconn 1) held by one session, then freed.
    #[test]
    fn roundrobin_skips_a_full_server_and_takes_it_back_like_haproxy() {
        let servers = vec![server(0, 3, false, 1), server(1, 2, false, 0), server(2, 1, false, 0)];
        let mut b = RoundRobin::new(false);
        assert_eq!(open_sessions(&mut b, &servers, 1), vec![0]);
        assert_eq!(order_of(picks(&mut b, &servers, 9)), "bcbbcbbcb");
        servers[0].cur.store(0, Ordering::Release);
        assert_eq!(order_of(picks(&mut b, &servers, 12)), "abacababacab");
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
