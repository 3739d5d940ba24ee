//! sluice-modules: one file per module.
#![forbid(unsafe_code)]
