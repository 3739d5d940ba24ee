//! placeholder: event (being written)
