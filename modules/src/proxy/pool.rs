//! The per-worker pool of idle upstream keep-alive connections (`keepalive N`
//! in an `upstream` block).
//!
//! Each worker thread keeps its own pool: a connection is only ever used by
//! the worker that opened it, so the pool needs no lock. Idle connections
//! are not registered with the poll (a request registers the one it takes);
//! a connection the upstream closed while idle is found when taken
//! ([`UpstreamStream::idle_alive`]) and dropped. The pool holds at most N
//! connections per group, dropping the least recently used, and forgets
//! those idle longer than `keepalive_timeout`, older than `keepalive_time`
//! or used `keepalive_requests` times.
//!
//! The limit of N is kept between event cycles, not at every park: within
//! one batch of events a connection parked beyond N waits for the end of
//! the batch ([`trim`], run by the worker before it polls again), so a
//! request started later in the same batch takes it instead of opening a
//! new connection while the pool closes another. nginx closes the least
//! recently used one at once; under load (more requests in flight than N)
//! that closes and reopens connections in every batch.

use std::cell::RefCell;
use std::time::Instant;

use sluice_http::task_io::Route;

use super::stream::UpstreamStream;
use crate::upstream::{KeepaliveConf, UpstreamGroup};

/// An idle connection.
pub struct Idle {
    /// The socket (deregistered).
    pub stream: UpstreamStream,
    /// The group it belongs to (`UpstreamGroup::id`) and the peer index.
    group: u64,
    peer: usize,
    /// When it was opened (`keepalive_time`).
    pub created: Instant,
    /// Requests it has served (`keepalive_requests`).
    pub requests: u64,
    /// When it went idle (`keepalive_timeout`).
    idle_since: Instant,
    /// Its route in the poll (parked while idle).
    pub route: Route,
    timeout: std::time::Duration,
    /// The group's `keepalive N`, for [`trim`].
    max_idle: usize,
}

/// This worker's idle connections, and the earliest moment one of them
/// passes its `keepalive_timeout` (`None`: none is idle): until then there
/// is nothing to expire, so taking and parking a connection do not walk the
/// whole pool each time.
struct Pool {
    idle: Vec<Idle>,
    next_expiry: Option<Instant>,
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { idle: Vec::new(), next_expiry: None }) };
}

/// Takes an idle connection to `peer` of `group`, if a live one is there.
pub fn take(group: &UpstreamGroup, peer: usize, now: Instant) -> Option<Idle> {
    group.keepalive?;
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        p.expire(now);
        // Most recently parked last: take from the end. `keepalive_time` is
        // judged when a connection is parked: one parked in time serves its
        // next request, as in nginx. One the upstream closed meanwhile is
        // found by the request (its read sees the end) and replaced by a
        // fresh connection; probing it here would cost a system call per
        // request.
        let i = p.idle.iter().rposition(|c| c.group == group.id && c.peer == peer)?;
        Some(p.idle.remove(i))
    })
}

/// Parks a connection after a complete response; drops it when the limits
/// say so.
pub fn put(
    group: &UpstreamGroup,
    peer: usize,
    stream: UpstreamStream,
    route: Route,
    created: Instant,
    requests: u64,
    now: Instant,
) {
    let Some(ka) = group.keepalive else { return };
    if !reusable(&ka, created, requests, now) {
        return;
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        p.expire(now);
        let same = p.idle.iter().filter(|c| c.group == group.id).count();
        if same >= ka.max_idle {
            // Over the limit until the end of this event cycle.
            sluice_core::event::at_cycle_end(trim);
        }
        // A timeout too far off for the clock never expires.
        if let Some(expiry) = now.checked_add(ka.timeout) {
            p.next_expiry = Some(p.next_expiry.map_or(expiry, |e| e.min(expiry)));
        }
        p.idle.push(Idle {
            stream,
            group: group.id,
            peer,
            created,
            requests,
            idle_since: now,
            timeout: ka.timeout,
            route,
            max_idle: ka.max_idle,
        });
    });
}

/// Closes the least recently parked connections of each group beyond its
/// `keepalive N` (run at the end of an event cycle in which a park went
/// over the limit).
fn trim() {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        // Oldest first: dropping from the front of a group over its limit
        // keeps its N most recently parked.
        let mut i = 0;
        while i < p.idle.len() {
            let (group, max_idle) = (p.idle[i].group, p.idle[i].max_idle);
            if p.idle.iter().filter(|c| c.group == group).count() > max_idle {
                p.idle.remove(i);
            } else {
                i += 1;
            }
        }
    });
}

fn reusable(ka: &KeepaliveConf, created: Instant, requests: u64, now: Instant) -> bool {
    requests < ka.requests && now.saturating_duration_since(created) < ka.time && ka.max_idle > 0
}

impl Pool {
    /// Drops the connections idle for their `keepalive_timeout` or longer.
    fn expire(&mut self, now: Instant) {
        if self.next_expiry.is_none_or(|at| now < at) {
            return;
        }
        self.idle.retain(|c| now.saturating_duration_since(c.idle_since) < c.timeout);
        self.next_expiry = self.idle.iter().filter_map(|c| c.idle_since.checked_add(c.timeout)).min();
    }
}

/// Idle connections in this worker's pool (for tests).
pub fn idle_count() -> usize {
    POOL.with(|p| p.borrow().idle.len())
}
