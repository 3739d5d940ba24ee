//! Balancers: how a group chooses a peer. A balancer is a provider behind
//! the [`Balancer`] trait; a module may add its own.

use std::ops::Range;
use std::time::Instant;

use super::{PeerState, PickCx, Tried, UpstreamGroup};

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
}

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
        let mut best: Option<usize> = None;
        let mut total = 0i64;
        for i in candidates {
            if tried.contains(i) || !group.available(i, &state[i], now) {
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
}
