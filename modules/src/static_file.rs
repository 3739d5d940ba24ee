//! The static module: files from `root` / `alias`.
//!
//! ```text
//! location /images/ { root /data; }          # /images/a.png → /data/images/a.png
//! location /i/      { alias /data/w3/; }     # /i/a.png      → /data/w3/a.png
//! ```
//!
//! A content-phase handler, the last one tried (after `index`). GET and HEAD
//! of a regular file answer 200 with the file as one file buffer (sent with
//! `sendfile` when `sendfile on`, never copied through memory otherwise
//! than by the writer), `Content-Type` from `types` (else `default_type`),
//! `Last-Modified`, and `ETag` in nginx's form (`"<mtime hex>-<size hex>"`,
//! `etag on`). A directory requested without its trailing slash is a 301 to
//! the slashed URI. A missing file is a 404 (logged as nginx does unless
//! `log_not_found off`), a forbidden one 403, other errors 500. Methods
//! other than GET, HEAD and POST are a 405; POST of an existing file too.
//! Per-request state: none.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use sluice_core::log::Level;
use sluice_core::{Buf, Chain};
use sluice_http::parse::Method;
use sluice_http::{ConfKey, Flow, HttpModule, ModuleIndex, Phase, PostConf, Request};

/// The module's key (it has no conf of its own).
pub static KEY: ConfKey<(), (), ()> = ConfKey::new();

/// The static module.
#[derive(Debug)]
pub struct StaticModule;

/// Logs an `open()` failure the way nginx words it; returns the status.
pub fn open_error_status(r: &Request, path: &std::path::Path, e: &std::io::Error) -> u16 {
    let (status, level) = match e.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::InvalidFilename => (404, Level::Error),
        ErrorKind::PermissionDenied => (403, Level::Error),
        _ => (500, Level::Crit),
    };
    if status != 404 || r.core_loc().log_not_found.unwrap_or(true) {
        sluice_http::req_log!(
            r,
            level,
            "open() \"{}\" failed ({}), client: {}, server: {}, request: \"{}\"",
            path.display(),
            sluice_core::log::os_error(e),
            r.conn.peer.ip(),
            r.server.name,
            String::from_utf8_lossy(r.head.request_line())
        );
    }
    status
}

/// nginx's form, `"mtime-size"` in lowercase hex; written digit by digit
/// on the stack and copied once into the worker's arena (it is made for
/// every response).
fn etag(mtime: i64, size: u64) -> Bytes {
    fn put_hex(out: &mut [u8; 36], len: &mut usize, n: u64) {
        let digits = (64 - n.leading_zeros()).div_ceil(4).max(1);
        for i in (0..digits).rev() {
            out[*len] = b"0123456789abcdef"[((n >> (i * 4)) & 0xf) as usize];
            *len += 1;
        }
    }
    // Two quotes, a dash and at most 16 digits each: 35 bytes.
    let mut out = [0u8; 36];
    out[0] = b'"';
    let mut len = 1;
    // A negative mtime as `{:x}` prints an i64: its two's complement bits.
    put_hex(&mut out, &mut len, mtime as u64);
    out[len] = b'-';
    len += 1;
    put_hex(&mut out, &mut len, size);
    out[len] = b'"';
    sluice_http::head_buf::copy(&out[..=len])
}

fn redirect_to_dir(r: &mut Request) -> Flow {
    // The URI is decoded: escaped again to stand in a header (nginx's
    // NGX_ESCAPE_URI), `/dir%20sp` -> `/dir%20sp/`.
    let mut loc = BytesMut::with_capacity(r.uri.len() + r.args.len() + 2);
    sluice_http::parse::escape_uri(&mut loc, &r.uri);
    loc.put_u8(b'/');
    if !r.args.is_empty() {
        loc.put_u8(b'?');
        loc.put_slice(&r.args);
    }
    r.headers_out.location = Some(loc.freeze());
    Flow::Status(301)
}

fn handle(r: &mut Request) -> Flow {
    if !matches!(r.method(), Method::Get | Method::Head | Method::Post) {
        return Flow::Status(405);
    }
    if r.uri.last() == Some(&b'/') {
        return Flow::Declined;
    }
    let path = r.map_uri_to_path(&r.uri);
    let file = match sluice_core::io::open_for_reading(&path) {
        Ok(f) => f,
        Err(e) => return Flow::Status(open_error_status(r, &path, &e)),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Flow::Status(open_error_status(r, &path, &e)),
    };
    if meta.is_dir() {
        if let Err(status) = r.discard_body() {
            return Flow::Status(status);
        }
        return redirect_to_dir(r);
    }
    if !meta.is_file() {
        sluice_http::req_log!(r, Level::Crit, "\"{}\" is not a regular file", path.display());
        return Flow::Status(404);
    }
    if r.method() == Method::Post {
        return Flow::Status(405);
    }
    if let Err(status) = r.discard_body() {
        return Flow::Status(status);
    }
    let size = meta.len();
    let mtime = meta.mtime();
    r.headers_out.status = 200;
    r.headers_out.content_length = Some(size);
    r.headers_out.content_type = Some(r.content_type_for_uri());
    r.headers_out.last_modified = Some(UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64));
    if r.core_loc().etag.unwrap_or(true) {
        r.headers_out.add(Bytes::from_static(b"ETag"), etag(mtime, size));
    }
    crate::range::allow(r);
    if r.send_header().is_err() {
        return Flow::Status(500);
    }
    let mut chain = Chain::new();
    if size > 0 && !r.header_only {
        chain.push(Buf::file(Arc::new(file), 0, size));
    }
    chain.push(Buf::last());
    match r.output(chain) {
        Ok(_) => Flow::Done,
        Err(e) => {
            sluice_http::req_log!(r, Level::Info, "{}", e.0);
            Flow::Done
        }
    }
}

impl HttpModule for StaticModule {
    fn name(&self) -> &'static str {
        "static"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.add_phase_handler(Phase::Content, Arc::new(handle));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        assert_eq!(&etag(0x5f3e1a00, 26)[..], b"\"5f3e1a00-1a\"");
        for (mtime, size) in [(0, 0), (1, 15), (-1, 16), (i64::MAX, u64::MAX), (i64::MIN, 1 << 40)] {
            assert_eq!(etag(mtime, size), format!("\"{mtime:x}-{size:x}\""), "{mtime} {size}");
        }
    }
}
