//! `random [two [least_conn]]`: a peer drawn at random with probability
//! proportional to its weight; with `two`, two distinct peers are drawn and
//! the one with fewer requests in flight relative to its weight wins
//! (`least_conn`, the only method, is the default). An unusable draw is
//! drawn again; after 20 such draws, round robin. Fewer than two peers:
//! round robin. `backup` servers are not allowed.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::ops::Range;
use std::time::Instant;

use super::balancer::{total_weight, usable, Balancer, RoundRobin, HASH_TRIES};
use super::least_conn::load_cmp;
use super::{PeerState, PickCx, Tried, UpstreamGroup};

/// The `random` balancer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Random {
    /// `two`: draw two and keep the less loaded.
    pub two: bool,
}

thread_local! {
    // xorshift64*, seeded once per thread from std's random hasher keys:
    // balancing needs spread, not secrecy, and no dependency is needed.
    static RNG: Cell<u64> = Cell::new(RandomState::new().build_hasher().finish() | 1);
}

/// A pseudo-random number.
pub(crate) fn next_random() -> u64 {
    RNG.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// A peer of `candidates` drawn with probability proportional to weight.
fn draw(group: &UpstreamGroup, candidates: Range<usize>, total: u64) -> usize {
    super::balancer::by_weight(group, candidates, next_random() % total)
}

impl Random {
    fn pick_two(
        &self,
        group: &UpstreamGroup,
        state: &[PeerState],
        candidates: Range<usize>,
        total: u64,
        tried: &Tried,
        now: Instant,
    ) -> Option<usize> {
        let mut first: Option<usize> = None;
        for _ in 0..=HASH_TRIES {
            let i = draw(group, candidates.clone(), total);
            if first == Some(i) || !usable(group, state, i, tried, now) {
                continue;
            }
            match first {
                None => first = Some(i),
                Some(f) if load_cmp(group, state, i, f).is_gt() => return Some(f),
                Some(_) => return Some(i),
            }
        }
        None
    }
}

impl Balancer for Random {
    fn name(&self) -> &'static str {
        if self.two {
            "random two"
        } else {
            "random"
        }
    }

    fn pick(
        &self,
        group: &UpstreamGroup,
        state: &mut [PeerState],
        candidates: Range<usize>,
        cx: &PickCx<'_>,
        tried: &Tried,
        now: Instant,
    ) -> Option<usize> {
        let total = total_weight(group, candidates.clone());
        if candidates.len() < 2 || total == 0 {
            return RoundRobin.pick(group, state, candidates, cx, tried, now);
        }
        let found = if self.two {
            self.pick_two(group, state, candidates.clone(), total, tried, now)
        } else {
            (0..=HASH_TRIES)
                .map(|_| draw(group, candidates.clone(), total))
                .find(|&i| usable(group, state, i, tried, now))
        };
        found.or_else(|| RoundRobin.pick(group, state, candidates, cx, tried, now))
    }

    fn allows_backup(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::test_support::{group_of, ip};

    fn cx() -> PickCx<'static> {
        PickCx { client: ip("127.0.0.1"), hash_key: None }
    }

    #[test]
    fn draws_follow_the_weights() {
        let g = group_of(&[3, 1], Box::new(Random { two: false }));
        let now = Instant::now();
        let mut counts = [0u32; 2];
        for _ in 0..4000 {
            let p = g.pick_at(&cx(), &mut Tried::default(), now).unwrap();
            g.release(p, false);
            counts[p] += 1;
        }
        // Expect 3000:1000; a fair generator is far inside these bounds.
        assert!((2700..=3300).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn two_keeps_the_less_loaded_of_the_pair() {
        let g = group_of(&[1, 1, 1], Box::new(Random { two: true }));
        let now = Instant::now();
        // Load peers 0 and 1 heavily: every pair drawn contains peer 2 or is
        // {0,1}; peer 2 must win whenever it is drawn, so it gets most picks.
        g.state.lock().unwrap()[0].conns = 50;
        g.state.lock().unwrap()[1].conns = 50;
        let mut on_2 = 0;
        for _ in 0..300 {
            let p = g.pick_at(&cx(), &mut Tried::default(), now).unwrap();
            g.release(p, false);
            on_2 += usize::from(p == 2);
        }
        // Pairs are {0,1}, {0,2}, {1,2} with equal odds: peer 2 wins 2/3.
        assert!(on_2 > 150, "peer 2 chosen {on_2} times of 300");
        // And the busier of a pair never wins.
        let g = group_of(&[1, 1], Box::new(Random { two: true }));
        g.state.lock().unwrap()[0].conns = 5;
        for _ in 0..50 {
            assert_eq!(g.pick_at(&cx(), &mut Tried::default(), now), Some(1));
            g.release(1, false);
        }
    }

    #[test]
    fn unusable_peers_are_never_drawn() {
        let mut g = group_of(&[1, 1, 1], Box::new(Random { two: false }));
        g.peers[1].down = true;
        let now = Instant::now();
        for _ in 0..200 {
            let p = g.pick_at(&cx(), &mut Tried::default(), now).unwrap();
            g.release(p, false);
            assert_ne!(p, 1);
        }
    }
}
