//! The consistent-hash ring: each server of the tier owns 16 points per unit of weight, placed
//! by hashing its id, so a server going down or up moves only the keys nearest its own points.
use std::sync::Arc;

use super::hashfn::full_hash;
use super::{cur_at, signature, usable_at, weight_at, LoadBound};
use crate::runtime::state::ServerState;

/// Points per unit of weight (HAProxy's weight scale).
const POINTS_PER_WEIGHT: u32 = 16;
/// Spacing between two servers' point seeds (HAProxy's effective weight range), so seeds of
/// different server ids never overlap.
const SEED_STRIDE: u32 = 256 * 16;

#[derive(Debug, Default)]
pub struct Ring {
    built_from: Vec<(usize, u32)>,
    scratch: Vec<(usize, u32)>,
    /// (point, server position), sorted by point.
    points: Vec<(u32, usize)>,
    /// Weight declared before each server of the tier, by server position (for load bounds).
    cumulative: Vec<u64>,
    /// Where round robin over the ring stopped.
    last: usize,
}

impl Ring {
    /// Rebuilds the ring when the tier or a weight changed. O(servers) when nothing changed;
    /// a rebuild is O(points × log points), points = 16 × total weight.
    pub fn refresh(&mut self, servers: &[Arc<ServerState>], cands: &[usize]) {
        signature(servers, cands, &mut self.scratch);
        if self.scratch == self.built_from && !self.points.is_empty() {
            return;
        }
        std::mem::swap(&mut self.scratch, &mut self.built_from);
        self.points.clear();
        self.cumulative.clear();
        self.cumulative.resize(servers.len(), 0);
        let mut sum = 0u64;
        for &(i, w) in &self.built_from {
            if let Some(c) = self.cumulative.get_mut(i) {
                *c = sum;
            }
            sum += u64::from(w);
            // The server's id seeds its points, as `hash-key id` does.
            let id = servers.get(i).map_or(i as u32 + 1, |s| s.id);
            let seed = id.wrapping_mul(SEED_STRIDE);
            for n in 0..w.saturating_mul(POINTS_PER_WEIGHT) {
                self.points.push((full_hash(seed.wrapping_add(n)), i));
            }
        }
        // Stable: equal points keep declaration order.
        self.points.sort_by_key(|&(p, _)| p);
        if self.last >= self.points.len() {
            self.last = 0;
        }
    }

    /// The server owning the point closest to `hash` (the earlier one on a tie); if it is full,
    /// avoided, or over its load bound, the next suitable server clockwise. When every usable
    /// server is avoided or over its bound, the first usable one found is returned anyway.
    /// O(log points) to locate, O(points) worst case to walk.
    pub fn by_hash(
        &self,
        servers: &[Arc<ServerState>],
        hash: u32,
        avoid: Option<usize>,
        bound: Option<&LoadBound>,
    ) -> Option<usize> {
        let len = self.points.len();
        if len == 0 {
            return None;
        }
        let next = self.points.partition_point(|&(p, _)| p < hash) % len;
        let prev = (next + len - 1) % len;
        let key = |k: usize| self.points.get(k).map_or(0, |&(p, _)| p);
        let start = if hash.wrapping_sub(key(prev)) <= key(next).wrapping_sub(hash) { prev } else { next };
        self.walk(servers, start, avoid, bound).map(|(_, i)| i)
    }

    /// Round robin along the ring, for when the key is missing. O(points) worst case.
    pub fn next_rr(&mut self, servers: &[Arc<ServerState>], avoid: Option<usize>) -> Option<usize> {
        let len = self.points.len();
        if len == 0 {
            return None;
        }
        let (k, i) = self.walk(servers, (self.last + 1) % len, avoid, None)?;
        self.last = k;
        Some(i)
    }

    fn walk(
        &self,
        servers: &[Arc<ServerState>],
        start: usize,
        avoid: Option<usize>,
        bound: Option<&LoadBound>,
    ) -> Option<(usize, usize)> {
        let len = self.points.len();
        let mut fallback: Option<(usize, usize)> = None;
        let mut avoided: Option<(usize, usize)> = None;
        for step in 0..len {
            let k = (start + step) % len;
            let Some(&(_, i)) = self.points.get(k) else { continue };
            if !usable_at(servers, i) {
                continue;
            }
            if Some(i) == avoid {
                avoided = avoided.or(Some((k, i)));
                continue;
            }
            let within = bound.is_none_or(|b| {
                let cum = self.cumulative.get(i).copied().unwrap_or(0);
                b.allows(cur_at(servers, i), weight_at(servers, i), cum)
            });
            if within {
                return Some((k, i));
            }
            fallback = fallback.or(Some((k, i)));
        }
        fallback.or(avoided)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn ring_holds_sixteen_points_per_weight() {
        let servers = farm(&[1, 2]);
        let mut r = Ring::default();
        r.refresh(&servers, &[0, 1]);
        assert_eq!(r.points.len(), 48);
        assert!(r.points.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn ring_lookup_is_stable_and_covers_every_server() {
        let servers = farm(&[1, 1, 1]);
        let mut r = Ring::default();
        r.refresh(&servers, &[0, 1, 2]);
        let got: Vec<usize> = (0..300u32).filter_map(|k| r.by_hash(&servers, full_hash(k), None, None)).collect();
        let again: Vec<usize> = (0..300u32).filter_map(|k| r.by_hash(&servers, full_hash(k), None, None)).collect();
        assert_eq!(got, again);
        assert!(counts(&got, 3).iter().all(|&c| c > 30), "{:?}", counts(&got, 3));
    }
}
