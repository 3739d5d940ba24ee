//! sluice-modules: one file per module. Each file reads like an nginx
//! module: its conf structs, its directive table, its handlers or filters,
//! create/merge, tests.
#![forbid(unsafe_code)]

pub mod access;
pub mod auth_basic;
pub mod autoindex;
pub mod charset;
pub mod gunzip;
pub mod gzip;
pub mod gzip_static;
pub mod headers;
pub mod index;
pub mod log;
pub mod map;
pub mod not_modified;
pub mod proxy;
pub mod range;
pub mod rewrite;
pub mod static_file;
pub mod sub_filter;
pub mod try_files;
pub mod upstream;
pub mod zpump;
