//! The charset module: labels text responses with a charset and recodes
//! between single-byte charsets, as nginx's `ngx_http_charset_filter_module`.
//!
//! ```text
//! charset_map koi8-r windows-1251 { C0 FE; C1 E0; }   # http level only
//! charset utf-8;                 # text/html → text/html; charset=utf-8
//! location /old/ { charset windows-1251; source_charset koi8-r; }
//! charset_types text/html text/plain;   # default: nginx's list
//! override_charset on;           # also relabel/recode responses that carry a charset
//! ```
//!
//! A header filter and a body filter, between `headers` and `range` in the
//! header chain (it sees the handler's type before `range` copies it into
//! multipart part heads). A response of a type in `charset_types` (or whose
//! type already names a charset, with `override_charset on`) gets
//! `; charset=NAME` (not for 301 and 302, as nginx). When the source charset
//! (`source_charset`, or the charset the type already names) differs from
//! `charset`, the body is recoded byte by byte through the `charset_map`
//! table between them (used in either direction; bytes below 0x80 map to
//! themselves unless the map says otherwise, unmapped ones above become
//! `?`). Without a map between the two, the error is logged as nginx words
//! it and the response passes unchanged. Compressed responses
//! (`Content-Encoding`) are not recoded.
//!
//! Per-request state: the recoding table ([`CharsetCtx`]). Recoding copies
//! (it must); file regions are read in 32 KiB pieces.
//!
//! Not done: recoding to or from `utf-8` (`charset_map X utf-8` tables are
//! read and checked, but such a response passes unrecoded and unlabelled,
//! with an error logged), and `X-Accel-Charset` from upstreams.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sluice_core::buf::Payload;
use sluice_core::conf::directive::{custom, flag, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_core::log::Level as LogLevel;
use sluice_core::{log_error, Buf, Chain};
use sluice_http::location::Location;
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::variables::ComplexValue;
use sluice_http::{
    AnyConf, BodyFilter, ConfKey, FilterError, FilterResult, HeaderFilter, HttpConfCx, HttpModule, ModuleIndex,
    NextBody, NextHeader, PostConf, Request,
};

/// nginx's default `charset_types`.
const DEFAULT_TYPES: &[&str] =
    &["text/html", "text/xml", "text/plain", "text/vnd.wap.wml", "application/javascript", "application/rss+xml"];

/// How much of a file region is read and recoded at a time.
const READ_PIECE: u64 = 32 * 1024;

/// A `charset_map` table: bytes of `src` to bytes of `dst` and back.
struct Table {
    src: usize,
    dst: usize,
    src2dst: Arc<[u8; 256]>,
    dst2src: Arc<[u8; 256]>,
    /// The map's target is utf-8 (read, not used for recoding).
    utf8: bool,
}

/// Main conf: the charsets named anywhere, and the maps between them.
#[derive(Default)]
pub struct CharsetMainConf {
    names: Vec<String>,
    tables: Vec<Table>,
}

impl CharsetMainConf {
    /// The index of a charset name (case-insensitive), added if new.
    fn add(&mut self, name: &str) -> usize {
        match self.find(name.as_bytes()) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        }
    }

    fn find(&self, name: &[u8]) -> Option<usize> {
        self.names.iter().position(|n| n.as_bytes().eq_ignore_ascii_case(name))
    }

    /// The byte table recoding `src` into `dst`; `Err(true)` when the map
    /// involves utf-8, `Err(false)` when there is none.
    fn table(&self, src: usize, dst: usize) -> Result<Arc<[u8; 256]>, bool> {
        for t in &self.tables {
            let found = if t.src == src && t.dst == dst {
                &t.src2dst
            } else if t.src == dst && t.dst == src {
                &t.dst2src
            } else {
                continue;
            };
            return if t.utf8 { Err(true) } else { Ok(found.clone()) };
        }
        Err(false)
    }
}

/// A `charset` / `source_charset` value.
#[derive(Clone)]
enum CharsetRef {
    Off,
    Id(usize),
    Var(ComplexValue),
}

/// Location conf.
#[derive(Default)]
pub struct CharsetLocConf {
    charset: Option<CharsetRef>,
    source_charset: Option<CharsetRef>,
    override_charset: Option<bool>,
    /// Lower-case types; `*` matches any.
    types: Option<Vec<String>>,
}

/// The per-request state: the table the body is recoded with.
#[derive(Debug)]
pub struct CharsetCtx {
    table: Arc<[u8; 256]>,
}

/// The module's key.
pub static KEY: ConfKey<CharsetMainConf, (), CharsetLocConf> = ConfKey::new();

/// The charset module.
#[derive(Debug)]
pub struct CharsetModule;

fn set_charset_ref(cx: &mut HttpConfCx, stmt: &Statement, allow_off: bool) -> Result<CharsetRef, SetError> {
    let v = stmt.arg(0);
    if allow_off && v == "off" {
        return Ok(CharsetRef::Off);
    }
    if v.starts_with('$') {
        return Ok(CharsetRef::Var(cx.compile(v)?));
    }
    Ok(CharsetRef::Id(cx.with_main_conf(&KEY, |m| m.add(v))))
}

fn store<T>(slot: &mut Option<T>, v: T, stmt: &Statement) -> Result<(), SetError> {
    if slot.is_some() {
        return Err(sluice_core::conf::directive::duplicate(stmt).into());
    }
    *slot = Some(v);
    Ok(())
}

fn hex_byte(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 2 {
        return None;
    }
    u8::from_str_radix(s, 16).ok()
}

/// Reads one line of a `charset_map` block into the tables.
fn map_line(line: &Statement, src2dst: &mut [u8; 256], dst2src: &mut [u8; 256], utf8: bool) -> Result<(), SetError> {
    if line.args.len() != 1 {
        return Err(line.error("invalid parameters number").into());
    }
    let invalid = |v: &str| SetError::from(line.error(format!("invalid value \"{v}\"")));
    let from = hex_byte(&line.name).ok_or_else(|| invalid(&line.name))?;
    let to = line.arg(0);
    if utf8 {
        // Up to 3 bytes of UTF-8 (a character of the BMP), as nginx.
        let ok = !to.is_empty() && to.len().is_multiple_of(2) && to.len() <= 6;
        let bytes: Option<Vec<u8>> = to.as_bytes().chunks(2).map(|h| hex_byte(std::str::from_utf8(h).ok()?)).collect();
        match bytes {
            Some(b) if ok && std::str::from_utf8(&b).is_ok() => return Ok(()),
            _ => return Err(invalid(to)),
        }
    }
    let to = hex_byte(to).ok_or_else(|| invalid(to))?;
    src2dst[from as usize] = to;
    dst2src[to as usize] = from;
    Ok(())
}

/// `charset_map SRC DST { XX YY; ... }`.
fn charset_map(m: &mut CharsetMainConf, stmt: &Statement) -> Result<(), SetError> {
    let (a, b) = (stmt.arg(0), stmt.arg(1));
    let src = m.add(a);
    let dst = m.add(b);
    if src == dst {
        return Err(format!("\"charset_map\" between the same charsets \"{a}\" and \"{b}\"").into());
    }
    if a.eq_ignore_ascii_case("utf-8") {
        return Err("\"charset_map\" with \"utf-8\" charset should be given in the second column".into());
    }
    if m.tables.iter().any(|t| (t.src, t.dst) == (src, dst) || (t.src, t.dst) == (dst, src)) {
        return Err(format!("duplicate \"charset_map\" between \"{a}\" and \"{b}\"").into());
    }
    let utf8 = b.eq_ignore_ascii_case("utf-8");
    // ASCII maps to itself, the rest to '?', unless a line says otherwise.
    let mut src2dst = [b'?'; 256];
    let mut dst2src = [b'?'; 256];
    for i in 0..128u8 {
        src2dst[i as usize] = i;
        dst2src[i as usize] = i;
    }
    for line in stmt.block.as_deref().unwrap_or_default() {
        map_line(line, &mut src2dst, &mut dst2src, utf8)?;
    }
    m.tables.push(Table { src, dst, src2dst: Arc::new(src2dst), dst2src: Arc::new(dst2src), utf8 });
    Ok(())
}

/// The type part of a Content-Type (lower case) and its `charset=` value.
fn split_content_type(ct: &[u8]) -> (String, Option<Vec<u8>>) {
    let mut parts = ct.split(|&c| c == b';');
    let ty = String::from_utf8_lossy(parts.next().unwrap_or_default()).trim().to_ascii_lowercase();
    let charset = parts.find_map(|p| {
        let p = p.trim_ascii();
        let v = p.get(..8).filter(|k| k.eq_ignore_ascii_case(b"charset="))?;
        let v = &p[v.len()..];
        Some(v.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(v).to_vec())
    });
    (ty, charset)
}

/// Resolves a charset reference to its name and index (None: a name no
/// directive mentioned).
fn resolve(r: &Request, c: &CharsetRef) -> Option<(Vec<u8>, Option<usize>)> {
    let m = r.main_conf(&KEY);
    match c {
        CharsetRef::Off => None,
        CharsetRef::Id(i) => Some((m.names[*i].as_bytes().to_vec(), Some(*i))),
        CharsetRef::Var(v) => {
            let name = v.eval(r).to_vec();
            let id = m.find(&name);
            Some((name, id))
        }
    }
}

/// Labels the response with `name` (nginx's `ngx_http_set_charset`).
/// `replace` drops the type's own parameters first (recoding, or the same
/// charset); otherwise a type with parameters is left alone.
fn set_charset(r: &mut Request, ty: &str, name: &[u8], replace: bool) {
    if matches!(r.headers_out.status, 301 | 302) {
        return;
    }
    let Some(ct) = &r.headers_out.content_type else {
        return;
    };
    if !replace && ct.contains(&b';') {
        return;
    }
    let mut v = BytesMut::from(if replace { ty.as_bytes() } else { &ct[..] });
    v.extend_from_slice(b"; charset=");
    v.extend_from_slice(name);
    r.headers_out.content_type = Some(v.freeze());
}

fn no_map(r: &Request, src: &[u8], dst: &[u8]) {
    log_error!(
        LogLevel::Error,
        r.log_id(),
        "no \"charset_map\" between the charsets \"{}\" and \"{}\"",
        String::from_utf8_lossy(src),
        String::from_utf8_lossy(dst)
    );
}

/// The header filter.
struct CharsetHeaderFilter;

impl HeaderFilter for CharsetHeaderFilter {
    fn wanted_in(&self, loc: &Location) -> bool {
        charset_on(loc.conf(&KEY))
    }

    fn header_filter(&self, r: &mut Request, next: NextHeader<'_>) -> FilterResult {
        let Some(ct) = r.headers_out.content_type.clone().filter(|c| !c.is_empty()) else {
            return next.call(r);
        };
        let lcf = r.loc_conf(&KEY);
        if !charset_on(lcf) {
            return next.call(r);
        }
        let (ty, own) = split_content_type(&ct);
        if own.is_some() {
            if !lcf.override_charset.unwrap_or(false) {
                return next.call(r);
            }
        } else {
            let types = lcf.types.as_deref();
            let listed = match types {
                Some(t) => t.iter().any(|t| t == "*" || *t == ty),
                None => DEFAULT_TYPES.contains(&ty.as_str()),
            };
            if !listed {
                return next.call(r);
            }
        }
        let (charset, source_charset) = (lcf.charset.clone(), lcf.source_charset.clone());
        let Some((dst, dst_id)) = resolve(r, charset.as_ref().unwrap_or(&CharsetRef::Off)) else {
            return next.call(r);
        };
        let source = match own {
            Some(name) => {
                let id = r.main_conf(&KEY).find(&name);
                Some((name, id))
            }
            None => resolve(r, source_charset.as_ref().unwrap_or(&CharsetRef::Off)),
        };
        let Some((src, src_id)) = source else {
            set_charset(r, &ty, &dst, false);
            return next.call(r);
        };
        let (Some(s), Some(d)) = (src_id, dst_id) else {
            if src_id == dst_id && src.eq_ignore_ascii_case(&dst) {
                set_charset(r, &ty, &dst, true);
            } else {
                no_map(r, &src, &dst);
            }
            return next.call(r);
        };
        if s == d {
            set_charset(r, &ty, &dst, true);
            return next.call(r);
        }
        if r.headers_out.get("Content-Encoding").is_some_and(|v| !v.is_empty()) {
            return next.call(r);
        }
        match r.main_conf(&KEY).table(s, d) {
            Ok(table) => {
                set_charset(r, &ty, &dst, true);
                r.set_ctx(&KEY, CharsetCtx { table });
            }
            Err(true) => log_error!(
                LogLevel::Error,
                r.log_id(),
                "recoding between \"{}\" and \"{}\" is not supported",
                String::from_utf8_lossy(&src),
                String::from_utf8_lossy(&dst)
            ),
            Err(false) => no_map(r, &src, &dst),
        }
        next.call(r)
    }
}

/// Recodes a memory slice through `table`; `None` when nothing changes.
pub fn recode(table: &[u8; 256], data: &[u8]) -> Option<Bytes> {
    let first = data.iter().position(|&c| table[c as usize] != c)?;
    let mut out = BytesMut::from(data);
    for c in &mut out[first..] {
        *c = table[*c as usize];
    }
    Some(out.freeze())
}

/// Recodes one buf: memory in one piece, a file region in pieces read
/// from the file. Flags stay on the last piece.
fn recode_buf(table: &[u8; 256], b: Buf, out: &mut Chain) -> std::io::Result<()> {
    match &b.payload {
        Payload::Mem(m) => match recode(table, m) {
            Some(new) => out.push(Buf { payload: Payload::Mem(new), ..b }),
            None => out.push(b),
        },
        Payload::File(f) => {
            let mut pos = 0;
            while pos < f.len {
                let n = (f.len - pos).min(READ_PIECE);
                let mut piece = vec![0u8; n as usize];
                f.file.read_exact_at(&mut piece, f.offset + pos)?;
                for c in &mut piece {
                    *c = table[*c as usize];
                }
                out.push(Buf::mem(piece));
                pos += n;
            }
            let mut flags = Buf::from_static(b"");
            (flags.flush, flags.last_buf, flags.last_in_chain) = (b.flush, b.last_buf, b.last_in_chain);
            if flags.has_flags() {
                out.push(flags);
            }
        }
    }
    Ok(())
}

/// The body filter.
struct CharsetBodyFilter;

/// Whether `charset` names a charset here (`charset off`, the default, has
/// the filter do nothing at all).
fn charset_on(lcf: &CharsetLocConf) -> bool {
    !matches!(lcf.charset, None | Some(CharsetRef::Off))
}

impl BodyFilter for CharsetBodyFilter {
    fn wanted_in(&self, loc: &Location) -> bool {
        charset_on(loc.conf(&KEY))
    }

    fn body_filter(&self, r: &mut Request, chain: Chain, next: NextBody<'_>) -> FilterResult {
        let Some(table) = r.ctx::<_, _, _, CharsetCtx>(&KEY).map(|c| c.table.clone()) else {
            return next.call(r, chain);
        };
        let mut out = Chain::new();
        for b in chain {
            recode_buf(&table, b, &mut out).map_err(|e| FilterError(format!("pread() failed ({e})")))?;
        }
        next.call(r, out)
    }
}

/// Forgets the recoding of this response (an error page replaces it).
pub(crate) fn forget(r: &mut Request) {
    let _ = r.take_ctx::<_, _, _, CharsetCtx>(&KEY);
}

impl HttpModule for CharsetModule {
    fn name(&self) -> &'static str {
        "charset"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        let any = C::HTTP_ANY | C::HTTP_LIF;
        vec![
            Directive::new(
                "charset",
                any,
                Args::TAKE1,
                Level::Loc,
                custom(|cx, c: &mut CharsetLocConf, s| {
                    let v = set_charset_ref(cx, s, true)?;
                    store(&mut c.charset, v, s)
                }),
            ),
            Directive::new(
                "charset_map",
                C::HTTP_MAIN,
                Args::BLOCK | Args::TAKE2,
                Level::Main,
                custom(|_, m: &mut CharsetMainConf, s| charset_map(m, s)),
            ),
            Directive::new(
                "charset_types",
                C::HTTP_ANY,
                Args::MORE1,
                Level::Loc,
                custom(|_, c: &mut CharsetLocConf, s| {
                    let types = s.args.iter().map(|a| a.value.to_ascii_lowercase()).collect();
                    store(&mut c.types, types, s)
                }),
            ),
            Directive::new(
                "override_charset",
                any,
                Args::FLAG,
                Level::Loc,
                flag(|c: &mut CharsetLocConf| &mut c.override_charset),
            ),
            Directive::new(
                "source_charset",
                any,
                Args::TAKE1,
                Level::Loc,
                custom(|cx, c: &mut CharsetLocConf, s| {
                    let v = set_charset_ref(cx, s, false)?;
                    store(&mut c.source_charset, v, s)
                }),
            ),
        ]
    }

    fn create_main_conf(&self) -> AnyConf {
        Box::new(CharsetMainConf::default())
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(CharsetLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &CharsetLocConf = downcast(parent);
        let c: &mut CharsetLocConf = downcast_mut(child);
        if c.charset.is_none() {
            c.charset.clone_from(&p.charset);
        }
        if c.source_charset.is_none() {
            c.source_charset.clone_from(&p.source_charset);
        }
        c.override_charset = c.override_charset.or(p.override_charset);
        if c.types.is_none() {
            c.types.clone_from(&p.types);
        }
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.push_header_filter(Arc::new(CharsetHeaderFilter));
        cf.push_body_filter(Arc::new(CharsetBodyFilter));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::conf::{Arg, Origin};
    use std::path::Path;

    fn stmt(name: &str, args: &[&str], block: Option<Vec<Statement>>) -> Statement {
        Statement {
            name: name.into(),
            args: args.iter().map(|a| Arg { value: a.to_string(), quoted: false }).collect(),
            block,
            origin: Origin { file: Arc::from(Path::new("/t.conf")), line: 7 },
        }
    }

    fn map_block(src: &str, dst: &str, lines: &[(&str, &str)]) -> Statement {
        let block = lines.iter().map(|(a, b)| stmt(a, &[b], None)).collect();
        stmt("charset_map", &[src, dst], Some(block))
    }

    #[test]
    fn maps_recode_both_ways() {
        let mut m = CharsetMainConf::default();
        charset_map(&mut m, &map_block("B", "A", &[("58", "59")])).unwrap();
        let (a, b) = (m.find(b"a").unwrap(), m.find(b"B").unwrap());
        let b2a = m.table(b, a).unwrap();
        assert_eq!(&recode(&b2a, b"X001XXXXXX").unwrap()[..], b"Y001YYYYYY");
        assert!(recode(&b2a, b"plain").is_none(), "unchanged text is not copied");
        let a2b = m.table(a, b).unwrap();
        assert_eq!(&recode(&a2b, b"Y").unwrap()[..], b"X");
        assert_eq!(a2b[0xC0], b'?', "unmapped high bytes become '?'");
    }

    #[test]
    fn map_errors_read_like_nginx() {
        let mut m = CharsetMainConf::default();
        let e = charset_map(&mut m, &map_block("A", "a", &[])).unwrap_err();
        assert_eq!(e, "\"charset_map\" between the same charsets \"A\" and \"a\"".into());
        let e = charset_map(&mut m, &map_block("utf-8", "koi8-r", &[])).unwrap_err();
        assert_eq!(e, "\"charset_map\" with \"utf-8\" charset should be given in the second column".into());
        charset_map(&mut m, &map_block("B", "A", &[])).unwrap();
        let e = charset_map(&mut m, &map_block("A", "B", &[])).unwrap_err();
        assert_eq!(e, "duplicate \"charset_map\" between \"A\" and \"B\"".into());
        let e = charset_map(&mut m, &map_block("C", "D", &[("1FF", "20")])).unwrap_err();
        assert!(matches!(e, SetError::Located(ref c) if c.to_string().contains("invalid value \"1FF\"")), "{e:?}");
        charset_map(&mut m, &map_block("koi8-r", "utf-8", &[("C0", "D18E")])).unwrap();
        let (k, u) = (m.find(b"koi8-r").unwrap(), m.find(b"UTF-8").unwrap());
        assert_eq!(m.table(k, u).err(), Some(true), "utf-8 maps are read but not used");
        assert_eq!(m.table(k, m.find(b"A").unwrap()).err(), Some(false));
    }

    #[test]
    fn content_type_parts() {
        assert_eq!(split_content_type(b"text/HTML"), ("text/html".to_string(), None));
        assert_eq!(split_content_type(b"text/html; Charset=\"B\""), ("text/html".to_string(), Some(b"B".to_vec())));
        assert_eq!(split_content_type(b"text/plain;foo=bar"), ("text/plain".to_string(), None));
    }

    #[test]
    fn file_regions_are_recoded_in_pieces() {
        let path = std::env::temp_dir().join(format!("sluice-charset-{}", std::process::id()));
        let data: Vec<u8> = (0..100_000u32).map(|i| if i % 3 == 0 { b'X' } else { b'a' }).collect();
        std::fs::write(&path, &data).unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        let mut table = [0u8; 256];
        for (i, t) in table.iter_mut().enumerate() {
            *t = i as u8;
        }
        table[b'X' as usize] = b'Y';
        let mut out = Chain::new();
        recode_buf(&table, Buf::file(file, 10, 99_990).with_last(), &mut out).unwrap();
        assert!(out.is_last());
        assert!(out.buf_count() > 3);
        let expect: Vec<u8> = data[10..].iter().map(|&c| if c == b'X' { b'Y' } else { c }).collect();
        assert_eq!(out.to_vec().unwrap(), expect);
    }
}
