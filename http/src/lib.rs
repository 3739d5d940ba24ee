//! sluice-http: the HTTP server.
#![forbid(unsafe_code)]

pub mod chunked_decode;
pub mod parse;
