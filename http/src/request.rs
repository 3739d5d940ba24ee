//! The request: what every handler and filter works on.
//!
//! A request owns the connection's I/O state ([`Conn`]) while it lives, so
//! the write filter at the bottom of the chain can send straight to the
//! socket; when the request ends the connection takes it back for the next
//! request (keep-alive, pipelining) or closes it.

use std::any::Any;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use sluice_core::Chain;

use crate::body::RequestBody;
use crate::config::{HttpConfig, Server};
use crate::core_module::{CoreLocConf, CoreSrvConf, CORE};
use crate::listen::ListenSite;
use crate::location::Location;
use crate::module::{downcast, ConfKey, FilterResult, FilterStatus, NextBody, NextHeader, Task};
use crate::parse::{Method, RequestHead};

/// The I/O state of a client connection.
pub struct Conn {
    pub(crate) stream: mio::net::TcpStream,
    /// The connection number (`$connection`), unique per process.
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// The local address the client connected to.
    pub local: SocketAddr,
    /// Bytes received and not yet consumed (pipelined requests, body).
    pub(crate) rbuf: BytesMut,
    /// Requests served on this connection so far (`$connection_requests`).
    pub requests: u64,
    /// When the connection was accepted (`$connection_time`).
    pub accepted: Instant,
    /// Output waiting for the socket.
    pub(crate) out: Chain,
    /// Whether the socket may have bytes to read (nginx's `ready` and
    /// `pending_eof`).
    pub(crate) read: sluice_core::io::ReadReadiness,
    /// The next request's bytes were already read with the previous one
    /// (pipelining; `$pipe`).
    pub(crate) pipelined: bool,
    /// TCP_CORK is set (`tcp_nopush`).
    pub(crate) corked: bool,
    /// TCP_NODELAY is set (`tcp_nodelay`, from the first keep-alive wait on).
    pub(crate) nodelay: bool,
    /// The socket refused more output (EAGAIN) at the last attempt.
    pub(crate) write_blocked: bool,
    /// A write failed: the connection is to be closed.
    pub(crate) broken: bool,
    /// The configuration and listen site this connection came through.
    pub(crate) http: Arc<HttpConfig>,
    pub(crate) site: usize,
    /// The worker's slot and generation for this connection: tokens of the
    /// request's own descriptors are made from them (see `task_io`).
    pub(crate) slot: usize,
    pub(crate) generation: u16,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("id", &self.id).field("peer", &self.peer).finish()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        crate::read_buf::give(std::mem::take(&mut self.rbuf));
    }
}

impl Conn {
    pub(crate) fn site(&self) -> &ListenSite {
        &self.http.listens[self.site]
    }
}

/// The response head being built.
#[derive(Debug, Default, Clone)]
pub struct HeadersOut {
    /// The status code (0 until set).
    pub status: u16,
    /// `Content-Type`, charset included.
    pub content_type: Option<Bytes>,
    /// `Content-Length`; `None` for a body of unknown length.
    pub content_length: Option<u64>,
    /// `Last-Modified`.
    pub last_modified: Option<SystemTime>,
    /// `Location`; a relative one is made absolute by the header writer as
    /// `absolute_redirect` says.
    pub location: Option<Bytes>,
    /// Other headers, in order.
    pub headers: Vec<(Bytes, Bytes)>,
    /// Trailers sent after a chunked body.
    pub trailers: Vec<(Bytes, Bytes)>,
    /// Chosen by the chunked filter.
    pub chunked: bool,
}

impl HeadersOut {
    /// Adds a header.
    pub fn add(&mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.with_room();
        self.headers.push((name.into(), value.into()));
    }

    /// The first header added takes a finished response's list (memory
    /// kept) instead of allocating one; a response without extra headers
    /// takes nothing.
    fn with_room(&mut self) {
        if self.headers.capacity() == 0 {
            self.headers = crate::header_lists::response();
        }
    }

    /// Removes every header with this name (case-insensitive) from
    /// `headers`.
    pub fn remove(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name.as_bytes()));
    }

    /// Sets a header the response has at most one of: the value replaces
    /// the first of that name (the others are dropped), or is added; an
    /// empty value removes the header.
    pub fn set(&mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) {
        let (name, value) = (name.into(), value.into());
        if value.is_empty() {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            return;
        }
        let mut seen = false;
        self.headers.retain_mut(|(n, v)| {
            if !n.eq_ignore_ascii_case(&name) {
                return true;
            }
            if seen {
                return false;
            }
            seen = true;
            *v = value.clone();
            true
        });
        if !seen {
            self.with_room();
            self.headers.push((name, value));
        }
    }

    /// The first header with this name (case-insensitive), including the
    /// ones kept in fields.
    pub fn get(&self, name: &str) -> Option<Bytes> {
        // Compared in place: this runs in several filters per response.
        let is = |field: &str| name.eq_ignore_ascii_case(field);
        if is("content-type") {
            self.content_type.clone()
        } else if is("content-length") {
            self.content_length.map(|n| Bytes::from(n.to_string()))
        } else if is("location") {
            self.location.clone()
        } else if is("last-modified") {
            self.last_modified.map(|t| Bytes::from(sluice_core::time::http_date(t)))
        } else {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v.clone())
        }
    }
}

/// Regex captures of the last match (location or rewrite), for `$1`..`$9`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Captures {
    subject: Bytes,
    groups: Vec<Option<Range<usize>>>,
    names: Vec<(String, usize)>,
}

/// A context that internal redirects keep (see `Request::set_lasting_ctx`).
struct Lasting(Box<dyn Any>);

/// One HTTP request.
pub struct Request {
    /// The connection (owned while the request lives).
    pub conn: Box<Conn>,
    pub(crate) http: Arc<HttpConfig>,
    /// The virtual server.
    pub server: Arc<Server>,
    /// The location whose confs apply now.
    pub loc: Arc<Location>,
    /// The head as received.
    pub head: Box<RequestHead>,
    /// The current URI (changed by rewrites and internal redirects).
    pub uri: Bytes,
    /// The current arguments.
    pub args: Bytes,
    /// The host: from the request line, the Host header, or the server name.
    pub host: Bytes,
    /// The response head.
    pub headers_out: HeadersOut,
    /// The request body, once read.
    pub body: RequestBody,
    /// True after an internal redirect.
    pub internal: bool,
    /// In a regex location with `alias`, map the URI as alias + URI
    /// instead of the alias alone (set by `try_files` when a file matched,
    /// as nginx's `r->add_uri_to_alias`).
    pub add_uri_to_alias: bool,
    /// No body in the response (HEAD, or the header filter said so).
    pub header_only: bool,
    /// The content handler allows this response to be served in ranges
    /// (nginx's `r->allow_ranges`); the range filter reads it.
    pub allow_ranges: bool,
    /// The connection may be kept open after this request.
    pub keepalive: bool,
    /// When the request line was read.
    pub start: Instant,
    /// Bytes sent to the client for this request (head included).
    pub bytes_sent: u64,
    /// Bytes of the response head.
    pub header_bytes: u64,
    pub(crate) uri_changes: u8,
    pub(crate) uri_changed: bool,
    pub(crate) phase: usize,
    pub(crate) phase_handler: usize,
    /// Boxed and only set after a regex matched: most requests have none,
    /// and a smaller `Request` stays within the allocator's fast size
    /// classes.
    pub(crate) captures: Option<Box<Captures>>,
    /// Values of declared variables (`set`, `map`), kept across internal
    /// redirects as nginx keeps `r->variables`.
    pub(crate) var_store: crate::variables::VarStore,
    pub(crate) ctx: Vec<(usize, Box<dyn Any>)>,
    pub(crate) task: Option<Box<dyn Task>>,
    pub(crate) header_sent: bool,
    pub(crate) last_sent: bool,
    pub(crate) error_page_used: bool,
    pub(crate) finalized: bool,
    pub(crate) restarted: bool,
    pub(crate) pipelined: bool,
    /// The response was cut short on purpose (`truncate_response`).
    pub(crate) truncated: bool,
    /// The task reads the client's bytes itself (`set_reads_client`).
    pub(crate) reads_client: bool,
    /// The URI was changed inside the location without choosing again
    /// (`rewrite ... break`): nginx's `valid_location` cleared.
    pub(crate) location_left: bool,
    /// The handler sent a status its error page should report (`error_page ... =`).
    pub(crate) err_status: u16,
    /// The 401, 403 or 407 an access handler answered under `satisfy any`,
    /// kept until post_access (0: none), as nginx's `r->access_code`. A
    /// field, not the core module's context: that slot holds the
    /// `limit_rate` state, which must outlive the access phase.
    pub(crate) access_code: u16,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("conn", &self.conn.id)
            .field("uri", &self.uri)
            .field("status", &self.headers_out.status)
            .finish()
    }
}

/// Internal redirects and URI changes allowed per request, as nginx's.
pub(crate) const MAX_URI_CHANGES: u8 = 10;

impl Request {
    pub(crate) fn new(conn: Box<Conn>, head: Box<RequestHead>, server: Arc<Server>, host: Bytes) -> Request {
        let http = conn.http.clone();
        let loc = server.root.clone();
        let header_only = head.method == Method::Head;
        Request {
            uri: head.uri.clone(),
            args: head.args.clone(),
            conn,
            http,
            server,
            loc,
            head,
            host,
            headers_out: HeadersOut::default(),
            body: RequestBody::default(),
            internal: false,
            add_uri_to_alias: false,
            header_only,
            allow_ranges: false,
            keepalive: false,
            start: sluice_core::event::now(),
            bytes_sent: 0,
            header_bytes: 0,
            uri_changes: MAX_URI_CHANGES + 1,
            uri_changed: false,
            phase: 0,
            phase_handler: 0,
            captures: None,
            var_store: Default::default(),
            // Allocated when a module first sets a context.
            ctx: Vec::new(),
            task: None,
            header_sent: false,
            last_sent: false,
            error_page_used: false,
            finalized: false,
            restarted: false,
            pipelined: false,
            truncated: false,
            reads_client: false,
            location_left: false,
            err_status: 0,
            access_code: 0,
        }
    }

    /// A module's location conf for the current location.
    #[inline]
    pub fn loc_conf<M, S, L: 'static>(&self, key: &ConfKey<M, S, L>) -> &L {
        downcast(self.loc.confs[key.slot()].as_ref())
    }

    /// A module's server conf.
    #[inline]
    pub fn srv_conf<M, S: 'static, L>(&self, key: &ConfKey<M, S, L>) -> &S {
        downcast(self.server.srv_confs[key.slot()].as_ref())
    }

    /// A module's main conf.
    #[inline]
    pub fn main_conf<M: 'static, S, L>(&self, key: &ConfKey<M, S, L>) -> &M {
        downcast(self.http.main_confs[key.slot()].as_ref())
    }

    /// The core location conf.
    #[inline]
    pub fn core_loc(&self) -> &CoreLocConf {
        self.loc_conf(&CORE)
    }

    /// The core server conf.
    #[inline]
    pub fn core_srv(&self) -> &CoreSrvConf {
        self.srv_conf(&CORE)
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.head.method
    }

    /// A request header (first of that name, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.head.header(name)
    }

    /// Drops the modules' contexts for an internal redirect, except the
    /// ones set with [`Request::set_lasting_ctx`].
    pub(crate) fn clear_ctx_for_redirect(&mut self) {
        self.allow_ranges = false;
        self.access_code = 0;
        self.ctx.retain(|(_, b)| b.is::<Lasting>());
    }

    /// Sets a context that survives internal redirects (what a later
    /// location must still see: the proxy's `$upstream_*` record when an
    /// error page or `X-Accel-Redirect` takes over, as nginx keeps
    /// `r->upstream_states`). Read it with [`Request::lasting_ctx`].
    pub fn set_lasting_ctx<M, S, L, T: 'static>(&mut self, key: &ConfKey<M, S, L>, value: T) {
        self.set_ctx(key, Lasting(Box::new(value)));
    }

    /// A context set with [`Request::set_lasting_ctx`].
    pub fn lasting_ctx<M, S, L, T: 'static>(&self, key: &ConfKey<M, S, L>) -> Option<&T> {
        self.ctx::<M, S, L, Lasting>(key)?.0.downcast_ref()
    }

    /// A context set with [`Request::set_lasting_ctx`], mutably.
    pub fn lasting_ctx_mut<M, S, L, T: 'static>(&mut self, key: &ConfKey<M, S, L>) -> Option<&mut T> {
        self.ctx_mut::<M, S, L, Lasting>(key)?.0.downcast_mut()
    }

    /// A module's per-request context.
    pub fn ctx<M, S, L, T: 'static>(&self, key: &ConfKey<M, S, L>) -> Option<&T> {
        let slot = key.slot();
        self.ctx.iter().find(|(s, _)| *s == slot)?.1.downcast_ref()
    }

    /// A module's per-request context, mutably.
    pub fn ctx_mut<M, S, L, T: 'static>(&mut self, key: &ConfKey<M, S, L>) -> Option<&mut T> {
        let slot = key.slot();
        self.ctx.iter_mut().find(|(s, _)| *s == slot)?.1.downcast_mut()
    }

    /// Sets a module's per-request context. (The contexts are a short list
    /// of the modules that set one, searched in order: a request has one or
    /// two, and a table with a place for every module cost an allocation of
    /// that size per request.)
    pub fn set_ctx<M, S, L, T: 'static>(&mut self, key: &ConfKey<M, S, L>, value: T) {
        let slot = key.slot();
        let value: Box<dyn Any> = Box::new(value);
        match self.ctx.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, old)) => *old = value,
            None => self.ctx.push((slot, value)),
        }
    }

    /// Removes a module's per-request context, when it is a `T` (a context
    /// of another type stays).
    pub fn take_ctx<M, S, L, T: 'static>(&mut self, key: &ConfKey<M, S, L>) -> Option<T> {
        let slot = key.slot();
        let i = self.ctx.iter().position(|(s, b)| *s == slot && b.is::<T>())?;
        self.ctx.swap_remove(i).1.downcast::<T>().ok().map(|b| *b)
    }

    /// Installs the task that resumes this request later (after the
    /// handler returns `Flow::Again`).
    pub fn set_task(&mut self, task: Box<dyn Task>) {
        self.task = Some(task);
    }

    /// Capture `n` of the last regex match.
    pub fn capture(&self, n: usize) -> Option<Bytes> {
        let c = self.captures.as_deref()?;
        let r = c.groups.get(n)?.clone()?;
        Some(c.subject.slice(r))
    }

    /// A named capture of the last regex match.
    pub fn named_capture(&self, name: &str) -> Option<Bytes> {
        let (_, i) = self.captures.as_deref()?.names.iter().find(|(n, _)| n == name)?;
        self.capture(*i)
    }

    /// Sets the captures of a regex match (`$1`..`$9`, named captures),
    /// as the rewrite module does after `rewrite` or `if (... ~ ...)`.
    pub fn set_captures(&mut self, subject: Bytes, groups: Vec<Option<Range<usize>>>, names: Vec<(String, usize)>) {
        self.captures = if groups.is_empty() && names.is_empty() {
            None
        } else {
            Some(Box::new(Captures { subject, groups, names }))
        };
    }

    /// Sets the captures of `re`'s match `caps` in `subject`: `$1`... and
    /// the named groups, as a matching regex of a directive leaves them.
    pub fn set_match(&mut self, subject: Bytes, re: &regex::bytes::Regex, caps: &regex::bytes::Captures<'_>) {
        let groups = (0..caps.len()).map(|i| caps.get(i).map(|m| m.range())).collect();
        self.set_captures(subject, groups, crate::regex_compat::names(re));
    }

    /// True once the response head went to the filters.
    pub fn header_sent(&self) -> bool {
        self.header_sent
    }

    /// Runs the header filters (once).
    pub fn send_header(&mut self) -> FilterResult {
        if self.header_sent {
            return Ok(FilterStatus::Ok);
        }
        self.header_sent = true;
        if self.headers_out.status == 0 {
            self.headers_out.status = 200;
        }
        // The location's own chain (filters it rules out are not in it);
        // the registered chain whole only for a location built outside a
        // configuration load.
        let loc = self.loc.clone();
        match loc.chains() {
            Some(chains) => NextHeader { rest: &chains.header }.call(self),
            None => {
                let http = self.http.clone();
                NextHeader { rest: &http.header_filters }.call(self)
            }
        }
    }

    /// Runs a chain through the body filters.
    pub fn output(&mut self, chain: Chain) -> FilterResult {
        if self.last_sent {
            return Ok(FilterStatus::Ok);
        }
        // The location does not change once the header is sent, so this
        // is the chain whose header filters ran.
        let loc = self.loc.clone();
        match loc.chains() {
            Some(chains) => NextBody { rest: &chains.body }.call(self, chain),
            None => {
                let http = self.http.clone();
                NextBody { rest: &http.body_filters }.call(self, chain)
            }
        }
    }

    /// Sends a whole response from memory: status, content type, body.
    pub fn send_response(&mut self, status: u16, content_type: Option<Bytes>, body: Bytes) -> FilterResult {
        self.headers_out.status = status;
        if content_type.is_some() {
            self.headers_out.content_type = content_type;
        }
        self.headers_out.content_length = Some(body.len() as u64);
        self.send_header()?;
        let mut chain = Chain::new();
        if !body.is_empty() && !self.header_only {
            chain.push(sluice_core::Buf::mem(body));
        }
        chain.push(sluice_core::Buf::last());
        self.output(chain)
    }

    /// The effective default content type of the location (`default_type`).
    pub fn default_type(&self) -> Bytes {
        self.core_loc().default_type_value.clone()
    }

    /// The content type for the current URI, as nginx chooses it: by the
    /// URI's extension through `types`, else `default_type`.
    pub fn content_type_for_uri(&self) -> Bytes {
        let core = self.core_loc();
        let last = self.uri.rsplit(|&c| c == b'/').next().unwrap_or(&self.uri);
        if let Some(dot) = memchr::memrchr(b'.', last) {
            if let (Some(types), Ok(ext)) = (&core.types, std::str::from_utf8(&last[dot + 1..])) {
                // Keys are lower case; most extensions already are.
                let found = if ext.bytes().any(|c| c.is_ascii_uppercase()) {
                    types.get(&ext.to_ascii_lowercase())
                } else {
                    types.get(ext)
                };
                if let Some(t) = found {
                    return t.clone();
                }
            }
        }
        core.default_type_value.clone()
    }

    /// The HTTP version as text (`HTTP/1.1`).
    pub fn protocol(&self) -> &'static str {
        match self.head.version {
            (1, 1) => "HTTP/1.1",
            (1, 0) => "HTTP/1.0",
            (0, 9) => "HTTP/0.9",
            _ => "HTTP/1.1",
        }
    }

    /// True when all output, including `last_buf`, reached the socket.
    pub(crate) fn response_complete(&self) -> bool {
        (self.last_sent || self.truncated) && self.conn.out.is_empty()
    }

    /// Ends a response that cannot be completed (its source failed half
    /// way): what was produced is still sent, then the connection closes
    /// without the end of the body, so the client sees a truncated
    /// response rather than a complete-looking one. The handler then
    /// returns `Flow::Done`.
    pub fn truncate_response(&mut self) {
        self.truncated = true;
        self.keepalive = false;
    }

    /// Notes that the URI changed inside the current location, which is
    /// kept (`rewrite ... break`, or `break` after a rewrite): handlers
    /// that map the URI by the location's name (`proxy_pass` with a URI
    /// part) then use the URI as it is.
    pub fn leave_location(&mut self) {
        self.location_left = true;
    }

    /// The current location was chosen for the current URI (not left by
    /// [`Request::leave_location`]).
    pub fn location_valid(&self) -> bool {
        !self.location_left
    }

    /// From now on the task reads what the client sends (an upgraded
    /// connection): readable events resume it with `Resume::ClientReadable`
    /// and it reads with [`Request::read_client`].
    pub fn set_reads_client(&mut self, on: bool) {
        self.reads_client = on;
    }

    /// Reads up to `max` raw bytes the client sent (what was already
    /// buffered first). `Ok(None)`: nothing now; an empty `Bytes`: the
    /// client closed its side.
    pub fn read_client(&mut self, max: usize) -> std::io::Result<Option<Bytes>> {
        if self.conn.rbuf.is_empty() {
            match crate::body::read_socket(&mut self.conn, max) {
                Ok(0) => return Ok(Some(Bytes::new())),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let n = self.conn.rbuf.len().min(max);
        Ok(Some(self.conn.rbuf.split_to(n).freeze()))
    }

    /// Bytes of memory the client connection holds queued for sending (file
    /// regions not counted): a producer that reads ahead stops while this
    /// is at its bound.
    pub fn output_pending_mem(&self) -> u64 {
        self.conn.out.iter().filter(|b| b.in_memory()).map(|b| b.len()).sum()
    }

    /// How many bufs the client connection holds queued for sending: what
    /// the queue itself costs in memory, whatever their size. A producer
    /// that keeps a backlog of its own (the proxy's temp file) holds it
    /// back while this is high; the task is resumed with
    /// `Resume::Writable` when the queue drains.
    pub fn output_pending_bufs(&self) -> usize {
        self.conn.out.buf_count()
    }

    /// Maps a URI to a file path by `root` or `alias` (nginx's
    /// `ngx_http_map_uri_to_path`): root + URI; for `alias` in a prefix
    /// location, alias + the URI after the location's name; for `alias` in
    /// a regex location, the alias itself (captures substituted).
    pub fn map_uri_to_path(&self, uri: &[u8]) -> std::path::PathBuf {
        use std::os::unix::ffi::OsStringExt;
        let core = self.core_loc();
        let mut path = Vec::with_capacity(64 + uri.len());
        if let Some(alias) = &core.alias {
            path.extend_from_slice(&alias.eval(self));
            match core.alias_of {
                Some(crate::core_module::AliasOf::Prefix(n)) => path.extend_from_slice(uri.get(n..).unwrap_or(b"")),
                _ if self.add_uri_to_alias => path.extend_from_slice(uri),
                _ => {}
            }
        } else {
            let root = core.root.as_ref().map(|r| r.eval(self)).unwrap_or_default();
            path.extend_from_slice(&root);
            path.extend_from_slice(uri);
        }
        // The bytes become the path without a copy.
        let p = std::path::PathBuf::from(std::ffi::OsString::from_vec(path));
        if p.is_relative() {
            self.http.prefix.join(p)
        } else {
            p
        }
    }

    /// Writes an error-log line about this request: to the `error_log` of
    /// its location (or server, or http level) when one is set, else to the
    /// main error log. Use [`req_log!`](crate::req_log).
    pub fn log(&self, level: sluice_core::log::Level, args: std::fmt::Arguments<'_>) {
        match &self.core_loc().error_log {
            Some(l) => {
                if level <= l.level() {
                    l.write(level, Some(self.conn.id), args);
                }
            }
            None => sluice_core::log::write(level, Some(self.conn.id), args),
        }
    }

    /// True when the request arrived behind the previous one on the
    /// connection, before that one was answered (`$pipe`).
    pub fn pipelined(&self) -> bool {
        self.pipelined
    }

    /// The connection number, for log lines.
    pub fn log_id(&self) -> Option<u64> {
        Some(self.conn.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_fits_the_allocators_fast_size_classes() {
        // glibc serves blocks up to 1032 bytes from its per-thread cache;
        // one `Request` is allocated per request.
        assert!(std::mem::size_of::<super::Request>() <= 1024, "{}", std::mem::size_of::<super::Request>());
    }

    #[test]
    fn set_replaces_once_and_remove_drops_all() {
        let mut h = HeadersOut::default();
        h.add(Bytes::from_static(b"cache-control"), Bytes::from_static(b"private"));
        h.add(Bytes::from_static(b"X"), Bytes::from_static(b"1"));
        h.add(Bytes::from_static(b"Cache-Control"), Bytes::from_static(b"no-store"));
        h.set(Bytes::from_static(b"Cache-Control"), Bytes::from_static(b"max-age=5"));
        h.set(Bytes::from_static(b"Expires"), Bytes::from_static(b"soon"));
        let flat: Vec<(&[u8], &[u8])> = h.headers.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        assert_eq!(flat, vec![(&b"cache-control"[..], &b"max-age=5"[..]), (b"X", b"1"), (b"Expires", b"soon")]);
        h.set(Bytes::from_static(b"x"), Bytes::new());
        h.remove("EXPIRES");
        let flat: Vec<&[u8]> = h.headers.iter().map(|(n, _)| &n[..]).collect();
        assert_eq!(flat, vec![&b"cache-control"[..]]);
    }
}
