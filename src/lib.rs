//! sluice: the module bundle and `run()`.

pub mod cli;
