//! `least_conn`: the peer with the fewest requests in flight relative to
//! its weight (`conns / weight`, compared by cross-multiplying as nginx
//! does); peers that tie share the load by smooth weighted round robin.
//! Backups, when every primary peer is unavailable, are chosen the same way.

use std::ops::Range;
use std::time::Instant;

use super::balancer::{smooth_wrr, usable, Balancer};
use super::{PeerState, PickCx, Tried, UpstreamGroup};

/// The `least_conn` balancer.
#[derive(Clone, Copy, Debug, Default)]
pub struct LeastConn;

/// `conns / weight` of `a` compared with that of `b`.
pub(crate) fn load_cmp(group: &UpstreamGroup, state: &[PeerState], a: usize, b: usize) -> std::cmp::Ordering {
    let la = u64::from(state[a].conns) * u64::from(group.peer(b).weight);
    let lb = u64::from(state[b].conns) * u64::from(group.peer(a).weight);
    la.cmp(&lb)
}

impl Balancer for LeastConn {
    fn name(&self) -> &'static str {
        "least_conn"
    }

    fn pick(
        &self,
        group: &UpstreamGroup,
        state: &mut [PeerState],
        candidates: Range<usize>,
        _cx: &PickCx<'_>,
        tried: &Tried,
        now: Instant,
    ) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut many = false;
        for i in candidates.clone() {
            if !usable(group, state, i, tried, now) {
                continue;
            }
            match best.map(|b| load_cmp(group, state, i, b)) {
                None | Some(std::cmp::Ordering::Less) => {
                    best = Some(i);
                    many = false;
                }
                Some(std::cmp::Ordering::Equal) => many = true,
                Some(std::cmp::Ordering::Greater) => {}
            }
        }
        let b = best?;
        if !many {
            return Some(b);
        }
        let keep = |i: usize, st: &[PeerState]| {
            usable(group, st, i, tried, now) && load_cmp(group, st, i, b) == std::cmp::Ordering::Equal
        };
        smooth_wrr(group, state, b..candidates.end, keep)
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
    fn fewest_connections_win() {
        let g = group_of(&[1, 1, 1], Box::new(LeastConn));
        let now = Instant::now();
        // Three requests in flight spread over the three peers.
        let held: Vec<usize> = (0..3).map(|_| g.pick_at(&cx(), &mut Tried::default(), now).unwrap()).collect();
        let mut sorted = held.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2]);
        // Peer 1 finishes: the next request goes there.
        g.release(1, false);
        assert_eq!(g.pick_at(&cx(), &mut Tried::default(), now), Some(1));
    }

    #[test]
    fn weight_scales_the_count_and_ties_go_round_robin() {
        let g = group_of(&[2, 1], Box::new(LeastConn));
        let now = Instant::now();
        let picks: Vec<usize> = (0..3).map(|_| g.pick_at(&cx(), &mut Tried::default(), now).unwrap()).collect();
        // With nothing in flight both tie: weights 2:1 decide; then peer 0
        // holds 2 with weight 2 while peer 1 holds 1 with weight 1.
        assert_eq!(picks.iter().filter(|&&p| p == 0).count(), 2);
        assert_eq!(picks.iter().filter(|&&p| p == 1).count(), 1);
        // Idle again: ties follow smooth weighted round robin 2:1.
        for p in picks {
            g.release(p, false);
        }
        let mut seq = Vec::new();
        for _ in 0..6 {
            let p = g.pick_at(&cx(), &mut Tried::default(), now).unwrap();
            g.release(p, false);
            seq.push(p);
        }
        assert_eq!(seq.iter().filter(|&&p| p == 0).count(), 4);
    }

    #[test]
    fn tried_and_down_peers_are_skipped() {
        let mut g = group_of(&[1, 1, 1], Box::new(LeastConn));
        g.peers[0].down = true;
        let mut tried = Tried::default();
        let now = Instant::now();
        let first = g.pick_at(&cx(), &mut tried, now).unwrap();
        let second = g.pick_at(&cx(), &mut tried, now).unwrap();
        assert!(first != 0 && second != 0 && first != second);
        assert_eq!(g.pick_at(&cx(), &mut tried, now), None);
    }
}
