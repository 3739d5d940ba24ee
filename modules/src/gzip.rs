//! The gzip module: compresses responses on the fly, as nginx's
//! `ngx_http_gzip_filter_module`.
//!
//! ```text
//! gzip on;
//! gzip_types text/plain application/json;   # text/html always; `*` for all
//! gzip_min_length 20;         # compared with Content-Length when known
//! gzip_comp_level 1;          # 1..9
//! gzip_buffers 32 4k;         # the output held per pass
//! gzip_http_version 1.1;      # older requests are not compressed
//! gzip_proxied off;           # requests with `Via`: off|expired|no-cache|no-store|private|no_last_modified|no_etag|auth|any
//! gzip_disable msie6 "Lynx";  # User-Agent regexes (case-insensitive)
//! gzip_vary on;               # Vary: Accept-Encoding
//! log_format z '$request $gzip_ratio';
//! ```
//!
//! A header filter and a body filter, above `range` and below `charset`
//! in the LIFO order as in nginx's `auto/modules`, and so above the chunked
//! filter: a compressed body of unknown length goes out chunked (HTTP/1.1)
//! or closes the connection (HTTP/1.0).
//!
//! Header filter: responses pass untouched unless `gzip on`, the status is
//! 200, 403 or 404, there is no `Content-Encoding`, the length (when
//! known) is at least `gzip_min_length`, the type is in `gzip_types`, and
//! the request accepts gzip (see [`gzip_ok`]). A HEAD response is treated
//! like its GET (nginx decides before it knows the body is dropped). A
//! compressed response loses `Content-Length` and `Accept-Ranges`, its
//! strong `ETag` becomes weak (`W/"..."`, as nginx 1.7.3+), and it gets
//! `Content-Encoding: gzip`. `Vary: Accept-Encoding` (with `gzip_vary on`)
//! goes on every response that would be compressed for a client accepting
//! gzip, so that caches keep both forms apart.
//!
//! Body filter: see [`crate::zpump`] — it compresses as the body streams,
//! holds about `gzip_buffers` of output, turns `flush` into a sync flush,
//! writes the gzip trailer at `last_buf`, and stops with Again when the
//! connection is full. Per-request state: [`GzipCtx`] (the deflate stream
//! and the input not yet compressed); it stays after the end for
//! `$gzip_ratio`. The gzip framing (header and CRC-32/length trailer) is
//! written here around flate2's raw deflate, as nginx does around zlib, so
//! either flate2 backend serves.
//!
//! Not done: `gzip_disable degradation` (accepted, ignored), subrequests
//! (their parts are not compressed separately), `postpone_gzipping`.

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use regex::bytes::Regex;
use sluice_core::conf::directive::{
    checked, enumeration, flag, number, size, Args, Contexts as C, Directive, Level, SetFn,
};
use sluice_core::conf::{value, SetError, Statement};
use sluice_http::location::Location;
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::parse::Method;
use sluice_http::{
    AnyConf, BodyFilter, ConfKey, FilterResult, HeaderFilter, HttpConfCx, HttpModule, ModuleIndex, NextBody,
    NextHeader, PostConf, PreConf, Request,
};

use crate::zpump::{Codec, OutBuf, Pump};

/// `gzip_proxied` bits, as nginx's.
mod proxied {
    pub const OFF: u16 = 0x0002;
    pub const EXPIRED: u16 = 0x0004;
    pub const NO_CACHE: u16 = 0x0008;
    pub const NO_STORE: u16 = 0x0010;
    pub const PRIVATE: u16 = 0x0020;
    pub const NO_LM: u16 = 0x0040;
    pub const NO_ETAG: u16 = 0x0080;
    pub const AUTH: u16 = 0x0100;
    pub const ANY: u16 = 0x0200;
}

const PROXIED_WORDS: &[(&str, u16)] = &[
    ("off", proxied::OFF),
    ("expired", proxied::EXPIRED),
    ("no-cache", proxied::NO_CACHE),
    ("no-store", proxied::NO_STORE),
    ("private", proxied::PRIVATE),
    ("no_last_modified", proxied::NO_LM),
    ("no_etag", proxied::NO_ETAG),
    ("auth", proxied::AUTH),
    ("any", proxied::ANY),
];

/// The gzip header nginx writes: no name, no time, OS unix.
const GZIP_HEADER: &[u8] = &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];

/// `gzip_disable`: the `msie6` mask and User-Agent regexes.
#[derive(Debug, Default, Clone)]
pub struct Disable {
    msie6: bool,
    regexes: Vec<Regex>,
}

/// Location conf. Unset fields take nginx's defaults when read.
#[derive(Debug, Default)]
pub struct GzipLocConf {
    enable: Option<bool>,
    /// Lower-case types; `*` matches any. text/html is always added.
    types: Option<Vec<String>>,
    min_length: Option<u64>,
    comp_level: Option<u64>,
    vary: Option<bool>,
    proxied: Option<u16>,
    http_version: Option<(u8, u8)>,
    disable: Option<Disable>,
    buffers: Option<(u64, u64)>,
}

impl GzipLocConf {
    /// `gzip_vary`.
    pub fn vary(&self) -> bool {
        self.vary.unwrap_or(false)
    }

    /// `gzip_buffers`: (number, size); nginx's default is `32 4k`.
    pub fn buffers(&self) -> (usize, usize) {
        let (n, s) = self.buffers.unwrap_or((32, 4096));
        (n as usize, s as usize)
    }

    fn type_ok(&self, ct: &[u8]) -> bool {
        let ty = ct.split(|&c| c == b';').next().unwrap_or_default().trim_ascii();
        if ty.eq_ignore_ascii_case(b"text/html") {
            return true;
        }
        self.types.as_deref().unwrap_or_default().iter().any(|t| t == "*" || t.as_bytes().eq_ignore_ascii_case(ty))
    }
}

/// The deflate side of a gzip stream: raw deflate plus the gzip framing.
pub struct Deflater {
    z: Compress,
    crc: Crc,
    started: bool,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater").field("in", &self.z.total_in()).field("out", &self.z.total_out()).finish()
    }
}

impl Deflater {
    /// A stream at `level` (1..9).
    pub fn new(level: u32) -> Deflater {
        Deflater { z: Compress::new(Compression::new(level.clamp(1, 9)), false), crc: Crc::new(), started: false }
    }

    /// Bytes fed so far.
    pub fn total_in(&self) -> u64 {
        self.z.total_in()
    }

    /// Bytes of the whole gzip stream: header, deflate data, trailer (as
    /// nginx counts for `$gzip_ratio`).
    pub fn total_out(&self) -> u64 {
        GZIP_HEADER.len() as u64 + self.z.total_out() + 8
    }

    fn start(&mut self, out: &mut OutBuf) {
        if !self.started {
            self.started = true;
            out.push(Bytes::from_static(GZIP_HEADER));
        }
    }

    /// Runs deflate with `mode` (sync flush or finish) until it has
    /// nothing more to write.
    fn drain(&mut self, out: &mut OutBuf, mode: FlushCompress) -> Result<(), String> {
        loop {
            let room = out.room();
            let status = self.z.compress_vec(&[], room, mode).map_err(|e| format!("deflate() failed: {e}"))?;
            let finished = match mode {
                FlushCompress::Finish => status == Status::StreamEnd,
                // zlib's rule: a flush is complete once output space is
                // left over.
                _ => room.len() < room.capacity(),
            };
            if finished {
                return Ok(());
            }
        }
    }
}

impl Codec for Deflater {
    fn write(&mut self, input: &[u8], out: &mut OutBuf, _limit: usize) -> Result<usize, String> {
        self.start(out);
        let mut pos = 0;
        while pos < input.len() {
            let before = self.z.total_in();
            self.z
                .compress_vec(&input[pos..], out.room(), FlushCompress::None)
                .map_err(|e| format!("deflate() failed: {e}"))?;
            let used = (self.z.total_in() - before) as usize;
            self.crc.update(&input[pos..pos + used]);
            pos += used;
        }
        Ok(pos)
    }

    fn flush(&mut self, out: &mut OutBuf) -> Result<(), String> {
        self.start(out);
        self.drain(out, FlushCompress::Sync)
    }

    fn finish(&mut self, out: &mut OutBuf) -> Result<(), String> {
        self.start(out);
        self.drain(out, FlushCompress::Finish)?;
        let mut trailer = Vec::with_capacity(8);
        trailer.extend_from_slice(&self.crc.sum().to_le_bytes());
        trailer.extend_from_slice(&(self.z.total_in() as u32).to_le_bytes());
        out.push(Bytes::from(trailer));
        Ok(())
    }
}

/// The per-request state of a compressed response.
#[derive(Debug)]
pub struct GzipCtx {
    /// The stream and the input not yet compressed.
    pub pump: Pump<Deflater>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), GzipLocConf> = ConfKey::new();

/// The gzip module.
#[derive(Debug)]
pub struct GzipModule;

/// True when `Accept-Encoding` names gzip with a non-zero quality, read as
/// nginx reads it: the first `gzip`, standing as a token, optionally with
/// `;q=`. `gzip;q=0` is a refusal.
pub fn accepts_gzip(ae: &[u8]) -> bool {
    let Some(at) = ae.windows(4).position(|w| w.eq_ignore_ascii_case(b"gzip")) else {
        return false;
    };
    if at > 0 && !matches!(ae[at - 1], b',' | b' ') {
        return false;
    }
    let mut rest = ae[at + 4..].iter();
    loop {
        match rest.next() {
            None | Some(b',') => return true,
            Some(b' ') => continue,
            Some(b';') => break,
            Some(_) => return false,
        }
    }
    loop {
        match rest.next() {
            None => return true,
            Some(b' ') => continue,
            Some(b'q' | b'Q') => break,
            Some(_) => return false,
        }
    }
    match rest.as_slice().split_first() {
        Some((b'=', q)) => quality(q) > 0,
        _ => false,
    }
}

/// A q-value in thousandths; 0 for an invalid one (as nginx).
fn quality(q: &[u8]) -> u32 {
    let end = q.iter().position(|&c| c == b',' || c == b' ').unwrap_or(q.len());
    let q = &q[..end];
    let (int, frac) = match q.iter().position(|&c| c == b'.') {
        Some(dot) => (&q[..dot], &q[dot + 1..]),
        None => (q, &b""[..]),
    };
    if int.len() != 1 || frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    let mut v = match int[0] {
        b'0' => 0,
        b'1' => 1000,
        _ => return 0,
    };
    for (i, d) in frac.iter().enumerate() {
        v += u32::from(d - b'0') * [100, 10, 1][i];
    }
    if v > 1000 {
        0
    } else {
        v
    }
}

/// nginx's `msie6` test of a User-Agent: MSIE 4.x, 5.x, and 6.x without
/// SV1; Opera (which claims to be MSIE) is not.
pub fn is_msie6(ua: &[u8]) -> bool {
    let Some(i) = memchr::memmem::find(ua, b"MSIE ") else {
        return false;
    };
    if ua.len() <= i + 7 || memchr::memmem::find(ua, b"Opera").is_some() {
        return false;
    }
    ua[i + 6] == b'.'
        && match ua[i + 5] {
            b'4' | b'5' => true,
            b'6' => memchr::memmem::find(&ua[i + 8..], b"SV1").is_none(),
            _ => false,
        }
}

/// True when a `Cache-Control` value of the response names `token`.
fn cache_control_has(r: &Request, token: &[u8]) -> bool {
    r.headers_out
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"cache-control"))
        .any(|(_, v)| v.split(|&c| c == b',').any(|p| p.trim_ascii().split(|&c| c == b'=').next() == Some(token)))
}

/// `gzip_proxied` for a request with `Via`: may its response be gzipped?
fn proxied_ok(r: &Request, p: u16) -> bool {
    if p & proxied::OFF != 0 || p == 0 {
        return false;
    }
    if p & proxied::ANY != 0 || p & proxied::AUTH != 0 && r.header("authorization").is_some() {
        return true;
    }
    if let Some(e) = r.headers_out.get("Expires") {
        if p & proxied::EXPIRED == 0 {
            return false;
        }
        let expires = sluice_core::time::parse_http_date(&String::from_utf8_lossy(&e));
        let date =
            r.headers_out.get("Date").and_then(|d| sluice_core::time::parse_http_date(&String::from_utf8_lossy(&d)));
        let now = date.unwrap_or_else(std::time::SystemTime::now);
        return expires.is_some_and(|x| x < now);
    }
    if r.headers_out.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(b"cache-control")) {
        return p & proxied::NO_CACHE != 0 && cache_control_has(r, b"no-cache")
            || p & proxied::NO_STORE != 0 && cache_control_has(r, b"no-store")
            || p & proxied::PRIVATE != 0 && cache_control_has(r, b"private");
    }
    if p & proxied::NO_LM != 0 && r.headers_out.get("Last-Modified").is_none() {
        return true;
    }
    p & proxied::NO_ETAG != 0 && r.headers_out.get("ETag").is_none()
}

/// nginx's `ngx_http_gzip_ok`: does the request accept a gzipped response?
/// `Accept-Encoding`, then `gzip_disable msie6`, `gzip_http_version`,
/// `gzip_proxied` (for requests with `Via`), and the `gzip_disable`
/// regexes on `User-Agent`. Used by gzip, gunzip and gzip_static.
pub fn gzip_ok(r: &Request) -> bool {
    let Some(ae) = r.header("accept-encoding") else {
        return false;
    };
    if ae.len() < 4 || !ae.starts_with(b"gzip,") && !accepts_gzip(ae) {
        return false;
    }
    let conf = r.loc_conf(&KEY);
    let ua = r.header("user-agent");
    let disable = conf.disable.as_ref();
    if disable.is_some_and(|d| d.msie6) && ua.is_some_and(|u| is_msie6(u)) {
        return false;
    }
    if r.head.version < conf.http_version.unwrap_or((1, 1)) {
        return false;
    }
    if r.header("via").is_some() && !proxied_ok(r, conf.proxied.unwrap_or(proxied::OFF)) {
        return false;
    }
    match (disable, ua) {
        (Some(d), Some(ua)) => !d.regexes.iter().any(|re| re.is_match(ua)),
        _ => true,
    }
}

/// Adds `Vary: Accept-Encoding` once (gzip, gunzip and gzip_static may
/// each ask for it; nginx's `r->gzip_vary` is one flag).
pub fn add_vary(r: &mut Request) {
    let present = r
        .headers_out
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case(b"vary") && v.eq_ignore_ascii_case(b"Accept-Encoding"));
    if !present {
        r.headers_out.add(Bytes::from_static(b"Vary"), Bytes::from_static(b"Accept-Encoding"));
    }
}

/// nginx's `ngx_http_weak_etag`: a strong `ETag` becomes weak; one that is
/// not a quoted string is dropped.
pub fn weak_etag(r: &mut Request) {
    let h = &mut r.headers_out.headers;
    let Some(i) = h.iter().position(|(n, _)| n.eq_ignore_ascii_case(b"etag")) else {
        return;
    };
    let v = &h[i].1;
    if v.starts_with(b"W/") {
        return;
    }
    if v.starts_with(b"\"") {
        let mut w = Vec::with_capacity(v.len() + 2);
        w.extend_from_slice(b"W/");
        w.extend_from_slice(v);
        h[i].1 = Bytes::from(w);
    } else {
        h.remove(i);
    }
}

/// Clears what a transformed body can no longer honour: Content-Length,
/// ranges, a strong ETag.
pub fn clear_for_transform(r: &mut Request) {
    r.headers_out.content_length = None;
    r.allow_ranges = false;
    let _ = r.take_ctx::<_, _, _, crate::range::RangeCtx>(&crate::range::KEY);
    r.headers_out.remove("Accept-Ranges");
    weak_etag(r);
}

/// The header filter.
struct GzipHeaderFilter;

impl HeaderFilter for GzipHeaderFilter {
    fn wanted_in(&self, loc: &Location) -> bool {
        loc.conf(&KEY).enable.unwrap_or(false)
    }

    fn header_filter(&self, r: &mut Request, next: NextHeader<'_>) -> FilterResult {
        let conf = r.loc_conf(&KEY);
        let status = r.headers_out.status;
        let skip = !conf.enable.unwrap_or(false)
            || !matches!(status, 200 | 403 | 404)
            || r.headers_out.get("Content-Encoding").is_some_and(|v| !v.is_empty())
            || r.headers_out.content_length.is_some_and(|n| n < conf.min_length.unwrap_or(20))
            || !r.headers_out.content_type.as_deref().is_some_and(|t| conf.type_ok(t))
            || r.header_only && r.method() != Method::Head;
        if skip {
            return next.call(r);
        }
        let level = conf.comp_level.unwrap_or(1) as u32;
        let (number, size) = conf.buffers();
        if conf.vary() {
            add_vary(r);
        }
        if !gzip_ok(r) {
            return next.call(r);
        }
        r.set_ctx(&KEY, GzipCtx { pump: Pump::new(Deflater::new(level), number, size) });
        r.headers_out.add(Bytes::from_static(b"Content-Encoding"), Bytes::from_static(b"gzip"));
        clear_for_transform(r);
        next.call(r)
    }
}

/// The body filter.
struct GzipBodyFilter;

impl BodyFilter for GzipBodyFilter {
    fn wanted_in(&self, loc: &Location) -> bool {
        loc.conf(&KEY).enable.unwrap_or(false)
    }

    fn body_filter(&self, r: &mut Request, chain: sluice_core::Chain, next: NextBody<'_>) -> FilterResult {
        if r.header_only || r.ctx::<_, _, _, GzipCtx>(&KEY).is_none() {
            return next.call(r, chain);
        }
        // Taken out for the call below, which needs the request whole.
        let Some(mut ctx) = r.take_ctx::<_, _, _, GzipCtx>(&KEY) else {
            return next.call(r, chain);
        };
        let result = ctx.pump.run(r, chain, next);
        r.set_ctx(&KEY, ctx);
        result
    }
}

/// `$gzip_ratio`: input over output, two decimals rounded, once the
/// response was compressed to its end (as nginx, empty before).
fn gzip_ratio(r: &Request, _: &str) -> Option<Bytes> {
    let ctx = r.ctx::<_, _, _, GzipCtx>(&KEY).filter(|c| c.pump.done)?;
    let (zin, zout) = (ctx.pump.codec.total_in(), ctx.pump.codec.total_out());
    if zin == 0 {
        return None;
    }
    Some(Bytes::from(format_ratio(zin, zout)))
}

/// `zin / zout` as `N.NN`, the third decimal rounding the second.
pub fn format_ratio(zin: u64, zout: u64) -> String {
    let mut int = zin / zout;
    let mut frac = (zin * 100 / zout) % 100;
    if (zin * 1000 / zout) % 10 > 4 {
        frac += 1;
        if frac > 99 {
            int += 1;
            frac = 0;
        }
    }
    format!("{int}.{frac:02}")
}

fn set_types(_: &mut HttpConfCx, c: &mut GzipLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.types.is_some() {
        return Err(sluice_core::conf::directive::duplicate(stmt).into());
    }
    c.types = Some(stmt.args.iter().map(|a| a.value.to_ascii_lowercase()).collect());
    Ok(())
}

fn set_proxied(_: &mut HttpConfCx, c: &mut GzipLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.proxied.is_some() {
        return Err(sluice_core::conf::directive::duplicate(stmt).into());
    }
    let mut mask = 0;
    for a in &stmt.args {
        let bit = PROXIED_WORDS.iter().find(|(w, _)| w.eq_ignore_ascii_case(&a.value)).map(|(_, b)| *b);
        mask |= bit.ok_or_else(|| format!("invalid value \"{}\"", a.value))?;
    }
    c.proxied = Some(mask);
    Ok(())
}

fn set_disable(_: &mut HttpConfCx, c: &mut GzipLocConf, stmt: &Statement) -> Result<(), SetError> {
    let d = c.disable.get_or_insert_with(Disable::default);
    for a in &stmt.args {
        match a.value.as_str() {
            "msie6" => d.msie6 = true,
            "degradation" => {}
            re => d.regexes.push(sluice_http::regex_compat::compile(re, true)?),
        }
    }
    Ok(())
}

fn set_buffers(_: &mut HttpConfCx, c: &mut GzipLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.buffers.is_some() {
        return Err(sluice_core::conf::directive::duplicate(stmt).into());
    }
    c.buffers = Some(parse_bufs(stmt)?);
    Ok(())
}

/// `NUMBER SIZE` (gzip_buffers, gunzip_buffers), both non-zero.
pub fn parse_bufs(stmt: &Statement) -> Result<(u64, u64), SetError> {
    let n = value::parse_number(stmt.arg(0)).filter(|&n| n > 0);
    let s = value::parse_size(stmt.arg(1)).filter(|&s| s > 0);
    match (n, s) {
        (Some(n), Some(s)) => Ok((n, s)),
        (None, _) => Err(format!("invalid value \"{}\"", stmt.arg(0)).into()),
        (_, None) => Err(format!("invalid value \"{}\"", stmt.arg(1)).into()),
    }
}

fn level_bounds(v: &u64) -> Result<(), String> {
    if (1..=9).contains(v) {
        Ok(())
    } else {
        Err("must be between 1 and 9".into())
    }
}

fn loc(name: &'static str, args: Args, set: SetFn<HttpConfCx>) -> Directive<HttpConfCx> {
    // Only `gzip` itself may sit in an `if` block, as in nginx.
    let ctx = if name == "gzip" { C::HTTP_ANY | C::HTTP_LIF } else { C::HTTP_ANY };
    Directive::new(name, ctx, args, Level::Loc, set)
}

impl HttpModule for GzipModule {
    fn name(&self) -> &'static str {
        "gzip"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        use sluice_core::conf::directive::custom;
        const VERSIONS: &[(&str, (u8, u8))] = &[("1.0", (1, 0)), ("1.1", (1, 1))];
        let level = checked(
            number(|c: &mut GzipLocConf| &mut c.comp_level),
            |c: &mut GzipLocConf| &mut c.comp_level,
            level_bounds,
        );
        vec![
            loc("gzip", Args::FLAG, flag(|c: &mut GzipLocConf| &mut c.enable)),
            loc("gzip_buffers", Args::TAKE2, custom(set_buffers)),
            loc("gzip_types", Args::MORE1, custom(set_types)),
            loc("gzip_comp_level", Args::TAKE1, level),
            loc("gzip_min_length", Args::TAKE1, size(|c: &mut GzipLocConf| &mut c.min_length)),
            loc("gzip_vary", Args::FLAG, flag(|c: &mut GzipLocConf| &mut c.vary)),
            loc("gzip_proxied", Args::MORE1, custom(set_proxied)),
            loc("gzip_http_version", Args::TAKE1, enumeration(VERSIONS, |c: &mut GzipLocConf| &mut c.http_version)),
            loc("gzip_disable", Args::MORE1, custom(set_disable)),
        ]
    }

    fn preconfiguration(&self, cf: &mut PreConf) -> Result<(), String> {
        cf.vars.add("gzip_ratio", gzip_ratio)
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(GzipLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn Any, child: &mut dyn Any) -> Result<(), String> {
        let p: &GzipLocConf = downcast(parent);
        let c: &mut GzipLocConf = downcast_mut(child);
        c.enable = c.enable.or(p.enable);
        c.types = c.types.take().or_else(|| p.types.clone());
        c.min_length = c.min_length.or(p.min_length);
        c.comp_level = c.comp_level.or(p.comp_level);
        c.vary = c.vary.or(p.vary);
        c.proxied = c.proxied.or(p.proxied);
        c.http_version = c.http_version.or(p.http_version);
        c.disable = c.disable.take().or_else(|| p.disable.clone());
        c.buffers = c.buffers.or(p.buffers);
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.push_header_filter(Arc::new(GzipHeaderFilter));
        cf.push_body_filter(Arc::new(GzipBodyFilter));
        Ok(())
    }
}

#[cfg(test)]
#[path = "gzip_tests.rs"]
mod tests;
