//! A hierarchical timing wheel, as in the Linux kernel and tokio: 1 ms ticks, `LEVELS` levels
//! of 64 slots, a level-L slot spanning 64^L ms. A timer sits at the level of the highest
//! 6-bit digit in which its deadline differs from the wheel's clock, and moves down (a
//! cascade) when its slot's time comes. Timers live in a slab, linked by index into one list
//! per slot, so arming, moving and cancelling are O(1); a bitmask per level finds the next
//! occupied slot with one `trailing_zeros`.
//!
//! Each slot also keeps a lower bound of its deadlines, so `next_wake` usually names the
//! earliest deadline itself and cascades happen on the way to it instead of as wake-ups.
use std::time::{Duration, Instant};

const BITS: u32 = 6;
const SLOTS: usize = 1 << BITS;
const LEVELS: usize = 6;
const TOP: usize = LEVELS - 1;
/// Ticks the levels cover together: 2^36 ms, about 795 days. A later deadline waits in the
/// top level and is placed again each time its slot comes round.
const SPAN: u64 = 1 << (BITS as usize * LEVELS);
/// The list of timers armed for a tick already passed: they fire at the next `expire`.
const READY: usize = LEVELS * SLOTS;
const LISTS: usize = READY + 1;
const NIL: usize = usize::MAX;
/// Deadlines are clamped here (some 35,000 years) so tick arithmetic cannot overflow.
const MAX_TICK: u64 = 1 << 50;

/// Names an armed timer. The generation makes an id stale once its timer fired or was
/// cancelled, even after the slab reused the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: usize,
    gen: u32,
}

struct Node<K> {
    /// None while the node is on the free list.
    key: Option<K>,
    /// The deadline in ticks since `origin`, rounded up.
    when: u64,
    gen: u32,
    /// The list holding it: `level * SLOTS + slot`, or `READY`.
    list: usize,
    prev: usize,
    next: usize,
}

pub struct Wheel<K> {
    origin: Instant,
    /// The clock: every timer due at or before this tick has fired or is in `READY`.
    elapsed: u64,
    nodes: Vec<Node<K>>,
    /// Head of the free nodes, chained through `next`.
    free: usize,
    heads: [usize; LISTS],
    /// Per slot, no later than its earliest deadline (exact unless that timer left).
    earliest: [u64; READY],
    occupied: [u64; LEVELS],
    len: usize,
    /// Lists drained by `expire`, for the tests' cost checks.
    #[cfg(test)]
    drained: u64,
}

/// The level for a deadline `when` seen from the clock `elapsed`: the highest 6-bit digit in
/// which they differ, the top level for anything further than the wheel spans.
fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = ((elapsed ^ when) | (SLOTS as u64 - 1)).min(SPAN - 1);
    let significant = 63 - masked.leading_zeros() as usize;
    significant / BITS as usize
}

impl<K: Copy> Wheel<K> {
    pub fn new(now: Instant) -> Wheel<K> {
        Wheel {
            origin: now,
            elapsed: 0,
            nodes: Vec::new(),
            free: NIL,
            heads: [NIL; LISTS],
            earliest: [u64::MAX; READY],
            occupied: [0; LEVELS],
            len: 0,
            #[cfg(test)]
            drained: 0,
        }
    }

    /// Rounded up, so that a timer never fires before its deadline.
    fn deadline_tick(&self, at: Instant) -> u64 {
        let ns = at.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(ns.div_ceil(1_000_000)).unwrap_or(MAX_TICK).min(MAX_TICK)
    }

    /// Rounded down: the tick `now` has fully reached.
    fn now_tick(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.origin).as_millis()).unwrap_or(MAX_TICK).min(MAX_TICK)
    }

    fn instant_of(&self, tick: u64) -> Instant {
        // Unreachable for ticks that came from an Instant; an early wake is the safe failure.
        self.origin.checked_add(Duration::from_millis(tick)).unwrap_or(self.origin)
    }

    /// Arms a timer; O(1). A deadline already past fires at the next `expire`.
    pub fn insert(&mut self, key: K, at: Instant) -> TimerId {
        let when = self.deadline_tick(at);
        let free = self.free;
        let index = match self.nodes.get_mut(free) {
            Some(node) => {
                self.free = node.next;
                node.key = Some(key);
                node.when = when;
                free
            }
            None => {
                self.nodes.push(Node { key: Some(key), when, gen: 0, list: READY, prev: NIL, next: NIL });
                self.nodes.len() - 1
            }
        };
        self.len += 1;
        self.link(index);
        TimerId { index, gen: self.nodes.get(index).map_or(0, |n| n.gen) }
    }

    fn live(&self, id: TimerId) -> bool {
        self.nodes.get(id.index).is_some_and(|n| n.gen == id.gen && n.key.is_some())
    }

    /// Moves an armed timer to a new deadline; O(1). Returns false (and does nothing) if `id`
    /// is stale (fired or cancelled).
    pub fn reset(&mut self, id: TimerId, at: Instant) -> bool {
        if !self.live(id) {
            return false;
        }
        let when = self.deadline_tick(at);
        self.unlink(id.index);
        if let Some(node) = self.nodes.get_mut(id.index) {
            node.when = when;
        }
        self.link(id.index);
        true
    }

    /// Disarms; O(1). Returns the key, or None for a stale id.
    pub fn cancel(&mut self, id: TimerId) -> Option<K> {
        if !self.live(id) {
            return None;
        }
        self.unlink(id.index);
        self.release(id.index)
    }

    /// For owners that keep an `Option<TimerId>`: a None deadline cancels, otherwise the timer
    /// is moved (and given `key`) or armed anew; `*slot` follows.
    pub fn set(&mut self, slot: &mut Option<TimerId>, key: K, at: Option<Instant>) {
        match (at, *slot) {
            (None, Some(id)) => {
                self.cancel(id);
                *slot = None;
            }
            (None, None) => {}
            (Some(at), Some(id)) if self.reset(id, at) => {
                if let Some(node) = self.nodes.get_mut(id.index) {
                    node.key = Some(key);
                }
            }
            (Some(at), _) => *slot = Some(self.insert(key, at)),
        }
    }

    /// When the loop must wake next: never later than the earliest deadline. Usually that
    /// deadline itself; after a cancel or reset it may be earlier, once per level, where a slot
    /// still remembers the timer that left it. None when empty.
    pub fn next_wake(&self) -> Option<Instant> {
        if self.heads.get(READY).is_some_and(|&h| h != NIL) {
            return Some(self.instant_of(self.elapsed));
        }
        let wake = |list: usize, start: u64| start.max(self.earliest.get(list).copied().unwrap_or(start));
        // Below the top, slots hold disjoint ranges of deadlines: the first one holds the
        // earliest. Top-level slots also hold deadlines beyond the span, so each counts.
        let lower = (0..TOP).filter_map(|level| self.first_slot(level)).map(|(start, list)| wake(list, start));
        let mut top = self.occupied.get(TOP).copied().unwrap_or(0);
        let mut tick = lower.min();
        while top != 0 {
            let slot = top.trailing_zeros() as usize;
            top &= top - 1;
            let list = TOP * SLOTS + slot;
            let t = wake(list, self.slot_start(TOP, slot));
            tick = Some(tick.map_or(t, |b| b.min(t)));
        }
        Some(self.instant_of(tick?))
    }

    /// Fires every timer whose deadline (rounded up to the ms tick) is <= `now`, pushing
    /// `(id, key)`; cascades the higher-level slots whose time has come. The cost follows the
    /// timers fired and the slots visited, never the milliseconds elapsed.
    pub fn expire(&mut self, now: Instant, fired: &mut Vec<(TimerId, K)>) {
        let now_tick = self.now_tick(now);
        if now_tick < self.elapsed {
            return;
        }
        self.drain(READY, fired);
        while let Some((start, list)) = self.next_slot() {
            if start > now_tick {
                break;
            }
            self.elapsed = self.elapsed.max(start);
            self.drain(list, fired);
        }
        self.elapsed = now_tick;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tick at which an occupied slot's time comes.
    fn slot_start(&self, level: usize, slot: usize) -> u64 {
        let shift = BITS * level as u32;
        let span = 1u64 << (shift + BITS);
        let base = self.elapsed & !(span - 1);
        let cur = (self.elapsed >> shift) as usize & (SLOTS - 1);
        if slot > cur {
            base + ((slot as u64) << shift)
        } else if level == TOP {
            // The top level wraps: a slot at or behind the clock belongs to its next turn.
            base + span + ((slot as u64) << shift)
        } else {
            // Lower levels only hold slots ahead of the clock; were one behind, visiting it at
            // once is safe (nothing fires before its deadline).
            self.elapsed
        }
    }

    /// The first occupied slot of a level in time order, as (start tick, list).
    fn first_slot(&self, level: usize) -> Option<(u64, usize)> {
        let bits = self.occupied.get(level).copied().filter(|&b| b != 0)?;
        let cur = (self.elapsed >> (BITS * level as u32)) & (SLOTS as u64 - 1);
        let ahead = bits & ((u64::MAX << cur) << 1);
        let slot = if ahead != 0 { ahead.trailing_zeros() } else { bits.trailing_zeros() } as usize;
        Some((self.slot_start(level, slot), level * SLOTS + slot))
    }

    /// The slot to visit next. On a tie the lower level wins: its timers are due at that very
    /// tick, and a cascade moving the clock there would otherwise hide them behind it.
    fn next_slot(&self) -> Option<(u64, usize)> {
        let mut best: Option<(u64, usize)> = None;
        for level in 0..LEVELS {
            if let Some((start, list)) = self.first_slot(level) {
                if best.is_none_or(|(b, _)| start < b) {
                    best = Some((start, list));
                }
            }
        }
        best
    }

    /// Puts a node in the list its deadline calls for, seen from the clock.
    fn link(&mut self, index: usize) {
        let Some(when) = self.nodes.get(index).map(|n| n.when) else { return };
        let (list, level, slot) = if when <= self.elapsed {
            (READY, 0, 0)
        } else {
            let key = when.min(self.elapsed + SPAN - 1);
            let level = level_for(self.elapsed, key);
            let slot = (key >> (BITS * level as u32)) as usize & (SLOTS - 1);
            (level * SLOTS + slot, level, slot)
        };
        let head = self.heads.get(list).copied().unwrap_or(NIL);
        if let Some(node) = self.nodes.get_mut(index) {
            node.list = list;
            node.prev = NIL;
            node.next = head;
        }
        if let Some(h) = self.nodes.get_mut(head) {
            h.prev = index;
        }
        if let Some(h) = self.heads.get_mut(list) {
            *h = index;
        }
        if list != READY {
            if let Some(bits) = self.occupied.get_mut(level) {
                *bits |= 1 << slot;
            }
            if let Some(e) = self.earliest.get_mut(list) {
                *e = (*e).min(when);
            }
        }
    }

    fn unlink(&mut self, index: usize) {
        let Some(node) = self.nodes.get(index) else { return };
        let (list, prev, next) = (node.list, node.prev, node.next);
        match self.nodes.get_mut(prev) {
            Some(p) => p.next = next,
            None => {
                if let Some(h) = self.heads.get_mut(list) {
                    *h = next;
                }
            }
        }
        if let Some(n) = self.nodes.get_mut(next) {
            n.prev = prev;
        }
        if list != READY && self.heads.get(list) == Some(&NIL) {
            self.clear_slot(list);
        }
    }

    fn clear_slot(&mut self, list: usize) {
        if let Some(bits) = self.occupied.get_mut(list / SLOTS) {
            *bits &= !(1 << (list % SLOTS));
        }
        if let Some(e) = self.earliest.get_mut(list) {
            *e = u64::MAX;
        }
    }

    /// Returns an unlinked node to the free list; its old ids go stale.
    fn release(&mut self, index: usize) -> Option<K> {
        let node = self.nodes.get_mut(index)?;
        let key = node.key.take();
        node.gen = node.gen.wrapping_add(1);
        node.prev = NIL;
        node.next = self.free;
        self.free = index;
        self.len -= 1;
        key
    }

    /// Empties a list: the timers due fire, the others go where the clock now puts them.
    fn drain(&mut self, list: usize, fired: &mut Vec<(TimerId, K)>) {
        let Some(head) = self.heads.get_mut(list) else { return };
        let mut index = std::mem::replace(head, NIL);
        if list != READY {
            self.clear_slot(list);
        }
        #[cfg(test)]
        {
            self.drained += 1;
        }
        while let Some(node) = self.nodes.get(index) {
            let (next, when, gen) = (node.next, node.when, node.gen);
            if when <= self.elapsed {
                if let Some(key) = self.release(index) {
                    fired.push((TimerId { index, gen }, key));
                }
            } else {
                self.link(index);
            }
            index = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A fixed-seed generator (Knuth's MMIX LCG), so the tests are deterministic.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 16
        }
    }

    fn tick(t0: Instant, at: Instant) -> u64 {
        (at - t0).as_nanos().div_ceil(1_000_000) as u64
    }

    /// What an event loop does: sleep until `next_wake`, expire, until the wheel is empty.
    /// Checks that each timer fires once, never early and within its millisecond; returns the
    /// wake-ups and how many of them fired nothing.
    fn run_loop(w: &mut Wheel<usize>, t0: Instant, deadlines: &[Instant]) -> (usize, usize) {
        let mut seen = vec![false; deadlines.len()];
        let mut fired = Vec::new();
        let (mut now, mut wakes, mut idle) = (t0, 0, 0);
        while let Some(at) = w.next_wake() {
            now = now.max(at);
            wakes += 1;
            w.expire(now, &mut fired);
            if fired.is_empty() {
                idle += 1;
            }
            for (_, k) in fired.drain(..) {
                let d = deadlines[k];
                assert!(d <= now, "timer {k} fired {:?} early", d - now);
                assert!(now - d < ms(1), "timer {k} fired {:?} late", now - d);
                assert!(!std::mem::replace(&mut seen[k], true), "timer {k} fired twice");
            }
            assert!(wakes <= 2 * deadlines.len() + 100, "the loop does not converge");
        }
        assert!(seen.iter().all(|&s| s), "some timers never fired");
        assert!(w.is_empty());
        (wakes, idle)
    }

    #[test]
    fn timers_fire_in_their_millisecond_and_not_before() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        w.insert(1u32, t0 + ms(5));
        w.insert(2, t0 + ms(3));
        w.insert(3, t0 + Duration::from_micros(3_200));
        let mut fired = Vec::new();
        w.expire(t0 + ms(2), &mut fired);
        assert!(fired.is_empty());
        w.expire(t0 + ms(3), &mut fired);
        assert_eq!(fired.iter().map(|f| f.1).collect::<Vec<_>>(), vec![2]);
        // 3.2 ms rounds up to tick 4.
        w.expire(t0 + Duration::from_micros(3_999), &mut fired);
        assert_eq!(fired.len(), 1);
        w.expire(t0 + ms(4), &mut fired);
        assert_eq!(fired.len(), 2);
        w.expire(t0 + ms(5), &mut fired);
        assert_eq!(fired.len(), 3);
        assert!(w.is_empty());
    }

    #[test]
    fn deadlines_across_many_turns_wait_for_their_time() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        w.insert(7u32, t0 + ms(50_000));
        let mut fired = Vec::new();
        for n in (0..50_000).step_by(700) {
            w.expire(t0 + ms(n), &mut fired);
        }
        assert!(fired.is_empty());
        w.expire(t0 + ms(49_999), &mut fired);
        assert!(fired.is_empty());
        w.expire(t0 + ms(50_000), &mut fired);
        assert_eq!(fired.len(), 1);
    }

    #[test]
    fn a_long_sleep_fires_everything_due_without_walking_the_ticks() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        for i in 0..3000u32 {
            w.insert(i, t0 + ms(u64::from(i) * 200));
        }
        w.insert(9999, t0 + ms(600_001));
        let mut fired = Vec::new();
        w.expire(t0 + ms(600_000), &mut fired);
        assert_eq!(fired.len(), 3000);
        assert_eq!(w.len(), 1);
        // 600,000 ticks passed; the lists visited follow the timers, at most one per timer
        // and level.
        assert!(w.drained <= 3001 * LEVELS as u64, "{} lists drained", w.drained);
        let before = w.drained;
        w.expire(t0 + ms(600_001), &mut fired);
        assert_eq!(fired.len(), 3001);
        assert!(w.drained - before <= LEVELS as u64);
    }

    #[test]
    fn a_past_deadline_fires_at_the_next_expire() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut fired = Vec::new();
        w.expire(t0 + ms(100), &mut fired);
        w.insert(1u32, t0 + ms(10));
        assert_eq!(w.next_wake(), Some(t0 + ms(100)));
        w.expire(t0 + ms(100), &mut fired);
        assert_eq!(fired.len(), 1);
        assert_eq!(w.next_wake(), None);
    }

    #[test]
    fn next_wake_names_the_earliest_deadline() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        assert_eq!(w.next_wake(), None);
        w.insert(1u32, t0 + ms(30));
        assert_eq!(w.next_wake(), Some(t0 + ms(30)));
        w.insert(2, t0 + ms(3_600_000));
        assert_eq!(w.next_wake(), Some(t0 + ms(30)));
        let id = w.insert(3, t0 + Duration::from_micros(20_500));
        assert_eq!(w.next_wake(), Some(t0 + ms(21)));
        w.cancel(id);
        assert!(w.next_wake().is_some_and(|t| t <= t0 + ms(30)));
    }

    #[test]
    fn reset_moves_a_timer_both_ways() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let id = w.insert(1u32, t0 + ms(10));
        let mut fired = Vec::new();
        assert!(w.reset(id, t0 + ms(5_000)));
        w.expire(t0 + ms(4_999), &mut fired);
        assert!(fired.is_empty());
        assert!(w.reset(id, t0 + ms(4_000)));
        assert_eq!(w.len(), 1);
        w.expire(t0 + ms(5_000), &mut fired);
        assert_eq!(fired, vec![(id, 1)]);
    }

    #[test]
    fn stale_ids_are_ignored_after_fire_cancel_and_reuse() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut fired = Vec::new();
        let a = w.insert(1u32, t0 + ms(1));
        w.expire(t0 + ms(1), &mut fired);
        assert_eq!(fired, vec![(a, 1)]);
        assert!(!w.reset(a, t0 + ms(10)));
        assert_eq!(w.cancel(a), None);
        assert!(w.is_empty());

        let b = w.insert(2, t0 + ms(10));
        assert_eq!(w.cancel(b), Some(2));
        assert_eq!(w.cancel(b), None);
        assert!(!w.reset(b, t0 + ms(20)));

        // The slab hands the same node out again; the old ids must not touch it.
        let c = w.insert(3, t0 + ms(30));
        assert_eq!(w.nodes.len(), 1);
        assert_ne!(c, a);
        assert_ne!(c, b);
        assert_eq!(w.cancel(a), None);
        assert!(!w.reset(b, t0 + ms(2)));
        assert_eq!(w.len(), 1);
        w.expire(t0 + ms(29), &mut fired);
        assert_eq!(fired.len(), 1);
        w.expire(t0 + ms(30), &mut fired);
        assert_eq!(fired.last(), Some(&(c, 3)));
    }

    #[test]
    fn set_arms_moves_and_cancels() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut slot = None;
        w.set(&mut slot, 1u32, Some(t0 + ms(10)));
        let first = slot;
        assert!(first.is_some());
        w.set(&mut slot, 2, Some(t0 + ms(20)));
        assert_eq!(slot, first);
        assert_eq!(w.len(), 1);
        let mut fired = Vec::new();
        w.expire(t0 + ms(20), &mut fired);
        assert_eq!(fired.iter().map(|f| f.1).collect::<Vec<_>>(), vec![2]);
        // The id in the slot is stale now: set arms a new timer.
        w.set(&mut slot, 3, Some(t0 + ms(30)));
        assert_ne!(slot, first);
        w.set(&mut slot, 3, None);
        assert_eq!(slot, None);
        assert!(w.is_empty());
    }

    #[test]
    fn deadlines_beyond_the_wheel_span_fire_on_time() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        // About 3 and 5 years: beyond 2^36 ms, they go round the top level again.
        let deadlines = [t0 + ms(SPAN + SPAN / 3), t0 + ms(2 * SPAN + 12_345), t0 + ms(7)];
        for (k, &d) in deadlines.iter().enumerate() {
            w.insert(k, d);
        }
        let (wakes, idle) = run_loop(&mut w, t0, &deadlines);
        assert!(wakes <= 3 + 2 * LEVELS, "{wakes} wake-ups");
        assert!(idle <= 2 * LEVELS, "{idle} idle wake-ups");
    }

    #[test]
    fn hundred_thousand_spread_timers_wake_once_per_deadline() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut rng = Lcg(42);
        let deadlines: Vec<Instant> =
            (0..100_000).map(|_| t0 + Duration::from_micros(1_000_000 + rng.next() % 3_599_000_000)).collect();
        for (k, &d) in deadlines.iter().enumerate() {
            w.insert(k, d);
        }
        assert_eq!(w.len(), 100_000);
        let distinct = deadlines.iter().map(|&d| tick(t0, d)).collect::<BTreeSet<_>>().len();
        let (wakes, idle) = run_loop(&mut w, t0, &deadlines);
        eprintln!("spread: {distinct} distinct ms deadlines, {wakes} wake-ups, {idle} idle");
        assert!(wakes <= distinct + LEVELS, "{wakes} wake-ups for {distinct} deadlines");
        assert_eq!(w.nodes.len(), 100_000);
    }

    #[test]
    fn hundred_thousand_timers_an_hour_away_cost_a_handful_of_wake_ups() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let hour = t0 + Duration::from_secs(3600);
        let deadlines = vec![hour; 100_000];
        for k in 0..deadlines.len() {
            w.insert(k, hour);
        }
        let mut fired = Vec::new();
        let mut now = t0;
        let mut early = 0;
        while let Some(at) = w.next_wake().filter(|&at| at < hour) {
            now = now.max(at);
            early += 1;
            w.expire(now, &mut fired);
            assert!(fired.is_empty());
            assert!(early <= LEVELS, "{early} wake-ups before the hour");
        }
        let (wakes, _) = run_loop(&mut w, now, &deadlines);
        eprintln!("an hour away: {early} wake-ups before the hour, {wakes} at it");
        assert_eq!(wakes, 1);
    }

    #[test]
    fn timers_reset_on_every_read_fire_once() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let idle = Duration::from_secs(60);
        let mut ids: Vec<TimerId> = (0..10_000).map(|k| w.insert(k, t0 + idle)).collect();
        let mut deadlines = vec![t0 + idle; 10_000];
        let mut rng = Lcg(7);
        let mut fired = Vec::new();
        let mut now = t0;
        let mut wakes = 0;
        for _ in 0..100 {
            // Traffic moves the clock 0-20 ms; every connection reads and re-arms.
            now += Duration::from_micros(rng.next() % 20_000);
            for (k, id) in ids.iter_mut().enumerate() {
                let at = now + idle + Duration::from_micros(rng.next() % 1_000);
                assert!(w.reset(*id, at));
                deadlines[k] = at;
            }
            while let Some(at) = w.next_wake().filter(|&at| at <= now) {
                wakes += 1;
                w.expire(at.max(now), &mut fired);
            }
            assert!(fired.is_empty());
        }
        assert_eq!(w.len(), 10_000);
        assert_eq!(w.nodes.len(), 10_000);
        ids.clear();
        let (loop_wakes, idle_wakes) = run_loop(&mut w, now, &deadlines);
        let distinct = deadlines.iter().map(|&d| tick(t0, d)).collect::<BTreeSet<_>>().len();
        eprintln!(
            "reset: {wakes} wake-ups while re-arming, then {loop_wakes} ({idle_wakes} idle) for {distinct} deadlines"
        );
        assert!(loop_wakes <= distinct + LEVELS);
    }

    #[test]
    fn random_operations_agree_with_a_plain_model() {
        for seed in [1234, 5678, 91011] {
            model_run(seed);
        }
    }

    /// Arms, moves, cancels and expires at random, at every scale, checking the wheel against
    /// a plain list of live timers after each step.
    fn model_run(seed: u64) {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        let mut rng = Lcg(seed);
        // Every scale a deadline or a clock jump can take, from sub-ms to beyond the span.
        let scales = [1_000u64, 100_000, 10_000_000, 5_000_000_000, 300_000_000_000, 90_000_000_000_000];
        let mut live: Vec<(usize, TimerId, Instant)> = Vec::new();
        let mut fired = Vec::new();
        let mut now = t0;
        for key in 0..40_000usize {
            let scale = scales[(rng.next() % scales.len() as u64) as usize];
            match rng.next() % 10 {
                0..=3 => {
                    let at = now + Duration::from_micros(rng.next() % scale);
                    let at = if rng.next() % 8 == 0 { now - Duration::from_micros(rng.next() % 1000) } else { at };
                    live.push((key, w.insert(key, at), at));
                }
                4 | 5 if !live.is_empty() => {
                    let i = (rng.next() % live.len() as u64) as usize;
                    let at = now + Duration::from_micros(rng.next() % scale);
                    assert!(w.reset(live[i].1, at));
                    live[i].2 = at;
                }
                6 if !live.is_empty() => {
                    let i = (rng.next() % live.len() as u64) as usize;
                    let (k, id, _) = live.swap_remove(i);
                    assert_eq!(w.cancel(id), Some(k));
                }
                _ => {
                    now += Duration::from_micros(rng.next() % scale);
                    w.expire(now, &mut fired);
                    for (id, k) in fired.drain(..) {
                        let i = live.iter().position(|l| l.0 == k).expect("fired a timer not armed");
                        let (_, armed, at) = live.swap_remove(i);
                        assert_eq!(id, armed);
                        assert!(at <= now, "fired early");
                    }
                    let due = live.iter().find(|l| t0 + ms(tick(t0, l.2)) <= now);
                    assert!(due.is_none(), "{due:?} not fired at {:?}", now - t0);
                }
            }
            assert_eq!(w.len(), live.len());
            let earliest = live.iter().map(|l| t0 + ms(tick(t0, l.2))).min();
            match (w.next_wake(), earliest) {
                (Some(wake), Some(e)) => assert!(
                    wake <= e,
                    "wakes at {:?} after the earliest deadline {:?}; clock {} occupied {:x?} step {key}",
                    wake - t0,
                    e - t0,
                    w.elapsed,
                    w.occupied
                ),
                (None, None) => {}
                (wake, e) => panic!("next_wake {wake:?} with earliest {e:?}"),
            }
        }
        let deadlines: Vec<Instant> = (0..40_000).map(|k| live.iter().find(|l| l.0 == k).map_or(t0, |l| l.2)).collect();
        let keys: BTreeSet<usize> = live.iter().map(|l| l.0).collect();
        let mut left = Vec::new();
        while let Some(at) = w.next_wake() {
            now = now.max(at);
            w.expire(now, &mut fired);
            for (_, k) in fired.drain(..) {
                assert!(deadlines[k] <= now, "fired early");
                left.push(k);
            }
        }
        left.sort_unstable();
        assert_eq!(left, keys.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn level_for_follows_the_highest_differing_digit() {
        assert_eq!(level_for(0, 0), 0);
        assert_eq!(level_for(0, 63), 0);
        assert_eq!(level_for(0, 64), 1);
        assert_eq!(level_for(63, 64), 1);
        assert_eq!(level_for(64, 127), 0);
        assert_eq!(level_for(0, 1 << 12), 2);
        assert_eq!(level_for(0, SPAN - 1), TOP);
        assert_eq!(level_for(0, SPAN), TOP);
        assert_eq!(level_for(0, u64::MAX), TOP);
    }
}
