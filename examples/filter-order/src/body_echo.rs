//! `body_echo` — a content handler that reads the request body and sends it
//! back: the smallest handler that uses sluice's body reader.
//!
//! ```text
//! location /echo { body_echo; client_body_buffer_size 16k; }
//! ```
//!
//! It calls `Request::read_body` with the function to continue with. A body
//! that is not all there yet makes the reader answer `Flow::Again`; the
//! connection reads the rest as it arrives and then calls the continuation.
//! The body comes back as the request holds it: memory buffers, or — past
//! `client_body_buffer_size` — one region of the temp file, which the write
//! filter sends with `sendfile` when `sendfile on` and which is removed
//! when the request ends. `X-Body-In-File: yes|no` tells which happened.

use std::sync::Arc;

use bytes::Bytes;
use sluice_core::conf::directive::{Args, Contexts as C, Directive, Level};
use sluice_core::Buf;
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::{AnyConf, ConfKey, Flow, HttpConfCx, HttpModule, ModuleIndex, PhaseHandler, Request};

/// The module's key (a marker conf: the handler is the location's).
pub static KEY: ConfKey<(), (), BodyEchoLocConf> = ConfKey::new();

/// Location conf: whether `body_echo` was given here (for duplicates).
#[derive(Debug, Default)]
pub struct BodyEchoLocConf {
    set: bool,
}

/// The module.
#[derive(Debug)]
pub struct BodyEchoModule;

struct BodyEchoHandler;

impl PhaseHandler for BodyEchoHandler {
    fn handle(&self, r: &mut Request) -> Flow {
        r.read_body(echo)
    }
}

/// Runs once the whole body is in.
fn echo(r: &mut Request) -> Flow {
    let in_file = r.body_file().is_some();
    let len = r.body.received;
    let body = r.body.bufs.clone();
    r.headers_out.status = 200;
    r.headers_out.content_type = Some(Bytes::from_static(b"application/octet-stream"));
    r.headers_out.content_length = Some(len);
    r.headers_out.add(Bytes::from_static(b"X-Body-In-File"), Bytes::from_static(if in_file { b"yes" } else { b"no" }));
    if r.send_header().is_err() {
        return Flow::Status(500);
    }
    let mut chain = body;
    chain.push(Buf::last());
    match r.output(chain) {
        Ok(_) => Flow::Done,
        Err(_) => Flow::Status(500),
    }
}

impl HttpModule for BodyEchoModule {
    fn name(&self) -> &'static str {
        "body_echo"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![Directive::new(
            "body_echo",
            C::HTTP_LOC,
            Args::NOARGS,
            Level::Loc,
            Box::new(|cx: &mut HttpConfCx, conf, stmt| {
                let c: &mut BodyEchoLocConf = downcast_mut(conf);
                if c.set {
                    return Err(sluice_core::conf::directive::duplicate(stmt).into());
                }
                c.set = true;
                cx.set_content_handler(Arc::new(BodyEchoHandler))
            }),
        )]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(BodyEchoLocConf::default())
    }

    fn merge_loc_conf(&self, _parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        // The handler is the location's own (not inherited), as nginx's
        // content handlers are; the conf only guards against duplicates.
        let _: &BodyEchoLocConf = downcast(child);
        Ok(())
    }
}
