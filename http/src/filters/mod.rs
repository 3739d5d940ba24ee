//! The protocol-level filters at the bottom of the chains, and the order in
//! which the core registers them.
//!
//! Registration is LIFO: the core module's `postconfiguration` runs first,
//! so what it pushes sits at the bottom and runs last. It pushes, in order:
//! the header writer and the write filter (the very bottom of each chain),
//! then the chunked filter above them. Every module listed after the core in
//! `src/lib.rs` pushes its filters above these.

pub mod chunked;
pub mod header_writer;
pub mod write;

use std::sync::Arc;

use crate::config::PostConf;

/// Pushes the protocol filters (called by the core module).
pub(crate) fn register(cf: &mut PostConf) {
    cf.push_header_filter(Arc::new(header_writer::HeaderWriter));
    cf.push_body_filter(Arc::new(write::WriteFilter));
    cf.push_header_filter(Arc::new(chunked::ChunkedFilter));
    cf.push_body_filter(Arc::new(chunked::ChunkedFilter));
}
