//! A hashed timing wheel: one slot per millisecond over a ring of `SLOTS`; a deadline
//! further than the ring spans waits in its slot for more turns. Inserting is O(1);
//! advancing visits only the slots whose time has come.
use std::time::{Duration, Instant};

const SLOTS: usize = 1024;
const TICK: Duration = Duration::from_millis(1);

/// One armed timer: the key its owner gave and the deadline it was armed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<K> {
    pub key: K,
    pub at: Instant,
}

pub struct Wheel<K> {
    origin: Instant,
    /// Ticks since `origin` up to which every slot has been emptied.
    done: u64,
    slots: Vec<Vec<Entry<K>>>,
    len: usize,
}

impl<K: Copy> Wheel<K> {
    pub fn new(now: Instant) -> Wheel<K> {
        Wheel { origin: now, done: 0, slots: (0..SLOTS).map(|_| Vec::new()).collect(), len: 0 }
    }

    fn tick_of(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_millis() as u64
    }

    /// Arms a timer. A deadline already past fires at the next `expire`.
    pub fn insert(&mut self, key: K, at: Instant) {
        let tick = self.tick_of(at).max(self.done);
        if let Some(slot) = self.slots.get_mut(tick as usize % SLOTS) {
            slot.push(Entry { key, at });
            self.len += 1;
        }
    }

    /// Moves every timer whose deadline is `now` or earlier into `fired`.
    pub fn expire(&mut self, now: Instant, fired: &mut Vec<Entry<K>>) {
        let target = self.tick_of(now);
        if self.len == 0 {
            self.done = target;
            return;
        }
        // Past a full turn every slot is visited once; each keeps what is not due yet.
        let last = target.min(self.done + SLOTS as u64);
        let mut tick = self.done;
        while tick <= last {
            if let Some(slot) = self.slots.get_mut(tick as usize % SLOTS) {
                let before = slot.len();
                let mut i = 0;
                while i < slot.len() {
                    if slot.get(i).is_some_and(|e| e.at <= now) {
                        fired.push(slot.swap_remove(i));
                    } else {
                        i += 1;
                    }
                }
                self.len -= before - slot.len();
            }
            tick += 1;
        }
        self.done = target;
    }

    /// How long until the next slot holding a timer, looking at most `limit` ahead.
    pub fn next_within(&self, now: Instant, limit: Duration) -> Duration {
        if self.len == 0 {
            return limit;
        }
        let start = self.tick_of(now).max(self.done);
        let horizon = (limit.as_millis() as u64).min(SLOTS as u64);
        for ahead in 0..=horizon {
            if self.slots.get(((start + ahead) as usize) % SLOTS).is_some_and(|s| !s.is_empty()) {
                return (TICK * ahead as u32).min(limit);
            }
        }
        limit
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_their_millisecond_and_not_before() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        w.insert(1u32, t0 + Duration::from_millis(5));
        w.insert(2, t0 + Duration::from_millis(3));
        let mut fired = Vec::new();
        w.expire(t0 + Duration::from_millis(2), &mut fired);
        assert!(fired.is_empty());
        w.expire(t0 + Duration::from_millis(4), &mut fired);
        assert_eq!(fired.iter().map(|e| e.key).collect::<Vec<_>>(), vec![2]);
        w.expire(t0 + Duration::from_millis(5), &mut fired);
        assert_eq!(fired.len(), 2);
        assert!(w.is_empty());
    }

    #[test]
    fn deadlines_beyond_one_turn_wait_for_their_turn() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        w.insert(7u32, t0 + Duration::from_millis(50_000));
        let mut fired = Vec::new();
        for ms in (0..50_000).step_by(700) {
            w.expire(t0 + Duration::from_millis(ms), &mut fired);
        }
        assert!(fired.is_empty());
        w.expire(t0 + Duration::from_millis(50_000), &mut fired);
        assert_eq!(fired.len(), 1);
    }

    #[test]
    fn a_long_sleep_still_fires_everything_due() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        for i in 0..3000u32 {
            w.insert(i, t0 + Duration::from_millis(u64::from(i)));
        }
        let mut fired = Vec::new();
        w.expire(t0 + Duration::from_millis(5000), &mut fired);
        assert_eq!(fired.len(), 3000);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn next_within_points_at_the_first_armed_slot() {
        let t0 = Instant::now();
        let mut w = Wheel::new(t0);
        assert_eq!(w.next_within(t0, Duration::from_millis(100)), Duration::from_millis(100));
        w.insert(1u32, t0 + Duration::from_millis(30));
        assert_eq!(w.next_within(t0, Duration::from_millis(100)), Duration::from_millis(30));
    }
}
