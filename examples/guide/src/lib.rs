//! The crate that `docs/writing-modules.md` builds, step by step: two
//! sluice modules written outside sluice's tree, and a server binary
//! (`sluice-guide`) that runs sluice with them.
//!
//! * [`quote`] — a header filter and a body filter: `quote on;` prefixes
//!   every line of a `text/plain` response with `quote_prefix` (`"> "` by
//!   default), as a mail client quotes a message. Lines may be split across
//!   buffers; the filter keeps one bit of state between calls.
//! * [`status`] — a content handler: `sluice_status;` makes a location
//!   answer with a small JSON document (pid, connections accepted, requests
//!   started), counted by a post_read phase handler.
//!
//! Every `rust` block of the guide is a verbatim excerpt of these files;
//! `tests/guide.rs` checks that it still is.
#![forbid(unsafe_code)]

pub mod quote;
pub mod status;

use std::sync::Arc;

use sluice_http::HttpModule;

/// This crate's modules, in the order a server binary appends them.
pub fn modules() -> Vec<Arc<dyn HttpModule>> {
    vec![Arc::new(quote::QuoteModule), Arc::new(status::StatusModule)]
}

/// sluice's module bundle followed by this crate's: the list `sluice-guide`
/// runs with. Appended last, `quote` pushes its filters last, so they sit
/// on top of the chain and run before every filter of sluice's own.
pub fn server_modules() -> Vec<Arc<dyn HttpModule>> {
    let mut list = sluice::modules();
    list.extend(modules());
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_come_last_and_no_name_is_taken_twice() {
        let names: Vec<&str> = server_modules().iter().map(|m| m.name()).collect();
        let own = sluice::modules().len();
        assert_eq!(&names[own..], ["quote", "status"]);
        assert!(sluice_http::Modules::new(server_modules()).is_ok());
    }
}
