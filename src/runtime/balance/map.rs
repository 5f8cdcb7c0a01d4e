//! The weighted server map of `static-rr` and map-based hashing: an array holding each server
//! of the tier as many times as its weight (reduced by the farm's common divisor), spread so
//! that equal weights alternate and the first declared server comes first.
use std::sync::Arc;

use super::{signature, usable_at};
use crate::runtime::state::ServerState;

#[derive(Debug, Default)]
pub struct WeightMap {
    /// The (position, weight) list the map was built from.
    built_from: Vec<(usize, u32)>,
    scratch: Vec<(usize, u32)>,
    slots: Vec<usize>,
    /// Next slot for round robin.
    rr_idx: usize,
}

impl WeightMap {
    /// Rebuilds the map when the tier or a weight changed. O(servers) when nothing changed;
    /// a rebuild is O(total reduced weight × servers), once per state change.
    pub fn refresh(&mut self, servers: &[Arc<ServerState>], cands: &[usize]) {
        signature(servers, cands, &mut self.scratch);
        if self.scratch == self.built_from && !self.slots.is_empty() {
            return;
        }
        std::mem::swap(&mut self.scratch, &mut self.built_from);
        // Weights are reduced by the divisor common to the whole farm (as configured), so a
        // server going down does not rescale the others' share of the map.
        let divisor = servers.iter().map(|s| s.weight).filter(|&w| w > 0).fold(0, gcd).max(1);
        let reduced: Vec<(usize, i64)> =
            self.built_from.iter().map(|&(i, w)| (i, i64::from(w / divisor))).filter(|&(_, w)| w > 0).collect();
        let tot: i64 = reduced.iter().map(|&(_, w)| w).sum();
        self.slots.clear();
        let mut score = vec![0i64; reduced.len()];
        for _ in 0..tot {
            // Each server gains its weight; the one whose score crossed the most multiples of
            // the total takes the slot (the first declared on ties) and pays the total back.
            let mut best: Option<(usize, i64)> = None;
            for (k, &(_, w)) in reduced.iter().enumerate() {
                let Some(sc) = score.get_mut(k) else { continue };
                *sc += w;
                let level = (*sc + tot) / tot;
                if best.is_none_or(|(_, max)| level > max) {
                    best = Some((k, level));
                }
            }
            if let Some((k, _)) = best {
                if let (Some(sc), Some(&(i, _))) = (score.get_mut(k), reduced.get(k)) {
                    *sc -= tot;
                    self.slots.push(i);
                }
            }
        }
        if self.rr_idx >= self.slots.len() {
            self.rr_idx = 0;
        }
    }

    /// The server at `hash % total weight`, or the next usable one after it when it is full
    /// (or is the server to avoid). O(map size) in the worst case, O(1) usually.
    pub fn by_hash(&self, servers: &[Arc<ServerState>], hash: u32, avoid: Option<usize>) -> Option<usize> {
        let len = self.slots.len();
        if len == 0 {
            return None;
        }
        self.walk(servers, (hash as usize) % len, avoid).map(|(_, i)| i)
    }

    /// The next server in map order (static round robin). O(map size) worst case.
    pub fn next_rr(&mut self, servers: &[Arc<ServerState>], avoid: Option<usize>) -> Option<usize> {
        let len = self.slots.len();
        if len == 0 {
            return None;
        }
        let (slot, i) = self.walk(servers, self.rr_idx % len, avoid)?;
        self.rr_idx = (slot + 1) % len;
        Some(i)
    }

    /// From slot `start`, the first slot whose server is usable and not `avoid`; failing that,
    /// `avoid` itself when it is usable.
    fn walk(&self, servers: &[Arc<ServerState>], start: usize, avoid: Option<usize>) -> Option<(usize, usize)> {
        let len = self.slots.len();
        let mut avoided = None;
        for step in 0..len {
            let slot = (start + step) % len;
            let Some(&i) = self.slots.get(slot) else { continue };
            if !usable_at(servers, i) {
                continue;
            }
            if Some(i) == avoid {
                avoided = avoided.or(Some((slot, i)));
                continue;
            }
            return Some((slot, i));
        }
        avoided
    }

    #[cfg(test)]
    pub fn slots(&self) -> &[usize] {
        &self.slots
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn map_fills_slots_by_weight_level_and_starts_with_the_first_server() {
        // Scores are compared in whole multiples of the total, so 3:1 gives A A A B, and
        // equal weights alternate in declaration order.
        let servers = farm(&[3, 1]);
        let mut m = WeightMap::default();
        m.refresh(&servers, &[0, 1]);
        assert_eq!(m.slots(), &[0, 0, 0, 1]);
        let servers = farm(&[1, 2, 1]);
        m.refresh(&servers, &[0, 1, 2]);
        assert_eq!(counts(m.slots(), 3), vec![1, 2, 1]);
        assert_eq!(m.slots().first(), Some(&0));
    }

    #[test]
    fn map_weights_are_reduced_by_their_common_divisor() {
        let servers = farm(&[20, 10, 10]);
        let mut m = WeightMap::default();
        m.refresh(&servers, &[0, 1, 2]);
        assert_eq!(m.slots().len(), 4);
        assert_eq!(counts(m.slots(), 3), vec![2, 1, 1]);
    }

    #[test]
    fn map_hash_skips_full_servers() {
        let servers = vec![server(0, 1, false, 1), server(1, 1, false, 0)];
        let mut m = WeightMap::default();
        m.refresh(&servers, &[0, 1]);
        assert_eq!(m.by_hash(&servers, 0, None), Some(0));
        servers[0].cur.store(1, std::sync::atomic::Ordering::Release);
        assert_eq!(m.by_hash(&servers, 0, None), Some(1));
    }
}
