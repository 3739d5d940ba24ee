//! placeholder: time (being written)
