//! The `status` module: a location that answers with the server's status
//! as JSON, in the spirit of nginx's `stub_status`.
//!
//! ```text
//! location = /status {
//!     sluice_status;        # location only, no arguments
//! }
//! ```
//!
//! `GET /status` answers `200`, `Content-Type: application/json`,
//! `Cache-Control: no-store`, and one line:
//!
//! ```text
//! {"pid":4711,"accepted":12,"requests":40,"connection_requests":3}
//! ```
//!
//! * `pid`: the server process;
//! * `accepted`: the number of this connection — connections accepted by
//!   all workers since the server started, this one included;
//! * `requests`: requests that entered the phases since start, this one
//!   included (all workers; a reload keeps counting);
//! * `connection_requests`: requests on this connection, this one included.
//!
//! HEAD gets the head alone; other methods get 405.
//!
//! Two hooks: the directive's setter makes [`StatusHandler`] the content
//! handler of its location (not inherited, as nginx's `stub_status` is
//! not), and postconfiguration adds [`count_request`] to the post_read
//! phase, where it counts every request. The counter is a process-wide
//! atomic: workers are threads of one process, and a relaxed increment
//! costs them nothing. No per-request state.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use sluice_core::conf::directive::{custom, duplicate, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_http::parse::Method;
use sluice_http::{
    AnyConf, ConfKey, Flow, HttpConfCx, HttpModule, ModuleIndex, Phase, PhaseHandler, PostConf, Request,
};

/// Location conf: whether `sluice_status` was given here (to reject a
/// duplicate; the handler itself lives in the location's core conf).
#[derive(Debug, Default)]
pub struct StatusLocConf {
    set: bool,
}

/// The module's key.
pub static KEY: ConfKey<(), (), StatusLocConf> = ConfKey::new();

/// The `status` module.
#[derive(Debug)]
pub struct StatusModule;

/// Requests that entered the phases, in every worker.
static REQUESTS: AtomicU64 = AtomicU64::new(0);

impl HttpModule for StatusModule {
    fn name(&self) -> &'static str {
        "status"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![Directive::new("sluice_status", C::HTTP_LOC, Args::NOARGS, Level::Loc, custom(set_status))]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(StatusLocConf::default())
    }

    fn merge_loc_conf(&self, _parent: &dyn Any, _child: &mut dyn Any) -> Result<(), String> {
        // Nothing is inherited: a content handler belongs to its location.
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.add_phase_handler(Phase::PostRead, Arc::new(count_request));
        Ok(())
    }
}

/// The setter of `sluice_status`: makes this location's content handler
/// ours, as `proxy_pass` sets nginx's `clcf->handler`.
fn set_status(cx: &mut HttpConfCx, c: &mut StatusLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.set {
        return Err(duplicate(stmt).into());
    }
    c.set = true;
    cx.set_content_handler(Arc::new(StatusHandler))
}

/// The post_read handler: counts the request and lets the phase go on.
pub fn count_request(_r: &mut Request) -> Flow {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    Flow::Declined
}

/// The content handler of a `sluice_status` location.
#[derive(Debug)]
pub struct StatusHandler;

impl PhaseHandler for StatusHandler {
    fn handle(&self, r: &mut Request) -> Flow {
        if !matches!(r.method(), Method::Get | Method::Head) {
            return Flow::Status(405);
        }
        // A body nobody reads must still leave the connection, or the next
        // keep-alive request would start inside it.
        if let Err(status) = r.discard_body() {
            return Flow::Status(status);
        }
        let json = status_json(std::process::id(), r.conn.id, REQUESTS.load(Ordering::Relaxed), r.conn.requests);
        r.headers_out.add(Bytes::from_static(b"Cache-Control"), Bytes::from_static(b"no-store"));
        let json_type = Some(Bytes::from_static(b"application/json"));
        match r.send_response(200, json_type, Bytes::from(json)) {
            // Again: the connection sends the rest before it completes.
            Ok(_) => Flow::Done,
            Err(_) => Flow::Status(500),
        }
    }
}

/// The document: numbers only, so no escaping is needed.
pub fn status_json(pid: u32, accepted: u64, requests: u64, connection_requests: u64) -> String {
    format!(
        "{{\"pid\":{pid},\"accepted\":{accepted},\"requests\":{requests},\
         \"connection_requests\":{connection_requests}}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_one_line_of_json() {
        assert_eq!(
            status_json(4711, 12, 40, 3),
            "{\"pid\":4711,\"accepted\":12,\"requests\":40,\"connection_requests\":3}\n"
        );
    }
}
