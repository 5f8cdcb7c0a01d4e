//! PLACEHOLDER while the hierarchical wheel lands: same API, ordered map inside.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    gen: u32,
}

pub struct Wheel<K> {
    origin: Instant,
    map: BTreeMap<(u64, u32), K>,
    nodes: Vec<(u32, Option<u64>)>,
    free: Vec<u32>,
}

impl<K: Copy> Wheel<K> {
    pub fn new(now: Instant) -> Wheel<K> {
        Wheel { origin: now, map: BTreeMap::new(), nodes: Vec::new(), free: Vec::new() }
    }
    fn tick(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.origin);
        let ms = d.as_millis() as u64;
        if d > Duration::from_millis(ms) {
            ms + 1
        } else {
            ms
        }
    }
    pub fn insert(&mut self, key: K, at: Instant) -> TimerId {
        let tick = self.tick(at);
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.nodes.push((0, None));
                (self.nodes.len() - 1) as u32
            }
        };
        let gen = match self.nodes.get_mut(index as usize) {
            Some(n) => {
                n.0 += 1;
                n.1 = Some(tick);
                n.0
            }
            None => 0,
        };
        self.map.insert((tick, index), key);
        TimerId { index, gen }
    }
    fn live(&self, id: TimerId) -> Option<u64> {
        self.nodes.get(id.index as usize).filter(|n| n.0 == id.gen).and_then(|n| n.1)
    }
    pub fn reset(&mut self, id: TimerId, at: Instant) -> bool {
        let Some(old) = self.live(id) else { return false };
        let tick = self.tick(at);
        if let Some(k) = self.map.remove(&(old, id.index)) {
            self.map.insert((tick, id.index), k);
        }
        if let Some(n) = self.nodes.get_mut(id.index as usize) {
            n.1 = Some(tick);
        }
        true
    }
    pub fn cancel(&mut self, id: TimerId) -> Option<K> {
        let old = self.live(id)?;
        if let Some(n) = self.nodes.get_mut(id.index as usize) {
            n.1 = None;
        }
        self.free.push(id.index);
        self.map.remove(&(old, id.index))
    }
    pub fn set(&mut self, slot: &mut Option<TimerId>, key: K, at: Option<Instant>) {
        match (at, *slot) {
            (None, Some(id)) => {
                self.cancel(id);
                *slot = None;
            }
            (None, None) => {}
            (Some(at), Some(id)) if self.reset(id, at) => {}
            (Some(at), _) => *slot = Some(self.insert(key, at)),
        }
    }
    pub fn next_wake(&self) -> Option<Instant> {
        self.map.keys().next().map(|(t, _)| self.origin + Duration::from_millis(*t))
    }
    pub fn expire(&mut self, now: Instant, fired: &mut Vec<(TimerId, K)>) {
        let now_tick = now.saturating_duration_since(self.origin).as_millis() as u64;
        while let Some((&(t, index), _)) = self.map.iter().next() {
            if t > now_tick {
                break;
            }
            if let Some(k) = self.map.remove(&(t, index)) {
                let gen = self.nodes.get(index as usize).map_or(0, |n| n.0);
                if let Some(n) = self.nodes.get_mut(index as usize) {
                    n.1 = None;
                }
                self.free.push(index);
                fired.push((TimerId { index, gen }, k));
            }
        }
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
