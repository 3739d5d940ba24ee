//! The proxy's per-request state machine.
//!
//! ```text
//!  start ─► [read body] ─► pick peer ─► Connecting ─► Sending ─► ReadingHead ─► Body ─► done
//!                              ▲            │            │            │          │
//!                              └── next upstream (error, timeout, invalid header, http_5xx)
//! ```
//!
//! The task owns the upstream socket, registered under [`ROLE_UPSTREAM`];
//! edge-triggered events, the client socket draining and the task timer
//! resume it. Each wait sets the matching timeout (connect, send, read).
//! Before any byte of the response went to the client a failure may move
//! to the next peer; after, the client gets a truncated response (the
//! connection closes) and the log says why.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mio::Interest;
use sluice_core::io::{send_chain, ReadReadiness, SendOpts};
use sluice_core::log::Level;
use sluice_core::{Buf, Chain};
use sluice_http::chunked_decode::ChunkedDecoder;
use sluice_http::task_io::Route;
use sluice_http::{Flow, Request, Resume, Task};

use super::build::{self, BodyFrame};
use super::conf::{next, Pass, ProxyLocConf, KEY};
use super::head::{self, UpstreamHead};
use super::pool;
use super::spill::Spill;
use super::stream::UpstreamStream;
use super::vars::{ProxyCtx, TryLog};
use crate::upstream::{self, PickCx, Tried, UpstreamGroup};

/// The role the upstream socket is registered under.
pub(crate) const ROLE_UPSTREAM: u8 = 1;

/// Bytes read from the upstream per call at most.
pub(super) const READ_MAX: u64 = 256 * 1024;

/// Where the request goes, resolved for this request.
pub(crate) struct Target {
    pub group: Arc<UpstreamGroup>,
    /// The URL's URI part, evaluated.
    pub uri_part: Option<Bytes>,
    pub proxy_host: Bytes,
    /// `$proxy_port`: the URL's port (80 when it names none).
    pub port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Connecting,
    Sending,
    ReadingHead,
    Body,
    Tunnel,
}

/// How the upstream delimits its body.
pub(super) enum Framing {
    None,
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    Close,
}

/// Why an attempt failed, for `proxy_next_upstream`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    Error,
    Timeout,
    InvalidHeader,
}

impl Drop for ProxyTask {
    fn drop(&mut self) {
        sluice_http::read_buf::give(std::mem::take(&mut self.rbuf));
    }
}

/// A proxied request in flight.
pub(crate) struct ProxyTask {
    pub(super) target: Target,
    pub(super) state: State,
    pub(super) peer: Option<usize>,
    tried: Tried,
    pub(super) attempts: u64,
    started: Instant,
    pub(super) stream: Option<UpstreamStream>,
    /// The stream's route in the poll (dropped with it).
    pub(super) route: Option<Route>,
    /// The connection came from the keep-alive pool.
    reused: bool,
    pub(super) conn_created: Instant,
    pub(super) conn_requests: u64,
    /// The whole request (head and buffered body), kept for retries.
    pub(super) request: Chain,
    pub(super) to_send: Chain,
    /// The request body still streams from the client.
    pub(super) streaming: Option<super::body_stream::BodyStream>,
    pub(super) rbuf: BytesMut,
    /// How much of an unfinished response head in `rbuf` was found valid
    /// (see `head::parse_arrived`); 0 at the start of each head.
    pub(super) head_scanned: usize,
    /// Whether the upstream socket may have bytes to read: saves the read
    /// that would only say EAGAIN after each piece of a response.
    pub(super) upstream_read: ReadReadiness,
    pub(super) framing: Framing,
    pub(super) upstream_reusable: bool,
    pub(super) spill: Option<Spill>,
    pub(super) body_done: bool,
    pub(super) buffering: bool,
    /// The peer's health was already updated for this attempt.
    pub(super) peer_released: bool,
    /// When the current wait times out.
    pub(super) deadline: Option<Instant>,
    /// Bytes read from and written to the upstream in this attempt.
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    pub(super) tunnel: Option<super::tunnel::Tunnel>,
}

/// The proxy content handler: resolves the target, reads the body as
/// configured, and starts the first attempt.
pub(crate) fn start(r: &mut Request) -> Flow {
    let conf = r.loc_conf(&KEY);
    let Some(pass) = conf.pass.clone() else { return Flow::Status(500) };
    let target = match resolve(r, &pass) {
        Ok(t) => t,
        Err(status) => return Flow::Status(status),
    };
    // Without the formatting machinery: this runs for every proxied request.
    // From the worker's arena: no allocation of its own.
    let port =
        sluice_http::head_buf::copy(sluice_http::filters::header_writer::decimal(target.port.into(), &mut [0; 20]));
    // After an internal redirect to another proxied location, the record
    // of earlier attempts stays (all of them are logged, as nginx does).
    let (tries, mut groups) = r
        .lasting_ctx_mut::<_, _, _, ProxyCtx>(&KEY)
        .map(|c| (std::mem::take(&mut c.tries), std::mem::take(&mut c.redirects)))
        .unwrap_or_default();
    if !tries.is_empty() {
        groups.push(tries.len());
    }
    let ctx = ProxyCtx {
        proxy_host: target.proxy_host.clone(),
        proxy_port: port,
        tries,
        redirects: groups,
        ..ProxyCtx::default()
    };
    r.set_lasting_ctx(&KEY, ctx);
    let conf = r.loc_conf(&KEY);
    let stream_body = r.body.expected()
        && !conf.request_buffering.unwrap_or(true)
        && conf.pass_request_body.unwrap_or(true)
        && conf.set_body.is_none()
        && !(r.body.declared_length().is_none() && conf.http_version != Some(1));
    if stream_body {
        return super::body_stream::begin_streaming(r, target);
    }
    if let Some(c) = r.lasting_ctx_mut::<_, _, _, ProxyCtx>(&KEY) {
        c.target = Some(target);
    }
    // Also without a body: the reader answers `Expect: 100-continue`
    // first, as nginx's proxy does (then `after_body` runs at once).
    r.read_body(after_body)
}

fn after_body(r: &mut Request) -> Flow {
    match r.lasting_ctx_mut::<_, _, _, ProxyCtx>(&KEY).and_then(|c| c.target.take()) {
        Some(t) => begin(r, t),
        None => Flow::Status(500),
    }
}

/// The group and URI for this request (variables evaluated).
fn resolve(r: &Request, pass: &Pass) -> Result<Target, u16> {
    match pass {
        Pass::Fixed { url, group, proxy_host } => {
            let Some(g) = group.get() else { return Err(500) };
            let uri_part = url.uri.clone().map(Bytes::from);
            Ok(Target { group: g.clone(), uri_part, proxy_host: proxy_host.clone(), port: url.port })
        }
        Pass::Dynamic(v) => {
            let text = v.eval(r);
            let text = String::from_utf8_lossy(&text).into_owned();
            let u = super::url::parse(&text).map_err(|e| {
                sluice_http::req_log!(r, Level::Error, "{e}");
                500u16
            })?;
            let proxy_host = Bytes::from(u.proxy_host());
            let uri_part = u.uri.clone().map(Bytes::from);
            let main = r.main_conf(&upstream::KEY);
            if let Some(g) = main.find(&u.host).or_else(|| main.find_implicit(&u.host, u.port)) {
                return Ok(Target { group: g.clone(), uri_part, proxy_host, port: u.port });
            }
            let literal = u.host.starts_with("unix:")
                || u.host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok();
            if !literal {
                sluice_http::req_log!(r, Level::Error, "no resolver defined to resolve {}", u.host);
                return Err(502);
            }
            let g = upstream::implicit_group(&u.host, u.port).map_err(|_| 502u16)?;
            Ok(Target { group: Arc::new(g), uri_part, proxy_host, port: u.port })
        }
    }
}

/// Builds the request and makes the first attempt.
pub(super) fn begin(r: &mut Request, target: Target) -> Flow {
    let mut task = ProxyTask::new(r, target);
    let (frame, body) = request_body(r);
    task.request = request_chain(r, &task.target, frame, body);
    task.kick(r)
}

/// The body to send: `proxy_set_body`, the read body, or none.
fn request_body(r: &Request) -> (BodyFrame, Chain) {
    let conf = r.loc_conf(&KEY);
    if let Some(b) = &conf.set_body {
        let text = b.eval(r);
        return (BodyFrame::Length(text.len() as u64), Chain::one(Buf::mem(text)));
    }
    if !conf.pass_request_body.unwrap_or(true) {
        return (BodyFrame::None, Chain::new());
    }
    if r.body.expected() || r.body.declared_length() == Some(0) {
        let body = r.body.bufs.clone();
        return (BodyFrame::Length(body.len()), body);
    }
    (BodyFrame::None, Chain::new())
}

pub(super) fn request_chain(r: &Request, target: &Target, frame: BodyFrame, body: Chain) -> Chain {
    let conf = r.loc_conf(&KEY);
    let uri = build::upstream_uri(r, conf, target.uri_part.as_deref());
    let head = build::head(r, conf, &uri, &target.proxy_host, frame);
    let mut chain = Chain::one(Buf::mem(head));
    chain.append(body);
    chain
}

impl ProxyTask {
    pub(super) fn new(r: &Request, target: Target) -> ProxyTask {
        let conf = r.loc_conf(&KEY);
        ProxyTask {
            target,
            state: State::Connecting,
            peer: None,
            tried: Tried::default(),
            attempts: 0,
            started: sluice_core::event::now(),
            stream: None,
            route: None,
            reused: false,
            conn_created: sluice_core::event::now(),
            conn_requests: 0,
            request: Chain::new(),
            to_send: Chain::new(),
            streaming: None,
            // From the worker's pool of read buffers: a proxied request
            // allocated (and freed) one of `proxy_buffer_size` each time.
            rbuf: sluice_http::read_buf::take(0),
            head_scanned: 0,
            upstream_read: ReadReadiness::new(),
            framing: Framing::None,
            upstream_reusable: false,
            spill: None,
            body_done: false,
            peer_released: false,
            deadline: None,
            bytes_in: 0,
            bytes_out: 0,
            buffering: conf.buffering.unwrap_or(true),
            tunnel: None,
        }
    }

    /// Makes the first attempt and installs the task when it waits.
    pub(super) fn kick(mut self, r: &mut Request) -> Flow {
        match self.connect(r) {
            Flow::Again => {
                r.set_task(Box::new(self));
                Flow::Again
            }
            flow => flow,
        }
    }

    pub(super) fn conf<'a>(&self, r: &'a Request) -> &'a ProxyLocConf {
        r.loc_conf(&KEY)
    }

    pub(super) fn log_try(&self, r: &mut Request, f: impl FnOnce(&mut TryLog)) {
        if let Some(t) = r.lasting_ctx_mut::<_, _, _, ProxyCtx>(&KEY).and_then(|c| c.tries.last_mut()) {
            f(t);
        }
    }

    /// The error-log tail nginx appends to upstream errors.
    fn context(&self, r: &Request) -> String {
        let upstream = match self.peer {
            Some(i) => {
                let addr = &self.target.group.peer(i).addr;
                let uri = build::upstream_uri(r, self.conf(r), self.target.uri_part.as_deref());
                format!(", upstream: \"http://{}{}\"", addr, String::from_utf8_lossy(&uri))
            }
            None => String::new(),
        };
        format!(
            ", client: {}, server: {}, request: \"{}\"{}, host: \"{}\"",
            r.conn.peer.ip(),
            r.server.name,
            String::from_utf8_lossy(r.head.request_line()),
            upstream,
            String::from_utf8_lossy(&r.host)
        )
    }

    pub(super) fn log(&self, r: &Request, level: Level, what: std::fmt::Arguments<'_>) {
        let tail = self.context(r);
        sluice_http::req_log!(r, level, "{}{}", what, tail);
    }

    /// Picks a peer and starts connecting (or takes a pooled connection).
    fn connect(&mut self, r: &mut Request) -> Flow {
        let key = self.target.group.hash_key.as_ref().map(|k| k.eval(r));
        let cx = PickCx { client: r.conn.peer.ip(), hash_key: key.as_deref() };
        let Some(i) = self.target.group.pick(&cx, &mut self.tried) else {
            self.log(r, Level::Error, format_args!("no live upstreams while connecting to upstream"));
            // As nginx, the attempt is logged under the group's name.
            let name: Arc<str> = self.target.group.name.as_str().into();
            if let Some(c) = r.lasting_ctx_mut::<_, _, _, ProxyCtx>(&KEY) {
                let mut t = TryLog::new(name);
                t.status = Some(502);
                t.end = Some(t.start);
                c.tries.push(t);
            }
            self.peer = None;
            return self.give_up(r, 502);
        };
        self.peer = Some(i);
        self.peer_released = false;
        self.state = State::Connecting;
        self.attempts += 1;
        let addr = self.target.group.peer(i).addr.clone();
        let addr_text = self.target.group.peer_addr_text(i);
        if let Some(c) = r.lasting_ctx_mut::<_, _, _, ProxyCtx>(&KEY) {
            c.tries.push(TryLog::new(addr_text));
        }
        self.to_send = self.request.clone();
        self.rbuf.clear();
        self.head_scanned = 0;
        let now = sluice_core::event::now();
        if let Some(idle) = pool::take(&self.target.group, i, now) {
            self.reused = true;
            self.log_try(r, |t| t.connect = Some(Duration::ZERO));
            self.conn_created = idle.created;
            self.conn_requests = idle.requests;
            return self.attach(r, idle.stream, Some(idle.route), State::Sending);
        }
        self.reused = false;
        self.conn_created = now;
        self.conn_requests = 0;
        match UpstreamStream::connect(&addr) {
            Ok(s) => {
                s.set_nodelay();
                if self.conf(r).socket_keepalive.unwrap_or(false) {
                    s.set_keepalive();
                }
                self.attach(r, s, None, State::Connecting)
            }
            Err(e) => {
                self.log(r, Level::Error, format_args!("connect() failed ({}) while connecting to upstream", os(&e)));
                self.fail(r, Failure::Error)
            }
        }
    }

    /// Takes the upstream socket on: a new one is registered with the poll
    /// through a route; a pooled one is still registered and its route is
    /// only pointed at this request (no system call).
    fn attach(&mut self, r: &mut Request, mut s: UpstreamStream, route: Option<Route>, state: State) -> Flow {
        let route = match route {
            Some(route) => {
                r.claim_route(&route, ROLE_UPSTREAM);
                route
            }
            None => match r.register_routed(&mut s, ROLE_UPSTREAM, Interest::READABLE | Interest::WRITABLE) {
                Ok(route) => route,
                Err(e) => {
                    self.log(r, Level::Alert, format_args!("epoll_ctl() failed ({})", os(&e)));
                    return self.give_up(r, 500);
                }
            },
        };
        self.stream = Some(s);
        // Nothing can be read before the request is sent: the response
        // comes with a readable event (nginx waits for it too, its
        // `ready` flag clear). A pooled connection the upstream closed
        // while idle answers the request with a reset, which the poll
        // reports as well. Reading at once cost a system call that only
        // said EAGAIN, per proxied request.
        self.upstream_read = ReadReadiness::drained();
        self.route = Some(route);
        self.state = state;
        let conf = self.conf(r);
        let wait = if state == State::Connecting { conf.connect_timeout } else { conf.send_timeout };
        self.deadline = Some(sluice_core::event::now() + wait.unwrap_or(Duration::from_secs(60)));
        if state == State::Connecting {
            // The connect completes with a writable event.
            return Flow::Again;
        }
        self.step(r)
    }

    /// Ends the current peer's use by this attempt (once): its connection
    /// count drops, and `failed` counts towards `max_fails`; when that
    /// disables the peer, says so as nginx does.
    pub(super) fn finish_peer(&mut self, r: &Request, failed: bool) {
        let Some(i) = self.peer.filter(|_| !self.peer_released) else { return };
        self.peer_released = true;
        if self.target.group.release_quiet(i, failed) {
            let what = what_doing(self.state);
            self.log(r, Level::Warn, format_args!("upstream server temporarily disabled while {what}"));
        }
    }

    /// Drops the upstream connection (closing it); the peer is done with
    /// (not as a failure, unless `finish_peer` said so first).
    pub(super) fn close_upstream(&mut self, r: &mut Request) {
        self.finish_peer(r, false);
        // Closing the socket takes it out of the poll; its route goes too.
        self.stream = None;
        self.route = None;
        self.record_end(r);
    }

    /// Notes the end of the current attempt (once) and its byte counts.
    pub(super) fn record_end(&mut self, r: &mut Request) {
        let now = sluice_core::event::now();
        let (received, sent) = (std::mem::take(&mut self.bytes_in), std::mem::take(&mut self.bytes_out));
        self.log_try(r, |t| {
            t.end.get_or_insert(now);
            t.received += received;
            t.sent += sent;
        });
    }

    /// An attempt failed before the response started: next peer, or the
    /// error status.
    fn fail(&mut self, r: &mut Request, why: Failure) -> Flow {
        let status = if why == Failure::Timeout { 504 } else { 502 };
        self.log_try(r, |t| {
            t.status = Some(status);
            t.end = Some(sluice_core::event::now());
        });
        // A stale pooled connection is not the peer's fault: try it fresh.
        if self.reused && why == Failure::Error {
            self.close_upstream(r);
            if let Some(i) = self.peer {
                self.tried = forget(&self.tried, i);
            }
            self.reused = false;
            return self.connect(r);
        }
        self.finish_peer(r, true);
        self.close_upstream(r);
        let cond = match why {
            Failure::Error => next::ERROR,
            Failure::Timeout => next::TIMEOUT,
            Failure::InvalidHeader => next::INVALID_HEADER,
        };
        if self.may_retry(r, cond) {
            return self.connect(r);
        }
        self.give_up(r, status)
    }

    /// `proxy_next_upstream` allows another attempt for `cond`.
    fn may_retry(&self, r: &Request, cond: u32) -> bool {
        let conf = self.conf(r);
        let mask = conf.next_upstream();
        if mask & next::OFF != 0 || mask & cond == 0 {
            return false;
        }
        if self.streaming.as_ref().is_some_and(|s| s.taken) {
            // Part of the body already went out and is not kept.
            return false;
        }
        let idempotent = !matches!(r.head.method_name.as_ref(), b"POST" | b"LOCK" | b"PATCH");
        if !idempotent && mask & next::NON_IDEMPOTENT == 0 && self.request_started() {
            return false;
        }
        let tries = conf.next_upstream_tries.unwrap_or(0);
        if tries != 0 && self.attempts >= tries {
            return false;
        }
        if let Some(limit) = conf.next_upstream_timeout.filter(|t| !t.is_zero()) {
            if sluice_core::event::now().saturating_duration_since(self.started) >= limit {
                return false;
            }
        }
        // Peers marked `down` never count as left to try.
        let live = (0..self.target.group.peer_count()).filter(|&i| !self.target.group.peer(i).down).count();
        self.tried.count() < live
    }

    /// Some of the request reached an upstream.
    fn request_started(&self) -> bool {
        self.to_send.len() < self.request.len() || self.state as u8 >= State::ReadingHead as u8
    }

    pub(super) fn give_up(&mut self, r: &mut Request, status: u16) -> Flow {
        self.close_upstream(r);
        self.deadline = None;
        Flow::Status(status)
    }

    /// Runs the state machine as far as it goes now.
    fn step(&mut self, r: &mut Request) -> Flow {
        loop {
            let flow = match self.state {
                State::Connecting => self.on_connect(r),
                State::Sending => self.send(r),
                State::ReadingHead => self.read_head(r),
                State::Body => return self.pump(r),
                State::Tunnel => return super::tunnel::run(self, r),
            };
            match flow {
                Some(f) => return f,
                None => continue,
            }
        }
    }

    fn on_connect(&mut self, r: &mut Request) -> Option<Flow> {
        let res = self.stream.as_ref().map(|s| s.connect_result())?;
        match res {
            Ok(true) => {
                let connect = sluice_core::event::now();
                self.log_try(r, |t| t.connect = Some(connect.saturating_duration_since(t.start)));
                self.state = State::Sending;
                let t = self.conf(r).send_timeout.unwrap_or(Duration::from_secs(60));
                self.deadline = Some(connect + t);
                None
            }
            Ok(false) => Some(Flow::Again),
            Err(e) => {
                self.log(r, Level::Error, format_args!("connect() failed ({}) while connecting to upstream", os(&e)));
                Some(self.fail(r, Failure::Error))
            }
        }
    }

    fn send(&mut self, r: &mut Request) -> Option<Flow> {
        let stream = self.stream.as_ref()?;
        let res = send_chain(stream, &mut self.to_send, &SendOpts { sendfile: true, limit: 0 });
        if let Ok(sent) = &res {
            self.bytes_out += sent.bytes;
        }
        match res {
            Ok(sent) if sent.blocked => Some(Flow::Again),
            Ok(_) if self.streaming.is_some() => super::body_stream::after_send(self, r),
            Ok(_) => {
                self.state = State::ReadingHead;
                let t = self.conf(r).read_timeout.unwrap_or(Duration::from_secs(60));
                self.deadline = Some(sluice_core::event::now() + t);
                None
            }
            Err(e) => {
                self.log(
                    r,
                    self.failure_level(),
                    format_args!("writev() failed ({}) while sending request to upstream", os(&e)),
                );
                Some(self.fail(r, Failure::Error))
            }
        }
    }

    /// How loudly a failure to talk to the upstream is logged: a pooled
    /// connection the upstream closed while it was idle is replaced without
    /// fuss (info); anything else is an error.
    fn failure_level(&self) -> Level {
        if self.reused && self.bytes_in == 0 {
            Level::Info
        } else {
            Level::Error
        }
    }

    /// Reads into `rbuf`: bytes read, 0 at end of file, `None` when it
    /// would block.
    pub(super) fn read_some(&mut self, max: u64) -> io::Result<Option<usize>> {
        let Some(stream) = self.stream.as_ref() else { return Ok(Some(0)) };
        match self.upstream_read.recv_into(stream, &mut self.rbuf, max as usize) {
            Ok(n) => {
                self.bytes_in += n as u64;
                Ok(Some(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn read_head(&mut self, r: &mut Request) -> Option<Flow> {
        let limit = self.conf(r).buffer_size();
        // Set once the head is given up on: it is parsed whole once more, so
        // that an invalid line in it is reported as such.
        let mut whole = false;
        loop {
            let parsed = match whole {
                true => head::parse(&mut self.rbuf),
                false => head::parse_arrived(&mut self.rbuf, &mut self.head_scanned),
            };
            match parsed {
                Ok(Some(h)) if (100..200).contains(&h.status) && h.status != 101 => continue,
                Ok(Some(h)) => return Some(self.on_head(r, h)),
                Ok(None) if self.rbuf.len() as u64 >= limit && !whole => {
                    whole = true;
                    continue;
                }
                Ok(None) if self.rbuf.len() as u64 >= limit => {
                    self.log(
                        r,
                        Level::Error,
                        format_args!("upstream sent too big header while reading response header from upstream"),
                    );
                    return Some(self.fail(r, Failure::InvalidHeader));
                }
                Ok(None) => {}
                Err(e) => {
                    self.log(r, Level::Error, format_args!("{} while reading response header from upstream", e.0));
                    return Some(self.fail(r, Failure::InvalidHeader));
                }
            }
            let room = limit - self.rbuf.len() as u64;
            match self.read_some(room) {
                Ok(Some(0)) if !whole && !self.rbuf.is_empty() => {
                    // Closed: what came is parsed whole once more, so an
                    // invalid line is reported as such, not as an early close.
                    whole = true;
                    continue;
                }
                Ok(Some(0)) => {
                    self.log(
                        r,
                        self.failure_level(),
                        format_args!(
                            "upstream prematurely closed connection while reading response header from upstream"
                        ),
                    );
                    return Some(self.fail(r, Failure::Error));
                }
                Ok(Some(_)) => {}
                Ok(None) => return Some(Flow::Again),
                Err(e) => {
                    self.log(
                        r,
                        self.failure_level(),
                        format_args!("recv() failed ({}) while reading response header from upstream", os(&e)),
                    );
                    return Some(self.fail(r, Failure::Error));
                }
            }
        }
    }

    /// The head is in: next upstream on a listed status, errors the
    /// location intercepts, X-Accel-Redirect, else the response starts.
    fn on_head(&mut self, r: &mut Request, h: UpstreamHead) -> Flow {
        let now = sluice_core::event::now();
        let status = h.status;
        if let Some(c) = r.lasting_ctx_mut::<_, _, _, ProxyCtx>(&KEY) {
            c.headers = h.headers.clone();
        }
        self.log_try(r, |t| {
            t.status = Some(status);
            t.header = Some(now.saturating_duration_since(t.start));
        });
        let cond = next::for_status(status);
        if cond != 0 && self.conf(r).next_upstream() & cond != 0 && self.may_retry(r, cond) {
            // 403 and 404 are answers, not failures of the peer.
            self.finish_peer(r, !matches!(status, 403 | 404));
            self.close_upstream(r);
            self.log_try(r, |t| t.end = Some(now));
            return self.connect(r);
        }
        let head_request = r.head.method_name.as_ref() == b"HEAD";
        self.framing = if head_request || matches!(status, 204 | 304) || (100..200).contains(&status) {
            Framing::None
        } else if h.chunked {
            Framing::Chunked(Box::new(ChunkedDecoder::new()))
        } else if let Some(n) = h.content_length {
            Framing::Length(n)
        } else {
            Framing::Close
        };
        self.upstream_reusable = !h.close && !matches!(self.framing, Framing::Close);
        if let Some(flow) = super::response::intercept(self, r, &h) {
            return flow;
        }
        if status == 101 {
            return super::tunnel::start(self, r, h);
        }
        super::response::headers_out(r, &h);
        if let Err(e) = r.send_header() {
            sluice_http::req_log!(r, Level::Info, "{}", e.0);
            return self.give_up(r, 499);
        }
        self.state = State::Body;
        self.body_done = matches!(self.framing, Framing::None);
        self.pump(r)
    }
}

/// The end of nginx's upstream log lines: what the proxy was doing.
fn what_doing(state: State) -> &'static str {
    match state {
        State::Connecting => "connecting to upstream",
        State::Sending => "sending request to upstream",
        State::ReadingHead => "reading response header from upstream",
        State::Body => "reading upstream",
        State::Tunnel => "proxying upgraded connection",
    }
}

/// `tried` without peer `i` (a stale pooled connection is retried on the
/// same peer).
fn forget(tried: &Tried, i: usize) -> Tried {
    let mut t = Tried::default();
    for j in 0..(i + 64) {
        if j != i && tried.contains(j) {
            t.insert(j);
        }
    }
    t
}

pub(crate) fn os(e: &io::Error) -> String {
    sluice_core::log::os_error(e)
}

impl Task for ProxyTask {
    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn resume(&mut self, r: &mut Request, why: Resume) -> Flow {
        match why {
            Resume::ClientClosed => {
                if self.conf(r).ignore_client_abort.unwrap_or(false) {
                    return Flow::Again;
                }
                self.log(
                    r,
                    Level::Info,
                    format_args!("client prematurely closed connection, so upstream connection is closed now"),
                );
                self.give_up(r, 499)
            }
            Resume::Timer => {
                self.deadline = None;
                self.timed_out(r)
            }
            Resume::Io { readable, read_closed, .. } => {
                // The upstream is the task's only descriptor it reads.
                self.upstream_read.on_event(readable, read_closed);
                self.step(r)
            }
            Resume::Writable | Resume::BodyRead | Resume::ClientReadable => self.step(r),
        }
    }
}

impl ProxyTask {
    fn timed_out(&mut self, r: &mut Request) -> Flow {
        let what = what_doing(self.state);
        self.log(r, Level::Error, format_args!("upstream timed out (110: Connection timed out) while {what}"));
        match self.state {
            State::Connecting | State::Sending | State::ReadingHead => self.fail(r, Failure::Timeout),
            State::Body | State::Tunnel => self.abort(r),
        }
    }

    /// Ends a response that already started: what was read still goes
    /// out, then the connection closes without the end of the body.
    pub(super) fn abort(&mut self, r: &mut Request) -> Flow {
        self.close_upstream(r);
        self.deadline = None;
        r.truncate_response();
        Flow::Done
    }
}
