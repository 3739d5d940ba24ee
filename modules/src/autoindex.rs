//! The autoindex module: directory listings, as nginx's
//! `ngx_http_autoindex_module`.
//!
//! ```text
//! location /pub/ {
//!     autoindex on;
//!     autoindex_format html;      # html | json | jsonp | xml
//!     autoindex_exact_size off;   # html: sizes rounded to K, M, G
//!     autoindex_localtime on;     # html: dates in local time
//! }
//! ```
//!
//! A content-phase handler between `index` and `static`: a GET or HEAD of a
//! URI ending in `/` that `index` did not serve is answered with a listing
//! of the directory the URI maps to (`root` / `alias`). Names starting with
//! `.` are hidden. Entries are sorted directories first, then by the bytes
//! of their names. Symbolic links are described by their targets (a link to
//! a directory is a directory); a dangling link by the link itself.
//!
//! The layouts are nginx's, byte for byte:
//! - html: a `<pre>` of `<a href>` lines; names are cut to 50 characters
//!   (47 and `..>`), padded to 50, followed by the date
//!   (`dd-Mon-yyyy hh:mm`) and the size. Characters are counted as UTF-8
//!   only when the response's charset is `utf-8` (set by a charset module);
//!   otherwise as bytes.
//! - json: an array of `{ "name", "type", "mtime", "size" }` objects
//!   (`size` for regular files only), `application/json`.
//! - jsonp: the same wrapped in the `callback` argument's function call,
//!   `application/javascript`; no (or an empty) `callback` is plain json; a
//!   callback longer than 128 bytes or with characters other than letters,
//!   digits, `_` and `.` is a 400.
//! - xml: `<list>` of `<directory>`, `<file>` or `<other>` elements with
//!   `mtime` (and `size`) attributes, `text/xml; charset=utf-8`.
//!
//! The response has no `Content-Length` (as nginx's). Per-request state:
//! none. Unlike nginx, the directory is read before the head is sent, so a
//! failure while reading it is a clean 500 rather than a cut response.

use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use chrono::{DateTime, Datelike, Offset, Timelike};
use sluice_core::conf::directive::{self, Args, Contexts as C, Directive, Level};
use sluice_core::log::Level as LogLevel;
use sluice_core::{log_error, Buf, Chain};
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::parse::Method;
use sluice_http::{AnyConf, ConfKey, Flow, HttpConfCx, HttpModule, ModuleIndex, Phase, PostConf, Request};

/// `autoindex_format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An HTML page (the default).
    Html,
    /// A JSON array.
    Json,
    /// A JSON array wrapped in a call of the `callback` argument.
    Jsonp,
    /// An XML document.
    Xml,
}

/// Location conf.
#[derive(Default, Debug)]
pub struct AutoindexLocConf {
    /// `autoindex` (off).
    pub enable: Option<bool>,
    /// `autoindex_format` (html).
    pub format: Option<Format>,
    /// `autoindex_localtime` (off).
    pub localtime: Option<bool>,
    /// `autoindex_exact_size` (on).
    pub exact_size: Option<bool>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), AutoindexLocConf> = ConfKey::new();

/// The autoindex module.
#[derive(Debug)]
pub struct AutoindexModule;

static FORMATS: &[(&str, Format)] =
    &[("html", Format::Html), ("json", Format::Json), ("jsonp", Format::Jsonp), ("xml", Format::Xml)];

/// Width of the name column of the html listing, in characters.
const NAME_LEN: usize = 50;
/// Longest `callback` argument accepted for jsonp.
const MAX_CALLBACK_LEN: usize = 128;

// One row per directive, as nginx's command table.
#[rustfmt::skip]
fn directives() -> Vec<Directive<HttpConfCx>> {
    use Level::Loc;
    vec![
        Directive::new("autoindex", C::HTTP_ANY, Args::FLAG, Loc, directive::flag(|c: &mut AutoindexLocConf| &mut c.enable)),
        Directive::new("autoindex_format", C::HTTP_ANY, Args::TAKE1, Loc, directive::enumeration(FORMATS, |c: &mut AutoindexLocConf| &mut c.format)),
        Directive::new("autoindex_localtime", C::HTTP_ANY, Args::FLAG, Loc, directive::flag(|c: &mut AutoindexLocConf| &mut c.localtime)),
        Directive::new("autoindex_exact_size", C::HTTP_ANY, Args::FLAG, Loc, directive::flag(|c: &mut AutoindexLocConf| &mut c.exact_size)),
    ]
}

/// One directory entry as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    name: Vec<u8>,
    dir: bool,
    file: bool,
    mtime: i64,
    size: u64,
}

/// `autoindex off` (the default) leaves every request to the others.
fn autoindex_on(loc: &sluice_http::location::Location) -> bool {
    loc.conf(&KEY).enable == Some(true)
}

fn handle(r: &mut Request) -> Flow {
    if r.uri.last() != Some(&b'/') || !matches!(r.method(), Method::Get | Method::Head) {
        return Flow::Declined;
    }
    let conf = r.loc_conf(&KEY);
    if conf.enable != Some(true) {
        return Flow::Declined;
    }
    let (mut format, localtime, exact) =
        (conf.format.unwrap_or(Format::Html), conf.localtime == Some(true), conf.exact_size != Some(false));
    if let Err(status) = r.discard_body() {
        return Flow::Status(status);
    }
    let mut callback = Bytes::new();
    if format == Format::Jsonp {
        match jsonp_callback(r) {
            Ok(cb) if cb.is_empty() => format = Format::Json,
            Ok(cb) => callback = cb,
            Err(()) => return Flow::Status(400),
        }
    }
    let path = dir_path(r);
    let entries = match read_entries(r, &path) {
        Ok(e) => e,
        Err(status) => return Flow::Status(status),
    };
    r.headers_out.status = 200;
    r.headers_out.content_type = Some(Bytes::from_static(match format {
        Format::Html => b"text/html",
        Format::Json => b"application/json",
        Format::Jsonp => b"application/javascript",
        Format::Xml => b"text/xml; charset=utf-8",
    }));
    if r.send_header().is_err() {
        return Flow::Done;
    }
    let mut chain = Chain::new();
    if !r.header_only {
        let body = match format {
            Format::Html => {
                let utf8 = charset_is_utf8(r);
                let gmtoff = if localtime { local_gmtoff() } else { 0 };
                html(&r.uri, &entries, utf8, exact, gmtoff)
            }
            Format::Json => json(&entries, None),
            Format::Jsonp => json(&entries, Some(&callback)),
            Format::Xml => xml(&entries),
        };
        chain.push(Buf::mem(body));
    }
    chain.push(Buf::last());
    if let Err(e) = r.output(chain) {
        log_error!(LogLevel::Info, r.log_id(), "{}", e.0);
    }
    Flow::Done
}

/// The directory's path: the URI's mapped path without its trailing slash.
fn dir_path(r: &Request) -> PathBuf {
    let path = r.map_uri_to_path(&r.uri);
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() > 1 && bytes.ends_with(b"/") {
        PathBuf::from(std::ffi::OsStr::from_bytes(&bytes[..bytes.len() - 1]))
    } else {
        path
    }
}

/// The response's charset is utf-8 (a charset filter added it).
fn charset_is_utf8(r: &Request) -> bool {
    let Some(ct) = &r.headers_out.content_type else { return false };
    let ct = String::from_utf8_lossy(ct).to_ascii_lowercase();
    ct.split(';').any(|p| matches!(p.trim().strip_prefix("charset="), Some("utf-8" | "\"utf-8\"")))
}

/// The local time zone's offset from UTC now, in seconds (nginx applies
/// the current offset to every date, as this does).
fn local_gmtoff() -> i64 {
    i64::from(chrono::Local::now().offset().fix().local_minus_utc())
}

/// The `callback` argument, checked; empty when absent.
fn jsonp_callback(r: &Request) -> Result<Bytes, ()> {
    let Some(cb) = arg(&r.args, b"callback") else { return Ok(Bytes::new()) };
    if cb.len() > MAX_CALLBACK_LEN {
        log_error!(
            LogLevel::Info,
            r.log_id(),
            "client sent too long callback name: \"{}\"",
            String::from_utf8_lossy(&cb)
        );
        return Err(());
    }
    if !cb.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.') {
        log_error!(
            LogLevel::Info,
            r.log_id(),
            "client sent invalid callback name: \"{}\"",
            String::from_utf8_lossy(&cb)
        );
        return Err(());
    }
    Ok(cb)
}

/// The raw value of argument `name` (case-insensitive name, as nginx's
/// `$arg_` look-up).
fn arg(args: &Bytes, name: &[u8]) -> Option<Bytes> {
    let mut start = 0;
    for part in args.split(|&c| c == b'&') {
        let at = start;
        start += part.len() + 1;
        if part.len() > name.len() && part[name.len()] == b'=' && part[..name.len()].eq_ignore_ascii_case(name) {
            return Some(args.slice(at + name.len() + 1..at + part.len()));
        }
    }
    None
}

/// Reads and sorts the directory's visible entries; the error is a status.
fn read_entries(r: &Request, path: &Path) -> Result<Vec<Entry>, u16> {
    let dir = std::fs::read_dir(path).map_err(|e| dir_error(r, "opendir()", path, &e))?;
    let mut entries = Vec::new();
    for de in dir {
        let de = de.map_err(|e| {
            log_error!(LogLevel::Crit, r.log_id(), "readdir() \"{}\" failed ({})", path.display(), os_err(&e));
            500u16
        })?;
        let name = de.file_name().as_bytes().to_vec();
        if name.first() == Some(&b'.') {
            continue;
        }
        let full = de.path();
        let meta = match std::fs::metadata(&full) {
            Ok(m) => m,
            // A dangling or looping link is listed as the link itself.
            Err(e) if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ELOOP) => {
                std::fs::symlink_metadata(&full).map_err(|e| {
                    log_error!(LogLevel::Crit, r.log_id(), "lstat() \"{}\" failed ({})", full.display(), os_err(&e));
                    500u16
                })?
            }
            Err(e) => {
                log_error!(LogLevel::Crit, r.log_id(), "stat() \"{}\" failed ({})", full.display(), os_err(&e));
                if e.kind() == ErrorKind::PermissionDenied {
                    continue;
                }
                return Err(500);
            }
        };
        entries.push(Entry { name, dir: meta.is_dir(), file: meta.is_file(), mtime: meta.mtime(), size: meta.size() });
    }
    entries.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
    Ok(entries)
}

fn os_err(e: &std::io::Error) -> String {
    sluice_core::log::os_error(e)
}

/// Logs a failed directory open the way nginx words it; returns the status.
fn dir_error(r: &Request, call: &str, path: &Path, e: &std::io::Error) -> u16 {
    let too_long = e.raw_os_error() == Some(nix::libc::ENAMETOOLONG);
    let (status, level) = match e.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory => (404, LogLevel::Error),
        _ if too_long => (404, LogLevel::Error),
        ErrorKind::PermissionDenied => (403, LogLevel::Error),
        _ => (500, LogLevel::Crit),
    };
    log_error!(
        level,
        r.log_id(),
        "{} \"{}\" failed ({}), client: {}, server: {}, request: \"{}\"",
        call,
        path.display(),
        os_err(e),
        r.conn.peer.ip(),
        r.server.name,
        String::from_utf8_lossy(r.head.request_line())
    );
    status
}

/// Broken-down UTC time of `secs` (the epoch for out-of-range values).
fn gmtime(secs: i64) -> DateTime<chrono::Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// The html listing of `uri`.
fn html(uri: &[u8], entries: &[Entry], utf8: bool, exact: bool, gmtoff: i64) -> Bytes {
    let mut out = Vec::with_capacity(256 + entries.len() * 120);
    out.extend_from_slice(b"<html>\r\n<head><title>Index of ");
    escape_html(&mut out, uri);
    out.extend_from_slice(b"</title></head>\r\n<body>\r\n<h1>Index of ");
    escape_html(&mut out, uri);
    out.extend_from_slice(b"</h1><hr><pre><a href=\"../\">../</a>\r\n");
    for e in entries {
        html_entry(&mut out, e, utf8, exact, gmtoff);
    }
    out.extend_from_slice(b"</pre><hr></body>\r\n</html>\r\n");
    Bytes::from(out)
}

fn html_entry(out: &mut Vec<u8>, e: &Entry, utf8: bool, exact: bool, gmtoff: i64) {
    out.extend_from_slice(b"<a href=\"");
    escape_uri_component(out, &e.name);
    if e.dir {
        out.push(b'/');
    }
    out.extend_from_slice(b"\">");
    let chars = if utf8 { utf8_length(&e.name) } else { e.name.len() };
    // A long name shows its first 47 characters and "..>".
    let shown = if chars > NAME_LEN { NAME_LEN - 3 } else { chars };
    let prefix = if chars != e.name.len() { utf8_prefix(&e.name, shown) } else { &e.name[..shown] };
    escape_html(out, prefix);
    if chars > NAME_LEN {
        out.extend_from_slice(b"..&gt;</a>");
    } else {
        let mut width = chars;
        if e.dir && width < NAME_LEN {
            out.push(b'/');
            width += 1;
        }
        out.extend_from_slice(b"</a>");
        out.resize(out.len() + (NAME_LEN - width), b' ');
    }
    let t = gmtime(e.mtime + gmtoff);
    let date =
        format!(" {:02}-{}-{} {:02}:{:02} ", t.day(), MONTHS[t.month0() as usize], t.year(), t.hour(), t.minute());
    out.extend_from_slice(date.as_bytes());
    let size = match (e.dir, exact) {
        (true, true) => format!("{:>19}", "-"),
        (true, false) => format!("{:>7}", "-"),
        (false, true) => format!("{:>19}", e.size),
        (false, false) => human_size(e.size),
    };
    out.extend_from_slice(size.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A size rounded as nginx's `autoindex_exact_size off`: bytes up to 9999,
/// then K, M, G rounded half up, seven columns wide.
fn human_size(size: u64) -> String {
    const K: u64 = 1024;
    let (unit, scale) = if size >= K * K * K {
        (K * K * K, 'G')
    } else if size >= K * K {
        (K * K, 'M')
    } else if size > 9999 {
        (K, 'K')
    } else {
        return format!(" {size:>6}");
    };
    let mut n = size / unit;
    if size % unit >= unit / 2 {
        n += 1;
    }
    format!("{n:>6}{scale}")
}

/// The json (or jsonp, with a callback) listing.
fn json(entries: &[Entry], callback: Option<&[u8]>) -> Bytes {
    let mut out = Vec::with_capacity(16 + entries.len() * 100);
    if let Some(cb) = callback {
        out.extend_from_slice(b"/* callback */\r\n");
        out.extend_from_slice(cb);
        out.push(b'(');
    }
    out.push(b'[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"\r\n{ \"name\":\"");
        escape_json(&mut out, &e.name);
        out.extend_from_slice(b"\", \"type\":\"");
        out.extend_from_slice(kind(e).as_bytes());
        out.extend_from_slice(b"\", \"mtime\":\"");
        let mtime = UNIX_EPOCH + Duration::from_secs(e.mtime.max(0) as u64);
        out.extend_from_slice(sluice_core::time::http_date(mtime).as_bytes());
        if e.file {
            out.extend_from_slice(format!("\", \"size\":{}", e.size).as_bytes());
        } else {
            out.push(b'"');
        }
        out.extend_from_slice(b" }");
    }
    out.extend_from_slice(b"\r\n]");
    if callback.is_some() {
        out.extend_from_slice(b");");
    }
    Bytes::from(out)
}

fn kind(e: &Entry) -> &'static str {
    if e.dir {
        "directory"
    } else if e.file {
        "file"
    } else {
        "other"
    }
}

/// The xml listing.
fn xml(entries: &[Entry]) -> Bytes {
    let mut out = Vec::with_capacity(64 + entries.len() * 100);
    out.extend_from_slice(b"<?xml version=\"1.0\"?>\r\n<list>\r\n");
    for e in entries {
        let t = gmtime(e.mtime);
        let mut head = format!(
            "<{} mtime=\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            kind(e),
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        if e.file {
            head.push_str(&format!("\" size=\"{}", e.size));
        }
        head.push_str("\">");
        out.extend_from_slice(head.as_bytes());
        escape_html(&mut out, &e.name);
        out.extend_from_slice(format!("</{}>\r\n", kind(e)).as_bytes());
    }
    out.extend_from_slice(b"</list>\r\n");
    Bytes::from(out)
}

/// Characters in `s` when it is valid UTF-8, else its length in bytes.
fn utf8_length(s: &[u8]) -> usize {
    match std::str::from_utf8(s) {
        Ok(t) => t.chars().count(),
        Err(_) => s.len(),
    }
}

/// The first `n` characters of valid UTF-8 `s`.
fn utf8_prefix(s: &[u8], n: usize) -> &[u8] {
    match std::str::from_utf8(s) {
        Ok(t) => match t.char_indices().nth(n) {
            Some((at, _)) => &s[..at],
            None => s,
        },
        Err(_) => &s[..n.min(s.len())],
    }
}

/// HTML (and XML) escaping: `<`, `>`, `&` and `"`.
fn escape_html(out: &mut Vec<u8>, s: &[u8]) {
    for &c in s {
        match c {
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            _ => out.push(c),
        }
    }
}

/// Percent-escaping of a URI component: everything but letters, digits
/// and `-._~` (so `:` cannot make a name look like a scheme).
fn escape_uri_component(out: &mut Vec<u8>, s: &[u8]) {
    sluice_http::parse::percent_encode(out, s, |c| {
        !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~'))
    });
}

/// JSON string escaping: `"` and `\`, and control characters (the short
/// forms where JSON has them, `\u00XX` otherwise). Other bytes, UTF-8
/// included, pass unchanged.
fn escape_json(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in s {
        match c {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', c]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f => {
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 0xf)]])
            }
            _ => out.push(c),
        }
    }
}

impl HttpModule for AutoindexModule {
    fn name(&self) -> &'static str {
        "autoindex"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        directives()
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(AutoindexLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &AutoindexLocConf = downcast(parent);
        let c: &mut AutoindexLocConf = downcast_mut(child);
        c.enable = Some(c.enable.or(p.enable).unwrap_or(false));
        c.format = Some(c.format.or(p.format).unwrap_or(Format::Html));
        c.localtime = Some(c.localtime.or(p.localtime).unwrap_or(false));
        c.exact_size = Some(c.exact_size.or(p.exact_size).unwrap_or(true));
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.add_phase_handler(Phase::Content, Arc::new(sluice_http::Gated { handler: handle, wanted_in: autoindex_on }));
        Ok(())
    }
}

#[cfg(test)]
#[path = "autoindex_tests.rs"]
mod tests;
