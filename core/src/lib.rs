//! sluice-core: what every part of sluice stands on.
//!
//! * [`buf`]: `Buf` and `Chain`, the currency of content handlers and filters;
//! * [`io`]: sending a chain with one `writev`, or `sendfile` for file regions;
//! * [`conf`]: nginx's configuration syntax and the directive tables;
//! * [`event`]: worker event loops — tokens, timers;
//! * [`net`]: listening sockets (SO_REUSEPORT, backlog);
//! * [`log`]: the error log, nginx's levels and line format;
//! * [`time`]: cached dates for logs and HTTP headers;
//! * [`process`]: pid file, daemonizing, signals;
//! * [`reuse`]: values and allocations a worker keeps for reuse.
//!
//! Unsafe code lives here only, each block with a `// SAFETY:` line.
#![warn(missing_docs, missing_debug_implementations)]

pub mod buf;
pub mod conf;
pub mod event;
pub mod io;
pub mod log;
pub mod net;
pub mod process;
pub mod reuse;
pub mod time;

pub use buf::{Buf, Chain, FileRegion, Payload};
