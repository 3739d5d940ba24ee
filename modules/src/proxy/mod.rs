//! The proxy module: `proxy_pass` and its companions (nginx's
//! `ngx_http_proxy_module`).
//!
//! ```text
//! upstream app { server 127.0.0.1:8081; keepalive 16; }
//! location /api/ {
//!     proxy_pass http://app/v1/;
//!     proxy_http_version 1.1;
//!     proxy_set_header Connection "";
//!     proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
//! }
//! ```
//!
//! `proxy_pass` makes the proxy the location's content handler. A request
//! becomes a [`task::ProxyTask`]: an explicit state machine (connect → send
//! the request → read the head → stream the body) that registers the
//! upstream socket with the worker's poll and is resumed by its events, by
//! the client's socket draining, and by its timer. Nothing blocks; no
//! runtime. The request body is read first (`proxy_request_buffering on`)
//! or streamed as it arrives (`off`).
//!
//! Bounded memory: the proxy reads from the upstream only while what it
//! holds (read but not yet accepted by the client connection) is under
//! `proxy_buffers` (buffering on; beyond that it spills to a temp file up
//! to `proxy_max_temp_file_size`) or `proxy_buffer_size` (buffering off).
//! Past that it stops reading, and TCP pushes back on the upstream.

mod body_stream;
mod build;
mod conf;
mod cookie;
mod head;
mod pool;
mod pump;
mod redirect;
mod response;
mod spill;
pub mod stream;
mod task;
mod tunnel;
pub mod url;
mod vars;

use std::sync::Arc;

use sluice_http::{Flow, PhaseHandler, Request};

pub use conf::{ProxyLocConf, ProxyModule, KEY};
pub use pool::idle_count;

/// The content handler `proxy_pass` installs.
#[derive(Debug)]
pub(crate) struct ProxyHandler;

impl PhaseHandler for ProxyHandler {
    fn handle(&self, r: &mut Request) -> Flow {
        task::start(r)
    }
}

pub(crate) fn handler() -> Arc<dyn PhaseHandler> {
    Arc::new(ProxyHandler)
}
