//! An out-of-tree sluice module crate: what a user writes to ship their own
//! modules without forking sluice.
//!
//! The modules here:
//!
//! * [`tag_filters`] — three body filters, A, B and C, pushed in that order
//!   by one module's postconfiguration. Each prepends its marker (`[A]`,
//!   `[B]`, `[C]`) to every chain of payload it passes on, so the bytes on
//!   the wire show the order the filters ran in (`tag_filters on|off`).
//! * [`stream_demo`] — a content handler (`stream_demo N SIZE;`) that sends
//!   N chunks of SIZE bytes, one `output()` call each, and waits for the
//!   socket when the filters answer Again.
//! * [`body_echo`] — a content handler (`body_echo;`) that reads the request
//!   body with sluice's body reader and sends it back (from memory, or from
//!   the temp file it spilled to).
//! * [`panic_demo`] — a content handler (`panic_demo;`) with a bug: it
//!   panics, and sluice replaces the worker that ran it.
//!
//! [`modules()`] is this crate's module list; `src/main.rs` appends it to
//! `sluice::modules()` and calls `sluice::run_with`. Modules listed later
//! push their filters later, so ours sit above sluice's own filters and run
//! first.
#![forbid(unsafe_code)]

pub mod body_echo;
pub mod panic_demo;
pub mod stream_demo;
pub mod tag_filters;

use std::sync::Arc;

use sluice_http::HttpModule;

/// This crate's modules, in the order a server binary should append them.
pub fn modules() -> Vec<Arc<dyn HttpModule>> {
    vec![
        Arc::new(tag_filters::TagFiltersModule),
        Arc::new(stream_demo::StreamDemoModule),
        Arc::new(body_echo::BodyEchoModule),
        Arc::new(panic_demo::PanicDemoModule),
    ]
}

/// sluice's module bundle followed by this crate's modules: the list the
/// `sluice-filter-order` binary runs with.
pub fn server_modules() -> Vec<Arc<dyn HttpModule>> {
    let mut list = sluice::modules();
    list.extend(modules());
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_come_after_sluices_own() {
        let names: Vec<&str> = server_modules().iter().map(|m| m.name()).collect();
        let own = sluice::modules().len();
        assert_eq!(&names[own..], ["tag_filters", "stream_demo", "body_echo", "panic_demo"]);
        assert!(sluice_http::Modules::new(server_modules()).is_ok(), "no name is listed twice");
    }
}
