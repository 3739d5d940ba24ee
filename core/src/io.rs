//! placeholder: io (being written)
