//! sluice-http: the HTTP server — request parsing, the module trait, conf
//! create/merge, server and location selection, the phase engine, the filter
//! chains, the request body reader, keep-alive and pipelining, variables,
//! and the protocol-level filters (header writer, chunked, write).
//!
//! Public interface: [`module`] (what a module implements), [`request`]
//! (what handlers and filters work on), [`config`] (registration),
//! [`variables`], [`phase`] (finalize, internal redirects), [`master`]
//! (running a server).
#![forbid(unsafe_code)]

pub mod body;
pub mod chunked_decode;
pub mod config;
pub mod connection;
pub mod core_module;
pub mod core_variables;
pub mod cycle;
pub mod filters;
pub mod head_buf;
mod header_lists;
pub mod listen;
pub mod location;
pub mod master;
pub mod module;
pub mod parse;
pub mod phase;
pub mod read_buf;
pub mod regex_compat;
pub mod request;
pub mod server_name;
pub mod special;
pub mod task_io;
pub mod variables;
pub mod worker;

pub use config::{HttpConfCx, Modules, PostConf, PreConf};
pub use module::{
    AnyConf, BodyFilter, ConfKey, FilterError, FilterResult, FilterStatus, Flow, Gated, HeaderFilter, HttpModule,
    ModuleIndex, NextBody, NextHeader, Phase, PhaseHandler, Resume, Task,
};
pub use request::Request;

/// Logs a line about a request, to the error log of its location:
/// `req_log!(r, Level::Error, "open() \"{}\" failed", path)`.
#[macro_export]
macro_rules! req_log {
    ($r:expr, $lvl:expr, $($arg:tt)*) => {{
        $r.log($lvl, ::core::format_args!($($arg)*))
    }};
}
