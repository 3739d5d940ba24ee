//! sluice-http: the HTTP server.
#![forbid(unsafe_code)]
