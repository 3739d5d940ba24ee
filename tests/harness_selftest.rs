//! Runs the end-to-end harness's own unit tests (its response parser) and
//! checks that the harness compiles. Starts no server.

mod common;
