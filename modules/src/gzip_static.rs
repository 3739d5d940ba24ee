//! The gzip_static module: serves a precompressed `file.gz` in place of
//! `file`, as nginx's `ngx_http_gzip_static_module`.
//!
//! ```text
//! location /assets/ {
//!     gzip_static on;       # off (default) | on | always
//!     gzip_vary on;         # Vary: Accept-Encoding on the answers
//! }
//! location /storage/ { gzip_static always; gunzip on; }   # only .gz on disk
//! ```
//!
//! A content-phase handler, tried after `index` and `autoindex` and before
//! `static` (nginx's module order). For GET and HEAD of a URI not ending in
//! `/`, with `gzip_static on` and a request that accepts gzip (see
//! [`crate::gzip::gzip_ok`]) — or `always`, for every request —, it opens
//! the mapped path plus `.gz`. When that is a regular file the answer is
//! 200 with the `.gz` as one file buffer (ranges allowed),
//! `Content-Encoding: gzip`, the `Content-Type` of the original name, and
//! the `.gz`'s `Content-Length`, `Last-Modified` and `ETag`. Otherwise it
//! declines and `static` serves the original. With `on`, finding the `.gz`
//! adds `Vary: Accept-Encoding` under `gzip_vary on`, whether or not this
//! client gets it. `always` with `gunzip on` serves every client: gunzip
//! inflates for those without gzip. Per-request state: none.

use std::any::Any;
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use sluice_core::conf::directive::{enumeration, Args, Contexts as C, Directive, Level};
use sluice_core::log::Level as LogLevel;
use sluice_core::{Buf, Chain};
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::parse::Method;
use sluice_http::{AnyConf, ConfKey, Flow, HttpConfCx, HttpModule, ModuleIndex, Phase, PostConf, Request};

/// `gzip_static`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Never (the default).
    Off,
    /// When the client accepts gzip.
    On,
    /// For every client.
    Always,
}

/// Location conf.
#[derive(Debug, Default)]
pub struct GzipStaticLocConf {
    mode: Option<Mode>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), GzipStaticLocConf> = ConfKey::new();

/// The gzip_static module.
#[derive(Debug)]
pub struct GzipStaticModule;

/// Once the `.gz` was found: serve it?, and add `Vary: Accept-Encoding`?
/// `ok`: the client accepts gzip; `vary`: `gzip_vary on`. As nginx, only
/// `on` varies (`always` answers every client alike).
fn plan(mode: Mode, ok: bool, vary: bool) -> (bool, bool) {
    match mode {
        Mode::Off => (false, false),
        Mode::On => (ok, vary),
        Mode::Always => (true, false),
    }
}

/// `gzip_static off` (the default) leaves every request to the others.
fn gzip_static_on(loc: &sluice_http::location::Location) -> bool {
    loc.conf(&KEY).mode.is_some_and(|m| m != Mode::Off)
}

/// The content handler.
fn handle(r: &mut Request) -> Flow {
    if !matches!(r.method(), Method::Get | Method::Head) || r.uri.last() == Some(&b'/') {
        return Flow::Declined;
    }
    let mode = r.loc_conf(&KEY).mode.unwrap_or(Mode::Off);
    if mode == Mode::Off {
        return Flow::Declined;
    }
    let ok = mode == Mode::Always || crate::gzip::gzip_ok(r);
    let vary = r.loc_conf(&crate::gzip::KEY).vary();
    if !ok && !vary {
        return Flow::Declined;
    }
    let mut path = r.map_uri_to_path(&r.uri).into_os_string();
    path.push(".gz");
    let path = std::path::PathBuf::from(path);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            if !matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::InvalidFilename)
                && path.as_os_str().as_bytes().len() < 4096
            {
                let level = if e.kind() == ErrorKind::PermissionDenied { LogLevel::Error } else { LogLevel::Crit };
                sluice_http::req_log!(
                    r,
                    level,
                    "open() \"{}\" failed ({})",
                    path.display(),
                    sluice_core::log::os_error(&e)
                );
            }
            return Flow::Declined;
        }
    };
    let (serve, add_vary) = plan(mode, ok, vary);
    if add_vary {
        crate::gzip::add_vary(r);
    }
    if !serve {
        return Flow::Declined;
    }
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(_) => return Flow::Status(500),
    };
    if meta.is_dir() {
        return Flow::Declined;
    }
    if !meta.is_file() {
        sluice_http::req_log!(r, LogLevel::Crit, "\"{}\" is not a regular file", path.display());
        return Flow::Status(404);
    }
    if let Err(status) = r.discard_body() {
        return Flow::Status(status);
    }
    send(r, file, &meta)
}

/// Sends the `.gz` as the response.
fn send(r: &mut Request, file: File, meta: &std::fs::Metadata) -> Flow {
    let (size, mtime) = (meta.len(), meta.mtime());
    r.headers_out.status = 200;
    r.headers_out.content_length = Some(size);
    r.headers_out.content_type = Some(r.content_type_for_uri());
    r.headers_out.last_modified = Some(UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64));
    if r.core_loc().etag.unwrap_or(true) {
        r.headers_out.add(Bytes::from_static(b"ETag"), Bytes::from(format!("\"{mtime:x}-{size:x}\"")));
    }
    r.headers_out.add(Bytes::from_static(b"Content-Encoding"), Bytes::from_static(b"gzip"));
    crate::range::allow(r);
    if r.send_header().is_err() {
        return Flow::Status(500);
    }
    let mut chain = Chain::new();
    if size > 0 && !r.header_only {
        chain.push(Buf::file(Arc::new(file), 0, size));
    }
    chain.push(Buf::last());
    if let Err(e) = r.output(chain) {
        sluice_http::req_log!(r, LogLevel::Info, "{}", e.0);
    }
    Flow::Done
}

impl HttpModule for GzipStaticModule {
    fn name(&self) -> &'static str {
        "gzip_static"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        const MODES: &[(&str, Mode)] = &[("off", Mode::Off), ("on", Mode::On), ("always", Mode::Always)];
        vec![Directive::new(
            "gzip_static",
            C::HTTP_ANY,
            Args::TAKE1,
            Level::Loc,
            enumeration(MODES, |c: &mut GzipStaticLocConf| &mut c.mode),
        )]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(GzipStaticLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn Any, child: &mut dyn Any) -> Result<(), String> {
        let p: &GzipStaticLocConf = downcast(parent);
        let c: &mut GzipStaticLocConf = downcast_mut(child);
        c.mode = c.mode.or(p.mode);
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.add_phase_handler(
            Phase::Content,
            Arc::new(sluice_http::Gated { handler: handle, wanted_in: gzip_static_on }),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_gets_the_gz_and_who_gets_vary() {
        // (mode, client accepts gzip, gzip_vary) → (serve .gz, Vary)
        assert_eq!(plan(Mode::Off, true, true), (false, false));
        assert_eq!(plan(Mode::On, true, false), (true, false));
        assert_eq!(plan(Mode::On, true, true), (true, true));
        // A client without gzip gets the original, still with Vary.
        assert_eq!(plan(Mode::On, false, true), (false, true));
        assert_eq!(plan(Mode::Always, false, false), (true, false));
        assert_eq!(plan(Mode::Always, false, true), (true, false));
    }
}
