//! `balance random` / `random(<draws>)`: draw servers at random in proportion to their
//! weights and keep the least loaded for its weight (the power of N choices; default N = 2).
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{candidates, cumulative_weights, cur_at, usable_at, weight_at, Balancer, LoadBound, PickCtx};
use crate::runtime::state::ServerState;

/// xorshift64*: small, fast, and good enough to spread draws; not for secrets.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn seeded(seed: u64) -> XorShift {
        // splitmix64 turns any seed (even 0) into a well-mixed non-zero state.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        XorShift((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in 0..n for n far below 2^64.
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// Distinct seeds for balancers built in the same instant.
static SEEDS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
pub struct Random {
    draws: u32,
    factor: Option<u32>,
    allbackups: bool,
    rng: XorShift,
    cands: Vec<usize>,
    cumulative: Vec<u64>,
    /// (position, weight) of the servers a draw may land on.
    pool: Vec<(usize, u32)>,
}

impl Random {
    pub fn new(draws: u32, factor: Option<u32>, allbackups: bool) -> Random {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let n = SEEDS.fetch_add(1, Ordering::Relaxed);
        Random::with_seed(draws, factor, allbackups, now ^ n.rotate_left(32))
    }

    pub fn with_seed(draws: u32, factor: Option<u32>, allbackups: bool, seed: u64) -> Random {
        Random {
            draws: draws.max(1),
            factor,
            allbackups,
            rng: XorShift::seeded(seed),
            cands: Vec::new(),
            cumulative: Vec::new(),
            pool: Vec::new(),
        }
    }

    /// One server drawn in proportion to its weight. O(pool).
    fn draw(&mut self) -> Option<usize> {
        let total: u64 = self.pool.iter().map(|&(_, w)| u64::from(w)).sum();
        let mut r = self.rng.below(total);
        for &(i, w) in &self.pool {
            let w = u64::from(w);
            if r < w {
                return Some(i);
            }
            r -= w;
        }
        None
    }
}

/// Whether `a` is less loaded than `b` for their weights: fewer sessions per weight, then
/// (standing in for HAProxy's recent session rate) fewer sessions ever per weight.
fn lighter(servers: &[Arc<ServerState>], a: usize, b: usize) -> bool {
    let (wa, wb) = (u64::from(weight_at(servers, a)), u64::from(weight_at(servers, b)));
    let (ca, cb) = (u64::from(cur_at(servers, a)), u64::from(cur_at(servers, b)));
    if ca * wb != cb * wa {
        return ca * wb < cb * wa;
    }
    let total = |i: usize| servers.get(i).map_or(0, |s| s.total.load(Ordering::Acquire));
    u128::from(total(a)) * u128::from(wb) < u128::from(total(b)) * u128::from(wa)
}

impl Balancer for Random {
    /// O(draws × servers).
    fn pick(&mut self, servers: &[Arc<ServerState>], ctx: &PickCtx) -> Option<usize> {
        candidates(servers, self.allbackups, &mut self.cands);
        let bound = self.factor.map(|f| LoadBound::new(servers, &self.cands, f));
        cumulative_weights(servers, &self.cands, &mut self.cumulative);
        // Draws land only on servers with room, other than the one to avoid, and within
        // their load bound when `hash-balance-factor` is set; the bound, then the avoidance,
        // are dropped when they would leave nothing.
        for strict in [(true, true), (false, true), (false, false)] {
            let (within_bound, avoiding) = strict;
            self.pool.clear();
            for (&i, &cum) in self.cands.iter().zip(&self.cumulative) {
                let ok = usable_at(servers, i)
                    && !(avoiding && Some(i) == ctx.avoid)
                    && !(within_bound
                        && bound.is_some_and(|b| !b.allows(cur_at(servers, i), weight_at(servers, i), cum)));
                if ok {
                    self.pool.push((i, weight_at(servers, i)));
                }
            }
            if !self.pool.is_empty() {
                break;
            }
        }
        let mut best = self.draw()?;
        for _ in 1..self.draws {
            if let Some(c) = self.draw() {
                if c != best && lighter(servers, c, best) {
                    best = c;
                }
            }
        }
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn random_draws_default_to_two() {
        let draws = |w: &str| match super::super::tests::typed(&[w], &[])?.algorithm {
            crate::model::balance::Algorithm::Random { draws } => Ok(draws),
            other => Err(format!("{other:?}")),
        };
        assert_eq!(draws("random"), Ok(2));
        assert_eq!(draws("random(5)"), Ok(5));
        assert!(draws("random(0)").is_err());
        assert!(draws("random(x)").is_err());
        assert!(draws("random(3").is_err());
    }

    #[test]
    fn random_two_picks_the_least_loaded_of_two() {
        // Two servers: whenever both are drawn, the idle one must win; the loaded one can only
        // come out when it is drawn twice (a quarter of the time).
        let servers = farm(&[1, 1]);
        servers[0].cur.store(10, Ordering::Release);
        let mut b = Random::with_seed(2, None, false, 7);
        let c = counts(&picks(&mut b, &servers, 4000), 2);
        assert!((800..1200).contains(&c[0]), "{c:?}");
        let mut one = Random::with_seed(1, None, false, 7);
        let c1 = counts(&picks(&mut one, &servers, 4000), 2);
        assert!((1800..2200).contains(&c1[0]), "{c1:?}");
    }

    #[test]
    fn random_many_draws_converge_on_the_least_loaded() {
        let servers = farm(&[1, 1, 1, 1]);
        servers[0].cur.store(3, Ordering::Release);
        servers[1].cur.store(1, Ordering::Release);
        servers[2].cur.store(2, Ordering::Release);
        servers[3].cur.store(4, Ordering::Release);
        let mut b = Random::with_seed(64, None, false, 1);
        assert!(picks(&mut b, &servers, 50).iter().all(|&i| i == 1));
    }

    #[test]
    fn random_balances_open_sessions() {
        let servers = farm(&[1, 1, 1]);
        let mut b = Random::with_seed(2, None, false, 42);
        open_sessions(&mut b, &servers, 300);
        let l: Vec<u32> = servers.iter().map(|s| s.cur.load(Ordering::Acquire)).collect();
        assert!(l.iter().all(|&c| (85..=115).contains(&c)), "{l:?}");
    }

    #[test]
    fn random_respects_weights() {
        let servers = farm(&[3, 1]);
        let mut b = Random::with_seed(1, None, false, 3);
        let c = counts(&picks(&mut b, &servers, 4000), 2);
        assert!((2800..3200).contains(&c[0]), "{c:?}");
    }

    #[test]
    fn random_never_picks_unusable_servers() {
        let servers =
            vec![server(0, 1, false, 0), server(1, 1, false, 1), server(2, 0, false, 0), server(3, 1, false, 0)];
        down(&servers[0]);
        servers[1].cur.store(1, Ordering::Release);
        let mut b = Random::with_seed(2, None, false, 9);
        assert!(picks(&mut b, &servers, 200).iter().all(|&i| i == 3));
    }

    #[test]
    fn random_uses_backups_only_when_actives_are_down() {
        let servers = vec![server(0, 1, false, 0), server(1, 1, true, 0), server(2, 1, true, 0)];
        let mut b = Random::with_seed(2, None, false, 5);
        assert!(picks(&mut b, &servers, 50).iter().all(|&i| i == 0));
        down(&servers[0]);
        assert!(picks(&mut b, &servers, 50).iter().all(|&i| i == 1));
        let mut all = Random::with_seed(2, None, true, 5);
        let c = counts(&picks(&mut all, &servers, 400), 3);
        assert!(c[1] > 100 && c[2] > 100, "{c:?}");
    }

    #[test]
    fn random_balance_factor_bounds_load() {
        let servers = farm(&[1, 1, 1, 1]);
        let mut b = Random::with_seed(1, Some(110), false, 11);
        open_sessions(&mut b, &servers, 400);
        let l: Vec<u32> = servers.iter().map(|s| s.cur.load(Ordering::Acquire)).collect();
        assert!(l.iter().all(|&c| c <= 111), "{l:?}");
    }

    #[test]
    fn seeds_differ_between_balancers() {
        let (mut a, mut b) = (Random::new(2, None, false), Random::new(2, None, false));
        assert_ne!(a.rng.next(), b.rng.next());
    }
}
