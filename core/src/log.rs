//! placeholder: log (being written)
