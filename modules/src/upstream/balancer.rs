//! Balancers: how a group chooses a peer. A balancer is a provider behind
//! the [`Balancer`] trait; a module may add its own (see the module doc of
//! [`super`] and [`super::balancer_directive`]).
//!
//! Every balancer here follows nginx's rules for a peer it may choose: not
//! tried by this request, not `down`, not failed `max_fails` times within
//! `fail_timeout`, under `max_conns` ([`UpstreamGroup::available`]). The
//! hashing ones fall back to round robin after 20 unusable choices, as
//! nginx's do.

use std::ops::Range;
use std::time::Instant;

use super::{PeerConf, PeerState, PickCx, Tried, UpstreamGroup};

/// Chooses a peer among `candidates` (indexes into the group's peers) that
/// the request has not tried and that are available
/// ([`UpstreamGroup::available`]). Called with the group's state locked.
pub trait Balancer: Send + Sync {
    /// The balancer's name (`round_robin`, `ip_hash`, ...).
    fn name(&self) -> &'static str;
    /// The chosen peer's index, or `None` when none is available.
    fn pick(
        &self,
        group: &UpstreamGroup,
        state: &mut [PeerState],
        candidates: Range<usize>,
        cx: &PickCx<'_>,
        tried: &Tried,
        now: Instant,
    ) -> Option<usize>;

    /// Called once with the group's primary peers when the group is built
    /// (nginx's `init_upstream`): a balancer that precomputes something
    /// from the peers (the consistent-hash ring) does it here.
    fn init(&mut self, _peers: &[PeerConf]) {}

    /// Whether `server ... backup` may be used with this balancer. When it
    /// says no, `backup` written after the balancer's directive is
    /// rejected, and backups written before it are chosen by round robin.
    fn allows_backup(&self) -> bool {
        true
    }
}

/// True when peer `i` may be chosen for this request now.
pub(crate) fn usable(group: &UpstreamGroup, state: &[PeerState], i: usize, tried: &Tried, now: Instant) -> bool {
    !tried.contains(i) && group.available(i, &state[i], now)
}

/// Smooth weighted round robin among the peers of `range` that `keep`
/// accepts: each adds its effective weight to its current weight (and
/// recovers one unit of effective weight), the highest wins and gives back
/// the total.
pub(crate) fn smooth_wrr(
    group: &UpstreamGroup,
    state: &mut [PeerState],
    range: Range<usize>,
    keep: impl Fn(usize, &[PeerState]) -> bool,
) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut total = 0i64;
    for i in range {
        if !keep(i, state) {
            continue;
        }
        let st = &mut state[i];
        st.current_weight += st.effective_weight;
        total += st.effective_weight;
        if st.effective_weight < group.peer(i).weight as i64 {
            st.effective_weight += 1;
        }
        let weight = st.current_weight;
        if best.is_none_or(|b| weight > state[b].current_weight) {
            best = Some(i);
        }
    }
    let b = best?;
    state[b].current_weight -= total;
    Some(b)
}

/// The peer of `candidates` that `w` falls on when each peer owns a run of
/// numbers as long as its weight (nginx's walk for `ip_hash` and `hash`).
pub(crate) fn by_weight(group: &UpstreamGroup, candidates: Range<usize>, mut w: u64) -> usize {
    let last = candidates.end - 1;
    for i in candidates {
        let weight = u64::from(group.peer(i).weight);
        if w < weight {
            return i;
        }
        w -= weight;
    }
    last
}

/// The sum of the configured weights of `candidates` (down peers included,
/// as nginx's `total_weight`, so that a peer going down moves no key).
pub(crate) fn total_weight(group: &UpstreamGroup, candidates: Range<usize>) -> u64 {
    candidates.map(|i| u64::from(group.peer(i).weight)).sum()
}

/// How many unusable choices a hashing balancer makes before it falls back
/// to round robin (nginx's 20).
pub(crate) const HASH_TRIES: usize = 20;

/// Smooth weighted round robin (nginx's default): each pick adds every
/// peer's effective weight to its current weight, takes the peer with the
/// highest, and subtracts the total from it — weights 5,1,1 give
/// a a b a c a a, not a a a a a b c.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobin;

impl Balancer for RoundRobin {
    fn name(&self) -> &'static str {
        "round_robin"
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
        smooth_wrr(group, state, candidates, |i, st| usable(group, st, i, tried, now))
    }
}
