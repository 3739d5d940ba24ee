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
}

thread_local! {
    static POOL: RefCell<Vec<Idle>> = const { RefCell::new(Vec::new()) };
}

/// Takes an idle connection to `peer` of `group`, if a live one is there.
pub fn take(group: &UpstreamGroup, peer: usize, now: Instant) -> Option<Idle> {
    group.keepalive?;
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        expire(&mut p, now);
        // Most recently parked last: take from the end. `keepalive_time` is
        // judged when a connection is parked: one parked in time serves its
        // next request, as in nginx. One the upstream closed meanwhile is
        // found by the request (its read sees the end) and replaced by a
        // fresh connection; probing it here would cost a system call per
        // request.
        let i = p.iter().rposition(|c| c.group == group.id && c.peer == peer)?;
        Some(p.remove(i))
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
        expire(&mut p, now);
        let same = p.iter().filter(|c| c.group == group.id).count();
        if same >= ka.max_idle {
            if let Some(i) = p.iter().position(|c| c.group == group.id) {
                p.remove(i);
            }
        }
        p.push(Idle { stream, group: group.id, peer, created, requests, idle_since: now, timeout: ka.timeout, route });
    });
}

fn reusable(ka: &KeepaliveConf, created: Instant, requests: u64, now: Instant) -> bool {
    requests < ka.requests && now.saturating_duration_since(created) < ka.time && ka.max_idle > 0
}

fn expire(p: &mut Vec<Idle>, now: Instant) {
    p.retain(|c| now.saturating_duration_since(c.idle_since) < c.timeout);
}

/// Idle connections in this worker's pool (for tests).
pub fn idle_count() -> usize {
    POOL.with(|p| p.borrow().len())
}
