//! The phase engine: runs a request through nginx's eleven phases.
//!
//! Each phase has a checker that reads the handlers' answers the way nginx's
//! `ngx_http_core_*_phase` functions do:
//!
//! | phase | Declined | Ok | Again / Done | Status |
//! |---|---|---|---|---|
//! | post_read, preaccess, precontent | next handler | next phase | suspend | finish |
//! | server_rewrite, rewrite | next handler | next handler | suspend | finish |
//! | access, `satisfy all` | next handler | next handler (all must pass) | suspend | finish |
//! | access, `satisfy any` | next handler | next phase (one pass is enough) | suspend | 401/403 remembered, next handler; else finish |
//! | content | next handler | finish | suspend / finish | finish |
//!
//! find_config, post_rewrite and post_access are the engine's own steps.
//! With `satisfy any`, post_access answers with the 401 or 403 remembered
//! from the access phase when no handler let the request pass (a 401 wins
//! over a 403, as in nginx). Which mode applies is asked of the function a
//! module registered with `PostConf::set_access_satisfy` (the access
//! module owns the `satisfy` directive); without one every request is
//! `satisfy all`.
//! Internal redirects re-enter at server_rewrite, as nginx's
//! `ngx_http_internal_redirect` does (so server-level rewrites see the new
//! URI); a rewrite's `last` re-enters at find_config.

use bytes::Bytes;

use crate::module::{Flow, Phase};
use crate::request::Request;
use crate::special;

const PHASES: [Phase; Phase::COUNT] = [
    Phase::PostRead,
    Phase::ServerRewrite,
    Phase::FindConfig,
    Phase::Rewrite,
    Phase::PostRewrite,
    Phase::Preaccess,
    Phase::Access,
    Phase::PostAccess,
    Phase::Precontent,
    Phase::Content,
    Phase::Log,
];

/// Starts a request at the first phase.
pub(crate) fn start(r: &mut Request) {
    r.phase = Phase::PostRead as usize;
    r.phase_handler = 0;
    run(r);
}

/// Runs phases from where the request stands until it finishes or waits.
pub(crate) fn run(r: &mut Request) {
    if r.finalized || r.phase >= Phase::Log as usize {
        return;
    }
    // One reference to the configuration for all the steps, rather than a
    // reference-count increment per handler called.
    let http = r.http.clone();
    loop {
        if r.finalized || r.phase >= Phase::Log as usize {
            return;
        }
        match step(r, &http) {
            Step::Continue => {}
            Step::Suspend => return,
            Step::Finish(flow) => {
                if r.phase_restarted() {
                    continue;
                }
                finalize(r, flow);
                if r.phase_restarted() {
                    continue;
                }
                return;
            }
        }
    }
}

enum Step {
    Continue,
    Suspend,
    Finish(Flow),
}

fn next_phase(r: &mut Request) -> Step {
    r.phase += 1;
    r.phase_handler = 0;
    Step::Continue
}

fn step(r: &mut Request, http: &crate::config::HttpConfig) -> Step {
    let phase = PHASES[r.phase];
    match phase {
        Phase::FindConfig => find_config(r),
        Phase::PostRewrite => post_rewrite(r),
        Phase::PostAccess => post_access(r),
        Phase::Content => content(r, http),
        _ => {
            // Handlers this location's confs give nothing to do are passed
            // by as if they had declined.
            while r.loc.skips(phase, r.phase_handler) {
                r.phase_handler += 1;
            }
            let Some(h) = http.phases[phase as usize].get(r.phase_handler) else {
                return next_phase(r);
            };
            let flow = h.handle(r);
            if phase == Phase::Access && (http.satisfy)(r) == Satisfy::Any {
                return access_any(r, flow);
            }
            match (phase, flow) {
                (_, Flow::Declined) => {
                    r.phase_handler += 1;
                    Step::Continue
                }
                (Phase::ServerRewrite | Phase::Rewrite | Phase::Access, Flow::Ok) => {
                    r.phase_handler += 1;
                    Step::Continue
                }
                (_, Flow::Ok) => next_phase(r),
                (_, Flow::Again) => Step::Suspend,
                (_, Flow::Done) => Step::Finish(Flow::Done),
                (Phase::Access, Flow::Status(s @ (401 | 407))) => auth_delay(r, s),
                (_, Flow::Status(s)) => Step::Finish(Flow::Status(s)),
            }
        }
    }
}

/// How the access phase combines its handlers' answers (nginx's `satisfy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Satisfy {
    /// Every access handler must pass (the default).
    All,
    /// One passing access handler is enough.
    Any,
}

/// nginx's access checker for `satisfy any`.
fn access_any(r: &mut Request, flow: Flow) -> Step {
    match flow {
        Flow::Declined => {
            r.phase_handler += 1;
            Step::Continue
        }
        Flow::Ok => {
            // Access granted: forget a denial and the challenge a failed
            // handler left behind.
            r.access_code = 0;
            r.headers_out.remove("WWW-Authenticate");
            next_phase(r)
        }
        Flow::Again => Step::Suspend,
        Flow::Done => Step::Finish(Flow::Done),
        Flow::Status(code @ (401 | 403 | 407)) => {
            if !matches!(r.access_code, 401 | 407) {
                r.access_code = code;
            }
            r.phase_handler += 1;
            Step::Continue
        }
        Flow::Status(s) => Step::Finish(Flow::Status(s)),
    }
}

fn post_access(r: &mut Request) -> Step {
    let code = std::mem::take(&mut r.access_code);
    match code {
        0 => next_phase(r),
        401 | 407 => auth_delay(r, code),
        _ => {
            if code == 403 {
                sluice_core::log_error!(sluice_core::log::Level::Error, r.log_id(), "access forbidden by rule");
            }
            Step::Finish(Flow::Status(code))
        }
    }
}

/// A request refused for want of credentials (401, 407) is answered after
/// `auth_delay`, as nginx does, so that the time an answer takes tells a
/// client guessing passwords nothing.
fn auth_delay(r: &mut Request, code: u16) -> Step {
    let delay = r.core_loc().auth_delay.unwrap_or_default();
    if delay.is_zero() {
        return Step::Finish(Flow::Status(code));
    }
    crate::req_log!(r, sluice_core::log::Level::Info, "delaying unauthorized request");
    r.set_task(Box::new(AuthDelay { until: sluice_core::event::now() + delay, code }));
    Step::Suspend
}

/// Waits out `auth_delay`, then answers with the refusal.
struct AuthDelay {
    until: std::time::Instant,
    code: u16,
}

impl crate::module::Task for AuthDelay {
    fn resume(&mut self, _: &mut Request, why: crate::module::Resume) -> Flow {
        match why {
            crate::module::Resume::Timer if sluice_core::event::now() >= self.until => Flow::Status(self.code),
            // The client gave up: nothing to answer.
            crate::module::Resume::ClientClosed => Flow::Status(499),
            _ => Flow::Again,
        }
    }

    fn deadline(&self) -> Option<std::time::Instant> {
        Some(self.until)
    }
}

fn find_config(r: &mut Request) -> Step {
    // A server-level rewrite's URI change is served by this very look-up.
    r.uri_changed = false;
    r.location_left = false;
    let found = r.server.root.nested.find(&r.uri);
    match found {
        Some(f) if f.auto_redirect => {
            r.loc = f.location;
            // Escaped as a path is sent (the URI is decoded), as nginx
            // redirects to the location's escaped name.
            let mut to = bytes::BytesMut::with_capacity(r.uri.len() + r.args.len() + 2);
            crate::parse::escape_uri(&mut to, &r.uri);
            to.extend_from_slice(b"/");
            if !r.args.is_empty() {
                to.extend_from_slice(b"?");
                to.extend_from_slice(&r.args);
            }
            r.headers_out.location = Some(to.freeze());
            return Step::Finish(Flow::Status(301));
        }
        Some(f) => {
            if !f.captures.is_empty() {
                let subject = r.uri.clone();
                r.set_captures(subject, f.captures, f.capture_names);
            }
            r.loc = f.location;
            apply_limit_except(r);
        }
        None => r.loc = r.server.root.clone(),
    }
    crate::connection::apply_location_keepalive(r);
    let core = r.core_loc();
    if core.internal == Some(true) && !r.internal {
        return Step::Finish(Flow::Status(404));
    }
    let max = core.client_max_body_size.unwrap_or(0);
    if max > 0 && r.body.declared_length().is_some_and(|n| n > max) {
        crate::req_log!(
            r,
            sluice_core::log::Level::Error,
            "client intended to send too large body: {} bytes, client: {}, server: {}, request: \"{}\"",
            r.body.declared_length().unwrap_or(0),
            r.conn.peer.ip(),
            r.server.name,
            String::from_utf8_lossy(r.head.request_line())
        );
        r.keepalive = false;
        return Step::Finish(Flow::Status(413));
    }
    next_phase(r)
}

fn post_rewrite(r: &mut Request) -> Step {
    if !r.uri_changed {
        return next_phase(r);
    }
    r.uri_changed = false;
    r.uri_changes -= 1;
    if r.uri_changes == 0 {
        crate::req_log!(
            r,
            sluice_core::log::Level::Error,
            "rewrite or internal redirection cycle while processing \"{}\"",
            String::from_utf8_lossy(&r.uri)
        );
        return Step::Finish(Flow::Status(500));
    }
    r.phase = Phase::FindConfig as usize;
    r.phase_handler = 0;
    Step::Continue
}

fn content(r: &mut Request, http: &crate::config::HttpConfig) -> Step {
    if let Some(h) = r.core_loc().content_handler.clone() {
        return match h.handle(r) {
            Flow::Again => Step::Suspend,
            flow => Step::Finish(flow),
        };
    }
    let handlers = &http.phases[Phase::Content as usize];
    while let Some(h) = handlers.get(r.phase_handler) {
        if r.loc.skips(Phase::Content, r.phase_handler) {
            r.phase_handler += 1;
            continue;
        }
        match h.handle(r) {
            Flow::Declined => r.phase_handler += 1,
            Flow::Again => return Step::Suspend,
            flow => return Step::Finish(flow),
        }
    }
    if r.uri.ends_with(b"/") {
        crate::req_log!(
            r,
            sluice_core::log::Level::Error,
            "directory index of \"{}\" is forbidden",
            String::from_utf8_lossy(&r.uri)
        );
        return Step::Finish(Flow::Status(403));
    }
    Step::Finish(Flow::Status(404))
}

/// Ends the content work of a request with a handler's result: an error
/// page for a status, the end of output otherwise. The connection completes
/// the request once all output reached the socket.
pub fn finalize(r: &mut Request, flow: Flow) {
    match flow {
        Flow::Again => {}
        Flow::Declined | Flow::Ok | Flow::Done => {
            if r.task.is_none() && !r.last_sent && !r.truncated {
                if !r.header_sent() {
                    special::send(r, 500);
                } else {
                    let _ = r.output(sluice_core::Chain::one(sluice_core::Buf::last()));
                }
            }
            if r.task.is_none() {
                r.finalized = true;
            }
        }
        Flow::Status(code) => {
            r.task = None;
            if r.header_sent() {
                // Too late for an error page: the client gets a truncated
                // response and the connection is closed.
                r.keepalive = false;
                r.conn.broken = true;
                r.finalized = true;
                return;
            }
            special::send(r, code);
            if r.task.is_none() && !r.restarted {
                r.finalized = true;
            }
        }
    }
}

/// A request whose method the location's `limit_except` does not allow
/// goes on with that block's confs (nginx's location config update).
fn apply_limit_except(r: &mut Request) {
    let Some((allowed, n)) = r.core_loc().limit_except else {
        return;
    };
    if allowed & crate::core_module::method_bit(r.head.method) == 0 {
        if let Some(l) = r.loc.anonymous(n).cloned() {
            r.loc = l;
        }
    }
}

/// Redirects the request internally to `uri` (with `args`): the phases run
/// again from server_rewrite with the new URI. Returns `Flow::Done` (the
/// caller's handler is finished) or a 500 after too many redirects.
pub fn internal_redirect(r: &mut Request, uri: Bytes, args: Bytes) -> Flow {
    r.uri_changes = r.uri_changes.saturating_sub(1);
    if r.uri_changes == 0 {
        crate::req_log!(
            r,
            sluice_core::log::Level::Error,
            "rewrite or internal redirection cycle while internally redirecting to \"{}\"",
            String::from_utf8_lossy(&uri)
        );
        return Flow::Status(500);
    }
    r.uri = uri;
    r.args = args;
    r.internal = true;
    r.loc = r.server.root.clone();
    r.clear_ctx_for_redirect();
    r.phase = Phase::ServerRewrite as usize;
    r.phase_handler = 0;
    r.restarted = true;
    Flow::Done
}

/// Redirects the request to a named location: phases run again from
/// rewrite with that location's confs.
pub fn named_redirect(r: &mut Request, name: &str) -> Flow {
    let Some(loc) = r.server.named.get(name).cloned() else {
        crate::req_log!(r, sluice_core::log::Level::Error, "could not find named location \"{}\"", name);
        return Flow::Status(500);
    };
    r.uri_changes = r.uri_changes.saturating_sub(1);
    if r.uri_changes == 0 {
        return Flow::Status(500);
    }
    r.loc = loc;
    apply_limit_except(r);
    r.internal = true;
    r.clear_ctx_for_redirect();
    r.phase = Phase::Rewrite as usize;
    r.phase_handler = 0;
    r.restarted = true;
    Flow::Done
}

impl Request {
    /// True when a rewrite changed the URI (`rewrite ... last`, or one
    /// without a flag): after the rewrite phase the location is looked up
    /// again for `r.uri`, at most 10 times per request.
    pub fn uri_changed(&self) -> bool {
        self.uri_changed
    }

    /// Sets or clears the mark [`Request::uri_changed`] reads.
    pub fn set_uri_changed(&mut self, changed: bool) {
        self.uri_changed = changed;
    }

    /// True (once) after an internal redirect restarted the phases.
    pub(crate) fn phase_restarted(&mut self) -> bool {
        std::mem::take(&mut self.restarted)
    }
}

/// Runs the log phase handlers.
pub(crate) fn log_phase(r: &mut Request) {
    let http = r.http.clone();
    for h in &http.phases[Phase::Log as usize] {
        h.handle(r);
    }
}
