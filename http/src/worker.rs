//! A worker: one thread, one `mio::Poll`, its own listening sockets
//! (SO_REUSEPORT) and its own connections. Nothing is shared on the hot
//! path; the master talks to a worker through [`WorkerShared`] (a command
//! word and a waker).
//!
//! The loop: wait for events until the earliest timer; accept until
//! WouldBlock (pausing on EMFILE-class errors instead of spinning); drive
//! each ready connection; fire expired timers; obey commands.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Waker};
use sluice_core::event::{
    token, token_parts, Slab, TimerId, Timers, ROLE_CLIENT, ROLE_LISTENER, ROLE_ROUTED, ROLE_WAKER,
};
use sluice_core::log::Level;
use sluice_core::{log_error, Chain};

use crate::config::HttpConfig;
use crate::connection::{self, Event, Next, Slot};
use crate::request::Conn;

/// No command.
const CMD_NONE: u8 = 0;
/// Stop accepting, close idle connections, finish the others, exit.
pub const CMD_QUIT: u8 = 1;
/// Exit now.
pub const CMD_STOP: u8 = 2;

/// What the master shares with a worker.
#[derive(Debug)]
pub struct WorkerShared {
    waker: Waker,
    cmd: AtomicU8,
}

impl WorkerShared {
    /// Sends a command and wakes the worker.
    pub fn command(&self, cmd: u8) {
        self.cmd.store(cmd, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

static CONNECTION_IDS: AtomicU64 = AtomicU64::new(1);

/// How often modules' periodic work runs (see `sluice_core::event::add_tick`).
const TICK: Duration = Duration::from_secs(1);

struct Entry {
    slot: Option<Slot>,
    /// The timer in the tree for this connection, if any: it may fire
    /// before `deadline` (see [`Worker::arm`]).
    timer: Option<TimerId>,
    /// When the connection's current wait times out.
    deadline: Option<Instant>,
}

/// A worker, ready to run on its thread.
pub struct Worker {
    poll: Poll,
    http: Arc<HttpConfig>,
    listeners: Vec<(TcpListener, usize)>,
    conns: Slab<Entry>,
    timers: Timers,
    max_conns: usize,
    shared: Arc<WorkerShared>,
    accept_paused_until: Option<Instant>,
    quitting: bool,
    /// `worker_shutdown_timeout`.
    shutdown_timeout: Option<Duration>,
    /// While quitting with a `worker_shutdown_timeout`: when the
    /// connections still open are closed.
    quit_deadline: Option<Instant>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("connections", &self.conns.len()).finish()
    }
}

impl Worker {
    /// A worker for `http`, with one bound listener per listen site (same
    /// order as `http.listens`).
    pub fn new(
        http: Arc<HttpConfig>,
        listeners: Vec<TcpListener>,
        max_conns: usize,
        shutdown_timeout: Option<Duration>,
    ) -> io::Result<(Worker, Arc<WorkerShared>)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), token(0, ROLE_WAKER, 0))?;
        let shared = Arc::new(WorkerShared { waker, cmd: AtomicU8::new(CMD_NONE) });
        let mut ls = Vec::new();
        for (i, mut l) in listeners.into_iter().enumerate() {
            poll.registry().register(&mut l, token(i, ROLE_LISTENER, 0), Interest::READABLE)?;
            ls.push((l, i));
        }
        Ok((
            Worker {
                poll,
                http,
                listeners: ls,
                conns: Slab::new(),
                timers: Timers::new(),
                max_conns,
                shared: shared.clone(),
                accept_paused_until: None,
                quitting: false,
                shutdown_timeout,
                quit_deadline: None,
            },
            shared,
        ))
    }

    /// Runs until told to stop (or to quit and all connections are done),
    /// then lets modules finish their per-worker work (buffered logs).
    pub fn run(mut self) {
        match self.poll.registry().try_clone() {
            Ok(reg) => crate::task_io::install(reg),
            Err(e) => {
                log_error!(Level::Alert, None, "epoll registry clone failed ({})", sluice_core::log::os_error(&e))
            }
        }
        self.run_loop();
        sluice_core::event::run_ticks(Instant::now(), true);
    }

    fn run_loop(&mut self) {
        let mut events = Events::with_capacity(512);
        let mut next_tick = Instant::now() + TICK;
        loop {
            let timeout = self.timers.next_deadline().map(|d| d.saturating_duration_since(Instant::now()));
            let timeout = if sluice_core::event::has_ticks() {
                let t = next_tick.saturating_duration_since(Instant::now());
                Some(timeout.map_or(t, |x| x.min(t)))
            } else {
                timeout
            };
            let until = |at: Instant| at.saturating_duration_since(Instant::now());
            let timeout = [self.accept_paused_until, self.quit_deadline]
                .into_iter()
                .flatten()
                .map(until)
                .fold(timeout, |t, d| Some(t.map_or(d, |t| t.min(d))));
            let polled = self.poll.poll(&mut events, timeout);
            sluice_core::event::refresh_now();
            if let Err(e) = polled {
                if e.kind() != io::ErrorKind::Interrupted {
                    log_error!(Level::Alert, None, "epoll_wait() failed ({})", sluice_core::log::os_error(&e));
                    return;
                }
            }
            // Two passes over the batch: first the sockets a request's task
            // waits on (upstream connections), then clients and listeners.
            // A response finished in the first pass gives back its upstream
            // connection before the second starts requests that want one,
            // so a batch with both reuses connections instead of opening
            // new ones while others go idle.
            for clients in [false, true] {
                for ev in events.iter() {
                    let (slot, role, gen) = token_parts(ev.token());
                    let client_side = matches!(role, ROLE_CLIENT | ROLE_LISTENER | ROLE_WAKER);
                    if client_side != clients {
                        continue;
                    }
                    match role {
                        ROLE_WAKER => {}
                        ROLE_LISTENER => self.accept(slot),
                        ROLE_CLIENT => {
                            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                            let writable = ev.is_writable() || ev.is_write_closed();
                            let read_closed = ev.is_read_closed() || ev.is_error();
                            self.drive(slot, gen, Event::Ready { readable, writable, read_closed });
                        }
                        _ => {
                            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                            let writable = ev.is_writable() || ev.is_write_closed() || ev.is_error();
                            let (slot, gen, role) = if role == ROLE_ROUTED {
                                match crate::task_io::route(slot) {
                                    Some(to) => to,
                                    None => continue,
                                }
                            } else {
                                (slot, gen, role)
                            };
                            let read_closed = ev.is_read_closed() || ev.is_error();
                            self.drive(slot, gen, Event::Io { role, readable, writable, read_closed });
                        }
                    }
                }
            }
            if let Some(p) = self.accept_paused_until {
                if Instant::now() >= p {
                    self.accept_paused_until = None;
                    for i in 0..self.listeners.len() {
                        self.accept(i);
                    }
                }
            }
            let now = sluice_core::event::refresh_now();
            while let Some((_, tok)) = self.timers.pop_expired(now) {
                let (slot, _, gen) = token_parts(tok);
                let Some(e) = self.conns.get_mut(slot, gen) else {
                    continue;
                };
                e.timer = None;
                match e.deadline {
                    Some(d) if d <= now => self.drive(slot, gen, Event::Timeout),
                    // Armed for an earlier wait: on to the current deadline.
                    Some(d) => e.timer = Some(self.timers.add(d, tok)),
                    None => {}
                }
            }
            if now >= next_tick {
                next_tick = now + TICK;
                sluice_core::event::run_ticks(now, false);
            }
            // The cycle's events and timers are handled: deferred work now.
            sluice_core::event::run_cycle_end();
            match self.shared.cmd.load(Ordering::SeqCst) {
                CMD_STOP => return,
                CMD_QUIT if !self.quitting => self.start_quit(),
                _ => {}
            }
            if self.quit_deadline.is_some_and(|d| now >= d) {
                self.close_all();
            }
            if self.quitting && self.conns.is_empty() {
                return;
            }
        }
    }

    fn start_quit(&mut self) {
        self.quitting = true;
        self.quit_deadline = self.shutdown_timeout.map(|t| Instant::now() + t);
        // Take what is already queued, then close the listeners.
        for i in 0..self.listeners.len() {
            self.accept(i);
        }
        for (mut l, _) in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut l);
        }
        // Idle keep-alive connections are closed at once.
        for (slot, gen) in self.conns.slots() {
            let idle = matches!(
                self.conns.get_mut(slot, gen).and_then(|e| e.slot.as_ref()),
                Some(Slot::Head { conn, keepalive: true, .. }) if conn.rbuf.is_empty()
            );
            if idle {
                self.close(slot, gen);
            }
        }
    }

    /// `worker_shutdown_timeout` has passed: closes every connection
    /// still open, whatever it is doing, so the worker can end.
    fn close_all(&mut self) {
        let open = self.conns.slots();
        if !open.is_empty() {
            log_error!(Level::Notice, None, "worker_shutdown_timeout: closing {} connection(s)", open.len());
        }
        for (slot, gen) in open {
            self.close(slot, gen);
        }
    }

    fn accept(&mut self, index: usize) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some((listener, site)) = self.listeners.get(index) else {
                return;
            };
            let site = *site;
            match listener.accept() {
                Ok((stream, peer)) => {
                    if self.conns.len() >= self.max_conns {
                        log_error!(Level::Alert, None, "{} worker_connections are not enough", self.max_conns);
                        drop(stream);
                        continue;
                    }
                    self.add_connection(stream, peer, site);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if sluice_core::net::accept_error_is_resource_limit(&e) => {
                    log_error!(Level::Crit, None, "accept4() failed ({})", sluice_core::log::os_error(&e));
                    self.accept_paused_until = Some(Instant::now() + Duration::from_millis(500));
                    return;
                }
                Err(e) => {
                    log_error!(Level::Error, None, "accept4() failed ({})", sluice_core::log::os_error(&e));
                    return;
                }
            }
        }
    }

    fn add_connection(&mut self, mut stream: mio::net::TcpStream, peer: SocketAddr, site: usize) {
        let local = stream.local_addr().unwrap_or(self.http.listens[site].addr);
        let id = CONNECTION_IDS.fetch_add(1, Ordering::Relaxed);
        let (slot, gen) = self.conns.insert(Entry { slot: None, timer: None, deadline: None });
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token(slot, ROLE_CLIENT, gen),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log_error!(Level::Alert, Some(id), "epoll_ctl() failed ({})", sluice_core::log::os_error(&e));
            self.conns.remove(slot);
            return;
        }
        let conn = Box::new(Conn {
            stream,
            id,
            peer,
            local,
            rbuf: BytesMut::new(),
            requests: 0,
            pipelined: false,
            corked: false,
            nodelay: false,
            read: sluice_core::io::ReadReadiness::new(),
            accepted: sluice_core::event::now(),
            out: Chain::new(),
            write_blocked: false,
            broken: false,
            http: self.http.clone(),
            site,
            slot,
            generation: gen,
        });
        let next = connection::read_head(conn, false);
        self.settle(slot, gen, next);
    }

    fn drive(&mut self, slot: usize, gen: u16, ev: Event) {
        let Some(entry) = self.conns.get_mut(slot, gen) else {
            return;
        };
        let Some(state) = entry.slot.take() else {
            return;
        };
        let next = connection::drive(state, ev);
        self.settle(slot, gen, next);
    }

    /// Drives a connection until it waits or closes (pipelined requests
    /// are served one after the other here, without recursion).
    fn run_ready(next: Next) -> Next {
        let mut next = next;
        while let Next::Ready(state) = next {
            next = connection::drive(state, Event::Continue);
        }
        next
    }

    fn settle(&mut self, slot: usize, gen: u16, next: Next) {
        let tok = token(slot, ROLE_CLIENT, gen);
        match Self::run_ready(next) {
            Next::Ready(_) => unreachable!("run_ready drives until the connection waits or closes"),
            Next::Close => self.close(slot, gen),
            Next::Wait(state, deadline) => {
                let quit_idle =
                    self.quitting && matches!(&state, Slot::Head { conn, keepalive: true, .. } if conn.rbuf.is_empty());
                let Some(entry) = self.conns.get_mut(slot, gen) else {
                    return;
                };
                entry.slot = Some(state);
                if quit_idle {
                    self.close(slot, gen);
                    return;
                }
                entry.deadline = deadline;
                Self::arm(&mut self.timers, entry, tok);
            }
        }
    }

    /// Makes sure a timer fires no later than the entry's deadline. As
    /// nginx's lazy timer updates: a timer already armed for an earlier
    /// moment stays (when it fires, the loop re-arms it for the deadline
    /// then current, or drops it when the connection no longer waits), so
    /// a keep-alive connection, whose deadline moves forward with every
    /// request and disappears while a request is active, does not remove
    /// and insert a timer per request.
    fn arm(timers: &mut Timers, entry: &mut Entry, tok: mio::Token) {
        let Some(d) = entry.deadline else {
            return;
        };
        if entry.timer.is_some_and(|t| t.deadline() <= d) {
            return;
        }
        if let Some(t) = entry.timer.take() {
            timers.cancel(t, tok);
        }
        entry.timer = Some(timers.add(d, tok));
    }

    fn close(&mut self, slot: usize, gen: u16) {
        let tok = token(slot, ROLE_CLIENT, gen);
        if let Some(entry) = self.conns.get_mut(slot, gen) {
            if let Some(t) = entry.timer.take() {
                self.timers.cancel(t, tok);
            }
            if let Some(mut state) = entry.slot.take() {
                let conn = match &mut state {
                    Slot::Head { conn, .. } | Slot::Lingering { conn, .. } => conn,
                    Slot::Active(r) => &mut r.conn,
                };
                let _ = self.poll.registry().deregister(&mut conn.stream);
            }
        }
        self.conns.remove(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn arm_keeps_an_earlier_timer_and_replaces_a_later_one() {
        let mut timers = Timers::new();
        let tok = token(1, ROLE_CLIENT, 0);
        let t0 = Instant::now();
        let mut e = Entry { slot: None, timer: None, deadline: Some(t0 + Duration::from_secs(5)) };
        Worker::arm(&mut timers, &mut e, tok);
        assert_eq!(e.timer.map(|t| t.deadline()), Some(t0 + Duration::from_secs(5)));
        // A later deadline (the next keep-alive wait) keeps the armed timer.
        e.deadline = Some(t0 + Duration::from_secs(9));
        Worker::arm(&mut timers, &mut e, tok);
        assert_eq!(e.timer.map(|t| t.deadline()), Some(t0 + Duration::from_secs(5)));
        assert_eq!(timers.len(), 1);
        // No deadline (an active request) leaves it too.
        e.deadline = None;
        Worker::arm(&mut timers, &mut e, tok);
        assert_eq!(timers.len(), 1);
        // An earlier deadline replaces it.
        e.deadline = Some(t0 + Duration::from_secs(1));
        Worker::arm(&mut timers, &mut e, tok);
        assert_eq!(e.timer.map(|t| t.deadline()), Some(t0 + Duration::from_secs(1)));
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(1)));
    }
}
