//! sluice: the module bundle and `run()`.
