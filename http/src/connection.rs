//! The client connection state machine.
//!
//! ```text
//!  accept ─► Head ──head parsed──► Active(request) ──response sent──┐
//!             ▲  │                     │ body / write / task events   │
//!             │  └─bad head─► error page, Lingering                   │
//!             └──────────── keep-alive (pipelined bytes first) ◄──────┤
//!                                            Lingering / closed ◄─────┘
//! ```
//!
//! `Head` holds no buffers while it waits for a keep-alive request; the
//! request owns the connection's I/O while it is active.

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_core::log::Level;
use sluice_core::log_error;

use crate::body::read_socket;
use crate::module::{Flow, Resume};
use crate::parse::{self, HeadError, HeadLimits};
use crate::phase;
use crate::request::{Conn, Request};

/// What a connection is doing.
pub enum Slot {
    /// Waiting for (the rest of) a request head; `keepalive` after a
    /// request. `wait` keeps the deadline across events, so that an event
    /// that brings no request bytes does not move it.
    Head { conn: Box<Conn>, keepalive: bool, wait: HeadWait },
    /// A request is being served.
    Active(Box<Request>),
    /// Output sent, reading and dropping what the client still sends
    /// before closing, so that the close does not reset the response:
    /// until `until` (`lingering_time`), at most `timeout` between reads
    /// (`lingering_timeout`).
    Lingering { conn: Box<Conn>, until: Instant, timeout: Duration },
}

/// The deadline a connection waiting for a head has.
#[derive(Clone, Copy, Debug, Default)]
pub enum HeadWait {
    /// Not waiting yet.
    #[default]
    None,
    /// A request just ended; idle waits last this long.
    KeepAlive(Duration),
    /// Idle between requests, until `keepalive_timeout` runs out.
    Idle(Instant),
    /// Part of a head is in, until `client_header_timeout` runs out.
    Header(Instant),
}

/// What the worker does next with the connection.
///
/// `Ready` hands a connection with pipelined bytes back to the worker, which
/// drives it again at once: serving a long pipeline is a loop in the worker,
/// not a recursion here (which would grow the stack per request).
// A transient return value, moved once: boxing the slot would cost an
// allocation per event for no memory saved.
#[allow(clippy::large_enum_variant)]
pub enum Next {
    /// Keep it; wait for an event or until the deadline (if any).
    Wait(Slot, Option<Instant>),
    /// Drive it again now (keep-alive with the next request already read).
    Ready(Slot),
    /// Close it.
    Close,
}

/// Why the connection is being driven.
#[derive(Clone, Copy, Debug)]
pub enum Event {
    /// Readiness from the poll.
    Ready { readable: bool, writable: bool, read_closed: bool },
    /// Its timer fired.
    Timeout,
    /// Go on with what is already there (no new readiness).
    Continue,
    /// Readiness of a descriptor the request's task registered.
    Io { role: u8, readable: bool, writable: bool, read_closed: bool },
}

const HEAD_READ: usize = 4096;

fn head_limits(conn: &Conn) -> (HeadLimits, Duration) {
    let srv = conn.site().names_for(conn.local).default_server();
    (srv.head_limits, srv.header_timeout)
}

/// Drives a connection by one event.
pub(crate) fn drive(mut slot: Slot, ev: Event) -> Next {
    if let Event::Ready { readable: true, read_closed, .. } = ev {
        let conn = match &mut slot {
            Slot::Head { conn, .. } | Slot::Lingering { conn, .. } => conn,
            Slot::Active(r) => &mut r.conn,
        };
        conn.read.on_event(true, read_closed);
    }
    match slot {
        Slot::Head { conn, keepalive, wait } => match ev {
            Event::Timeout => {
                if !keepalive || !conn.rbuf.is_empty() {
                    log_error!(
                        Level::Info,
                        Some(conn.id),
                        "client timed out (110: Connection timed out) while reading client request line"
                    );
                }
                Next::Close
            }
            // A write-readiness edge (every ACK brings one) has nothing for
            // a connection that waits to read: keep waiting as before.
            Event::Ready { readable: false, .. } | Event::Io { .. }
                if !matches!(wait, HeadWait::None | HeadWait::KeepAlive(_)) =>
            {
                let deadline = match wait {
                    HeadWait::Idle(at) | HeadWait::Header(at) => Some(at),
                    _ => None,
                };
                Next::Wait(Slot::Head { conn, keepalive, wait }, deadline)
            }
            Event::Ready { .. } | Event::Continue | Event::Io { .. } => read_head_with(conn, keepalive, wait),
        },
        Slot::Active(mut r) => {
            match ev {
                Event::Timeout if task_deadline(&r).is_some_and(|d| d <= sluice_core::event::now()) => {
                    resume_task(&mut r, Resume::Timer);
                }
                Event::Io { role, readable, writable, read_closed } => {
                    resume_task(&mut r, Resume::Io { role, readable, writable, read_closed });
                }
                Event::Timeout
                    if crate::filters::write::rate_delay(&r).is_some_and(|d| d <= sluice_core::event::now()) =>
                {
                    // `limit_rate` lets the response go on.
                    let _ = crate::filters::write::flush_conn(&mut r);
                    if r.conn.out.is_empty() && !r.conn.broken {
                        after_drain(&mut r);
                    }
                }
                Event::Timeout => {
                    let what = if r.body_pending() { "reading client request body" } else { "sending to client" };
                    crate::req_log!(r, Level::Info, "client timed out (110: Connection timed out) while {}", what);
                    return Next::Close;
                }
                Event::Ready { .. } | Event::Continue => {
                    let (readable, writable) = match ev {
                        Event::Ready { readable, writable, .. } => (readable, writable),
                        _ => (false, false),
                    };
                    if readable && r.reads_client && r.task.is_some() {
                        resume_task(&mut r, Resume::ClientReadable);
                    } else if readable && r.body_pending() && r.body_streams_to_task() {
                        resume_task(&mut r, Resume::BodyRead);
                    } else if readable && r.body_pending() {
                        if let Some(flow) = r.continue_body() {
                            if !r.finalized {
                                if !r.phase_restarted() {
                                    phase::finalize(&mut r, flow);
                                }
                                phase::run(&mut r);
                            }
                        }
                    } else if readable && r.task.is_some() && client_closed(&r) {
                        resume_task(&mut r, Resume::ClientClosed);
                    }
                    if writable || !r.conn.out.is_empty() {
                        let _ = crate::filters::write::flush_conn(&mut r);
                        if r.conn.out.is_empty() && !r.conn.broken {
                            after_drain(&mut r);
                        }
                    }
                }
            }
            after_request_event(r)
        }
        Slot::Lingering { conn, until, timeout } => linger(conn, until, timeout, ev),
    }
}

/// The client connection took all queued output: the producer goes on.
fn after_drain(r: &mut Request) {
    if r.task.is_some() {
        resume_task(r, Resume::Writable);
    } else if r.header_sent() && !r.last_sent && !r.truncated {
        // A filter still holds part of the response (it answered Again
        // with input left): run the filters again, as nginx's writer does.
        let _ = r.output(sluice_core::Chain::new());
    }
}

fn task_deadline(r: &Request) -> Option<Instant> {
    r.task.as_ref().and_then(|t| t.deadline())
}

/// True when the client's side reads end-of-file or an error while a task
/// waits (nginx's broken-connection check): bytes waiting (a pipelined
/// request) mean it is still there.
fn client_closed(r: &Request) -> bool {
    let mut one = [0u8; 1];
    match r.conn.stream.peek(&mut one) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted),
    }
}

fn resume_task(r: &mut Request, why: Resume) {
    let Some(mut task) = r.task.take() else {
        return;
    };
    match task.resume(r, why) {
        Flow::Again => {
            if r.task.is_none() {
                r.task = Some(task);
            }
        }
        flow => {
            // A task may end with an internal redirect (X-Accel-Redirect,
            // an intercepted error): the phases go on with the new URI.
            if !r.phase_restarted() {
                phase::finalize(r, flow);
            }
            phase::run(r);
        }
    }
}

/// Reads and parses a head; starts the request when it is complete.
pub(crate) fn read_head(conn: Box<Conn>, keepalive: bool) -> Next {
    read_head_with(conn, keepalive, HeadWait::None)
}

/// As [`read_head`], with the deadline the connection already has (or,
/// right after a request, the idle timeout of the location that served it:
/// nginx waits as that location says).
fn read_head_with(mut conn: Box<Conn>, keepalive: bool, wait: HeadWait) -> Next {
    let (limits, timeout) = head_limits(&conn);
    let max_head = limits.header_buffer + limits.large_buffer * limits.large_count;
    loop {
        if !conn.rbuf.is_empty() {
            // The head is split off the read buffer, not copied: the buffer
            // is whole again (and back in the pool) once the request ends.
            let mut parser = parse::HeadParser::new(&limits);
            match parser.parse_from(&mut conn.rbuf) {
                Ok(Some(head)) => return start_request(conn, head),
                Ok(None) if conn.rbuf.len() >= max_head => {
                    let head = parser.salvage(&conn.rbuf);
                    return head_error(conn, HeadError::HeaderTooLarge, head);
                }
                Ok(None) => {}
                Err(e) => {
                    let head = parser.salvage(&conn.rbuf);
                    return head_error(conn, e, head);
                }
            }
        }
        match read_socket(&mut conn, HEAD_READ) {
            Ok(0) => return Next::Close,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let now = sluice_core::event::now();
                let wait = if keepalive && conn.rbuf.is_empty() {
                    crate::read_buf::give(std::mem::take(&mut conn.rbuf));
                    match wait {
                        HeadWait::Idle(at) => HeadWait::Idle(at),
                        HeadWait::KeepAlive(d) => HeadWait::Idle(now + d),
                        _ => HeadWait::Idle(now + Duration::from_secs(75)),
                    }
                } else {
                    match wait {
                        HeadWait::Header(at) => HeadWait::Header(at),
                        _ => HeadWait::Header(now + timeout),
                    }
                };
                let deadline = match wait {
                    HeadWait::Idle(at) | HeadWait::Header(at) => at,
                    HeadWait::None | HeadWait::KeepAlive(_) => now + timeout,
                };
                return Next::Wait(Slot::Head { conn, keepalive, wait }, Some(deadline));
            }
            Err(_) => return Next::Close,
        }
    }
}

/// Answers a head that could not be parsed as nginx does: as a request
/// (what could be kept of its head, see `HeadParser::salvage`) of the
/// server its Host names if that line was read, else of the address's
/// default server, refused with the status: so its `error_page`, its
/// access log and `$request` work as for any other request.
fn head_error(conn: Box<Conn>, e: HeadError, head: Box<parse::RequestHead>) -> Next {
    log_error!(Level::Info, Some(conn.id), "client sent invalid request: {}, client: {}", e.reason(), conn.peer.ip());
    let names = conn.site().names_for(conn.local);
    let host = head.host_header.clone();
    let server = match &host {
        Some(h) => names.find(h),
        None => names.default_server(),
    }
    .clone();
    let mut r = Box::new(Request::new(conn, head, server, host.unwrap_or_default()));
    r.conn.requests += 1;
    refuse(r, e.status())
}

/// Ends a request refused before its phases ran (its head, Host, body
/// framing or method) with `status` and closes the connection after it,
/// as nginx does: the error page, or the `error_page` location's answer,
/// whose phases run here.
fn refuse(mut r: Box<Request>, status: u16) -> Next {
    r.keepalive = false;
    r.body.init(parse::BodyFraming::None);
    phase::finalize(&mut r, Flow::Status(status));
    phase::run(&mut r);
    after_request_event(r)
}

/// `lingering_time` and `lingering_timeout` defaults (nginx's), for a
/// location whose confs were not merged with them.
const LINGER_DEFAULT: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(5));

fn start_request(conn: Box<Conn>, mut head: Box<parse::RequestHead>) -> Next {
    let names = conn.site().names_for(conn.local);
    let host = parse::take_host(&mut head);
    // No Host at all looks up the empty name (`server_name ""`).
    let (server, captures) = match &host {
        Ok(Some(h)) => names.find_with_captures(h),
        Ok(None) => names.find_with_captures(b""),
        Err(_) => (names.default_server(), None),
    };
    let server = server.clone();
    let (host_bytes, host_error) = match host {
        Ok(h) => (h.unwrap_or_default(), None),
        Err(e) => (Bytes::new(), Some(e)),
    };
    // The host is counted again only when a server name's captures need it.
    let subject = captures.as_ref().map(|_| host_bytes.clone());
    let mut r = Box::new(Request::new(conn, head, server, host_bytes));
    r.pipelined = std::mem::take(&mut r.conn.pipelined);
    if let (Some(c), Some(subject)) = (captures, subject) {
        r.set_captures(subject, c.captures, c.capture_names);
    }
    r.conn.requests += 1;
    if let Some(e) = host_error {
        crate::req_log!(r, Level::Info, "client sent invalid host header: {}", e.reason());
        return refuse(r, e.status());
    }
    match parse::body_framing(&r.head).and_then(|f| parse::method_allowed(&r.head).map(|_| f)) {
        Ok(f) => r.body.init(f),
        Err(e) => {
            crate::req_log!(r, Level::Info, "client sent invalid request: {}", e.reason());
            return refuse(r, e.status());
        }
    }
    // The location's keep-alive limits apply once it is found (find_config).
    r.keepalive = wants_keepalive(&r);
    phase::start(&mut r);
    after_request_event(r)
}

/// Keep-alive as the request head asks for it (version and `Connection`);
/// the location's limits are applied once it is known, see
/// [`apply_location_keepalive`].
fn wants_keepalive(r: &Request) -> bool {
    let conn_hdr = r.header("connection");
    let has = |word: &[u8]| {
        conn_hdr.is_some_and(|v| v.split(|&c| c == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(word)))
    };
    match r.head.version {
        (1, 1) => !has(b"close"),
        (1, 0) => has(b"keep-alive"),
        _ => false,
    }
}

/// Turns keep-alive off when the location says so: `keepalive_timeout 0`,
/// `keepalive_requests` reached, `keepalive_time` passed, or
/// `keepalive_disable` matching the browser (nginx does this when the
/// location is chosen).
pub(crate) fn apply_location_keepalive(r: &mut Request) {
    if !r.keepalive {
        return;
    }
    let core = r.core_loc();
    let timeout_on = core.keepalive_timeout.map(|(t, _)| !t.is_zero()).unwrap_or(true);
    // The event cycle's clock, as nginx's cached time: a clock read per
    // request showed in profiles.
    let age = sluice_core::event::now().saturating_duration_since(r.conn.accepted);
    let young = age < core.keepalive_time.unwrap_or(Duration::from_secs(3600));
    let under_limit = r.conn.requests < core.keepalive_requests.unwrap_or(1000);
    if !(timeout_on && young && under_limit) || browser_disabled(r) {
        r.keepalive = false;
    }
}

/// `keepalive_disable`: old MSIE loses keep-alive on POST, Safari always.
fn browser_disabled(r: &Request) -> bool {
    let d = r.core_loc().keepalive_disable.unwrap_or_default();
    let msie6_post = d.msie6 && r.method() == crate::parse::Method::Post;
    // Most requests are neither case: no header look-up, no substring search.
    if !msie6_post && !d.safari {
        return false;
    }
    let Some(ua) = r.header("user-agent") else { return false };
    let find = |needle: &[u8]| memchr::memmem::find(ua, needle);
    if msie6_post {
        if let Some(i) = find(b"MSIE ") {
            let v = &ua[i + 5..];
            let old = v.first().is_some_and(|c| (b'1'..=b'5').contains(c)) && v.get(1) == Some(&b'.')
                || v.starts_with(b"6.0") && find(b"SV1").is_none();
            if old && find(b"Opera").is_none() {
                return true;
            }
        }
    }
    d.safari
        && find(b"Safari/").is_some()
        && (find(b"Mac OS X").is_some() || find(b"iPhone").is_some())
        && find(b"Chrome").is_none()
}

/// After any event of an active request: finish it, or wait with the right timer.
fn after_request_event(mut r: Box<Request>) -> Next {
    if r.conn.broken {
        return finish_closed(r);
    }
    if r.finalized && !r.conn.out.is_empty() && !r.conn.write_blocked {
        let _ = crate::filters::write::flush_conn(&mut r);
        if r.conn.broken {
            return finish_closed(r);
        }
    }
    if r.finalized && r.response_complete() {
        if r.body_pending() || r.body.state == crate::body::BodyState::Unread && r.body.expected() {
            if !r.keepalive {
                return complete(r);
            }
            // The response is out: a malformed rest of the body only ends
            // the connection.
            let _ = r.discard_body();
            if r.body_pending() {
                let t = r.core_loc().client_body_timeout.unwrap_or(Duration::from_secs(60));
                return Next::Wait(Slot::Active(r), Some(sluice_core::event::now() + t));
            }
        }
        return complete(r);
    }
    let deadline = if r.conn.write_blocked {
        Some(sluice_core::event::now() + r.core_loc().send_timeout.unwrap_or(Duration::from_secs(60)))
    } else if r.body_pending() {
        Some(sluice_core::event::now() + r.core_loc().client_body_timeout.unwrap_or(Duration::from_secs(60)))
    } else {
        None
    };
    let earliest = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let deadline = earliest(deadline, task_deadline(&r));
    let deadline = earliest(deadline, crate::filters::write::rate_delay(&r));
    Next::Wait(Slot::Active(r), deadline)
}

fn finish_closed(mut r: Box<Request>) -> Next {
    phase::log_phase(&mut r);
    Next::Close
}

/// The response is out: log, then keep-alive or close.
fn complete(mut r: Box<Request>) -> Next {
    phase::log_phase(&mut r);
    let keepalive = r.keepalive && !r.body_pending() && !r.conn.broken;
    let unread_body = r.body.expected() && r.body.state != crate::body::BodyState::Done;
    let idle_timeout = r.core_loc().keepalive_timeout.map(|(t, _)| t).unwrap_or(Duration::from_secs(75));
    let core = r.core_loc();
    let linger_on = core.lingering_close.unwrap_or(true);
    let linger = (core.lingering_time.unwrap_or(LINGER_DEFAULT.0), core.lingering_timeout.unwrap_or(LINGER_DEFAULT.1));
    let refused = r.headers_out.status >= 400;
    // As nginx: TCP_NODELAY once the connection turns keep-alive, so that
    // the last small packet of the next response is not held by Nagle.
    if keepalive && !r.conn.nodelay && r.core_loc().tcp_nodelay.unwrap_or(true) {
        r.conn.nodelay = sluice_core::io::set_nodelay(&r.conn.stream, true).is_ok();
    }
    crate::header_lists::give_back(std::mem::take(&mut r.head.headers), std::mem::take(&mut r.headers_out.headers));
    let Request { conn, head, .. } = *r;
    parse::recycle_head(head);
    let mut conn = conn;
    if keepalive {
        conn.pipelined = !conn.rbuf.is_empty();
        if !conn.pipelined {
            crate::read_buf::give(std::mem::take(&mut conn.rbuf));
        }
        // Back to the worker, which drives the connection again at once:
        // reading the next request here would recurse once per request.
        return Next::Ready(Slot::Head { conn, keepalive: true, wait: HeadWait::KeepAlive(idle_timeout) });
    }
    // The client may still be sending (a body not read, pipelined
    // requests, a request refused with an error): closing now would make
    // the kernel answer those bytes with a reset that can destroy the
    // response before the client reads it.
    if linger_on && (unread_body || refused || !conn.rbuf.is_empty() || conn.read.is_ready()) {
        return start_lingering(conn, linger);
    }
    Next::Close
}

fn start_lingering(conn: Box<Conn>, (time, timeout): (Duration, Duration)) -> Next {
    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
    let until = sluice_core::event::now() + time;
    linger(conn, until, timeout, Event::Continue)
}

fn linger(mut conn: Box<Conn>, until: Instant, timeout: Duration, ev: Event) -> Next {
    if matches!(ev, Event::Timeout) || sluice_core::event::now() >= until {
        return Next::Close;
    }
    loop {
        conn.rbuf.clear();
        match read_socket(&mut conn, HEAD_READ) {
            Ok(0) => return Next::Close,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                crate::read_buf::give(std::mem::take(&mut conn.rbuf));
                let wait = (sluice_core::event::now() + timeout).min(until);
                return Next::Wait(Slot::Lingering { conn, until, timeout }, Some(wait));
            }
            Err(_) => return Next::Close,
        }
    }
}
