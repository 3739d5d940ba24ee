//! sluice: the module bundle and `run()`.
//!
//! [`modules()`] is the ordered list of compiled-in HTTP modules — the job
//! of nginx's generated `ngx_modules.c`. The http core module is always
//! first (sluice-http inserts it). The order decides two things.
//!
//! **Filter order.** Filters are pushed LIFO in each module's
//! postconfiguration, so a module listed later runs its filters earlier.
//! The core pushes the protocol filters first (header writer and write
//! filter at the very bottom, chunked above them). Then, following nginx's
//! `auto/modules`, the header filters run
//! not_modified → headers → gunzip → charset → gzip → range → chunked →
//! header writer, and the body filters
//! range_body → gunzip → charset → gzip → chunked → write:
//!
//! * `not_modified` is listed last so it runs first: it judges the
//!   handler's own `Last-Modified` / `ETag`, before `add_header` changes
//!   anything;
//! * `headers` runs before the chunked filter decides the framing (it must
//!   see `add_trailer`'s trailers) and before the head is serialized;
//! * `range` (the header filter) sits below `charset` and `headers`, so
//!   multipart part heads carry the final `Content-Type`; `range_body` is a
//!   module of its own, listed after `headers`, so the body is sliced
//!   before `charset` recodes it (only the requested bytes are recoded);
//! * `sub` (sub_filter) is listed right after `charset`, so it runs just
//!   before it, as in nginx: the strings are searched in the body as the
//!   handler produced it, before `charset` recodes it, before `gzip`
//!   (listed before `charset`) compresses it and before `chunked` frames
//!   it; its header filter drops `Content-Length` before `chunked` chooses
//!   the framing;
//! * `gzip` is listed right after `range`, so it runs just above it: it
//!   compresses what every other filter made (charset's recoding
//!   included), and it drops `Accept-Ranges` before `range` would offer
//!   ranges of a body whose length it changes; it sits above `chunked`, so
//!   a compressed body (no Content-Length) goes out chunked;
//! * `gunzip` is listed just before `headers` (after `charset`): it
//!   inflates a gzipped body first, so the filters below it (charset,
//!   and later sub_filter) see plain text, and `gzip` below it leaves the
//!   response alone for a client that does not accept gzip anyway.
//!
//! **Phase handler order.** Handlers run in list order within their
//! phase (nginx registers them the other way round and runs its phase
//! arrays last-registered first; the result is the same):
//!
//! * content: `index`, then `autoindex`, then `gzip_static`, then
//!   `static` — a directory URI is the index's when an index file exists,
//!   else autoindex lists it when enabled; a file URI falls through to
//!   gzip_static, which answers with `file.gz` when it may, else to static;
//! * precontent: `try_files`;
//! * server_rewrite and rewrite: `rewrite` (`map` only adds variables,
//!   evaluated when used, so its place is free);
//! * access: `access` (allow/deny) before `auth_basic`, so that with
//!   `satisfy any` an allowed address skips the password check;
//! * log: `log`.

pub mod cli;

use std::sync::Arc;

use sluice_http::HttpModule;

/// The compiled-in modules, in order (see the module doc for why).
pub fn modules() -> Vec<Arc<dyn HttpModule>> {
    vec![
        Arc::new(sluice_modules::upstream::UpstreamModule),
        Arc::new(sluice_modules::proxy::ProxyModule),
        Arc::new(sluice_modules::index::IndexModule),
        Arc::new(sluice_modules::autoindex::AutoindexModule),
        Arc::new(sluice_modules::gzip_static::GzipStaticModule),
        Arc::new(sluice_modules::static_file::StaticModule),
        Arc::new(sluice_modules::try_files::TryFilesModule),
        Arc::new(sluice_modules::log::LogModule),
        Arc::new(sluice_modules::map::MapModule),
        Arc::new(sluice_modules::rewrite::RewriteModule),
        Arc::new(sluice_modules::range::RangeModule),
        Arc::new(sluice_modules::gzip::GzipModule),
        Arc::new(sluice_modules::charset::CharsetModule),
        Arc::new(sluice_modules::sub_filter::SubFilterModule),
        Arc::new(sluice_modules::access::AccessModule),
        Arc::new(sluice_modules::auth_basic::AuthBasicModule),
        Arc::new(sluice_modules::gunzip::GunzipModule),
        Arc::new(sluice_modules::headers::HeadersModule),
        Arc::new(sluice_modules::range::RangeBodyModule),
        Arc::new(sluice_modules::not_modified::NotModifiedModule),
    ]
}

/// The shipped configuration, `conf/sluice.conf`.
const SHIPPED_CONF: &str = include_str!("../conf/sluice.conf");
/// The shipped `conf/mime.types`.
const SHIPPED_MIME_TYPES: &str = include_str!("../conf/mime.types");

/// The built-in default configuration, used when `conf/sluice.conf` is not
/// found under the prefix: the shipped file with its `include mime.types;`
/// replaced by the shipped types, so that it needs no file on disk.
pub fn default_conf() -> String {
    SHIPPED_CONF
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words == ["include", "mime.types;"] {
                SHIPPED_MIME_TYPES
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs the command line with a module list; returns the exit code. A
/// custom server binary calls this with its own list (sluice's plus its own
/// modules).
pub fn run_with(args: Vec<std::ffi::OsString>, modules: Vec<Arc<dyn HttpModule>>) -> i32 {
    let cli = match cli::parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice: {e}");
            return 1;
        }
    };
    let modules = match sluice_http::Modules::new(modules) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("sluice: [emerg] {e}");
            return 1;
        }
    };
    let names: Vec<&str> = modules.list().iter().map(|m| m.name()).collect();
    if cli.shows_info() {
        eprint!("{}", cli.info_text(&names));
        if !cli.test {
            return 0;
        }
    }
    let prefix = cli.prefix.clone().unwrap_or_else(|| std::path::PathBuf::from("./"));
    let conf_path = match &cli.conf {
        Some(c) if c.is_absolute() => c.clone(),
        Some(c) => prefix.join(c),
        None => prefix.join("conf/sluice.conf"),
    };
    let error_log = cli.error_log.as_ref().map(|e| {
        if cli.error_log_is_stderr() {
            sluice_core::log::Target::Stderr
        } else if e.is_absolute() {
            sluice_core::log::Target::File(e.clone())
        } else {
            sluice_core::log::Target::File(prefix.join(e))
        }
    });
    let opts = sluice_http::master::StartOpts {
        conf_path: conf_path.clone(),
        prefix: prefix.clone(),
        globals: cli.globals.clone(),
        error_log,
        embedded: if cli.conf.is_none() { Some(default_conf()) } else { None },
    };
    if let Some(sig) = cli.signal {
        let pid_path = match sluice_http::master::load(&modules, &opts) {
            Ok(c) => c.pid_path(),
            Err(e) => {
                eprintln!("sluice: [emerg] {e}");
                return 1;
            }
        };
        return match sluice_core::process::send_signal(&pid_path, sig.name()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("sluice: [error] {e}");
                1
            }
        };
    }
    if cli.test {
        return match sluice_http::master::load(&modules, &opts) {
            Ok(c) => {
                if !cli.quiet {
                    eprintln!("sluice: the configuration file {} syntax is ok", conf_path.display());
                    eprintln!("sluice: configuration file {} test is successful", conf_path.display());
                }
                if cli.test_dump {
                    for (path, text) in &c.files {
                        println!("# configuration file {}:", path.display());
                        println!("{text}");
                    }
                }
                0
            }
            Err(e) => {
                eprintln!("sluice: [emerg] {e}");
                eprintln!("sluice: configuration file {} test failed", conf_path.display());
                1
            }
        };
    }
    sluice_http::master::run(modules, opts)
}
