//! placeholder: process (being written)
