//! placeholder: net (being written)
