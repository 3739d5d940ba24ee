//! The `quote` module: prefixes every line of a text response, as a mail
//! client quotes a message.
//!
//! ```text
//! location /letters/ {
//!     quote        on;     # default off; http, server, location
//!     quote_prefix "| ";   # default "> "; 1 to 64 bytes
//! }
//! ```
//!
//! Filters: a header filter and a body filter, pushed by this module's
//! postconfiguration. The module is appended after `sluice::modules()`, so
//! both run before every filter of sluice's own — above `chunked`, which
//! must see that the length became unknown, and above the header writer.
//!
//! The header filter picks the responses to quote: `quote on` in the
//! location, status 200, `Content-Type: text/plain`. For those it drops
//! `Content-Length` (the body grows by an amount known only at its end, so
//! HTTP/1.1 gets it chunked), `Last-Modified` and `ETag` (they describe the
//! file, not the quoted text), and stores a [`QuoteCtx`] in the request.
//! Every other response passes untouched.
//!
//! Per-request state: [`QuoteCtx`], the prefix and one bit — whether the
//! next byte starts a line. Memory payload is never copied: a line is a
//! `Bytes` slice of the buf it came in, and each prefix is a reference to
//! the same shared `Bytes`. A file region is read in [`READ_PIECE`] pieces.
//! A body that does not end with a newline gets one before `last_buf`.
//!
//! Not done: other types than `text/plain` (a `quote_types` would follow
//! `charset_types`), and bounded memory for file regions (see
//! [`quote_chain`]).

use std::any::Any;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use memchr::memchr;
use sluice_core::buf::{FileRegion, Payload};
use sluice_core::conf::directive::{checked, flag, string, Args, Contexts as C, Directive, Level};
use sluice_core::{Buf, Chain};
use sluice_http::location::Location;
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::{
    AnyConf, BodyFilter, ConfKey, FilterError, FilterResult, HeaderFilter, HttpConfCx, HttpModule, ModuleIndex,
    NextBody, NextHeader, PostConf, Request,
};

/// Location conf. `None` means "not set at this level": merge fills it
/// from the enclosing level, then from the default.
#[derive(Debug, Default)]
pub struct QuoteLocConf {
    /// `quote on|off`.
    pub on: Option<bool>,
    /// `quote_prefix string`.
    pub prefix: Option<String>,
}

/// The prefix when `quote_prefix` is not given.
pub const DEFAULT_PREFIX: &str = "> ";

/// The longest `quote_prefix`.
pub const MAX_PREFIX: usize = 64;

/// How much of a file region is read at a time.
pub const READ_PIECE: u64 = 32 * 1024;

/// The state of one quoted response, kept between calls of the body
/// filter in the request's context slot for this module.
#[derive(Debug)]
pub struct QuoteCtx {
    /// The prefix, shared by every line (cloning it is a reference count).
    pub prefix: Bytes,
    /// The next payload byte starts a line.
    pub at_line_start: bool,
}

/// The module's key: no main or server conf, a [`QuoteLocConf`] per
/// location. `r.loc_conf(&KEY)` is typed and O(1).
pub static KEY: ConfKey<(), (), QuoteLocConf> = ConfKey::new();

/// The `quote` module.
#[derive(Debug)]
pub struct QuoteModule;

impl HttpModule for QuoteModule {
    fn name(&self) -> &'static str {
        "quote"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![
            Directive::new("quote", C::HTTP_ANY, Args::FLAG, Level::Loc, flag(|c: &mut QuoteLocConf| &mut c.on)),
            Directive::new(
                "quote_prefix",
                C::HTTP_ANY,
                Args::TAKE1,
                Level::Loc,
                checked(
                    string(|c: &mut QuoteLocConf| &mut c.prefix),
                    |c: &mut QuoteLocConf| &mut c.prefix,
                    |p: &String| check_prefix(p),
                ),
            ),
        ]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(QuoteLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn Any, child: &mut dyn Any) -> Result<(), String> {
        let p: &QuoteLocConf = downcast(parent);
        let c: &mut QuoteLocConf = downcast_mut(child);
        c.on = Some(c.on.or(p.on).unwrap_or(false));
        if c.prefix.is_none() {
            c.prefix = Some(p.prefix.clone().unwrap_or_else(|| DEFAULT_PREFIX.to_string()));
        }
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.push_header_filter(Arc::new(QuoteHeaderFilter));
        cf.push_body_filter(Arc::new(QuoteBodyFilter));
        Ok(())
    }
}

/// The post-check of `quote_prefix`: the message follows the directive's
/// name, as in `"quote_prefix" directive must not be empty`.
fn check_prefix(prefix: &str) -> Result<(), String> {
    match prefix.len() {
        0 => Err("must not be empty".to_string()),
        n if n > MAX_PREFIX => Err(format!("is longer than {MAX_PREFIX} bytes")),
        _ => Ok(()),
    }
}

/// True for `text/plain`, with or without parameters (`; charset=utf-8`).
pub fn is_text_plain(content_type: &[u8]) -> bool {
    let kind = content_type.split(|&b| b == b';').next().unwrap_or_default();
    kind.trim_ascii().eq_ignore_ascii_case(b"text/plain")
}

/// The header filter: decides whether this response is quoted.
#[derive(Debug)]
struct QuoteHeaderFilter;

impl HeaderFilter for QuoteHeaderFilter {
    /// Locations without `quote on` leave both filters out of their chains.
    fn wanted_in(&self, loc: &Location) -> bool {
        loc.conf(&KEY).on == Some(true)
    }

    fn header_filter(&self, r: &mut Request, next: NextHeader<'_>) -> FilterResult {
        let conf = r.loc_conf(&KEY);
        let text = r.headers_out.content_type.as_deref().is_some_and(is_text_plain);
        if conf.on != Some(true) || r.headers_out.status != 200 || !text {
            return next.call(r);
        }
        let prefix = Bytes::from(conf.prefix.clone().unwrap_or_default());
        // The quoted body is longer by an amount known only at its end.
        r.headers_out.content_length = None;
        // The validators describe the original, not the quoted text.
        r.headers_out.last_modified = None;
        r.headers_out.remove("ETag");
        r.set_ctx(&KEY, QuoteCtx { prefix, at_line_start: true });
        next.call(r)
    }
}

/// The body filter: quotes what the header filter chose.
#[derive(Debug)]
struct QuoteBodyFilter;

impl BodyFilter for QuoteBodyFilter {
    fn wanted_in(&self, loc: &Location) -> bool {
        loc.conf(&KEY).on == Some(true)
    }

    fn body_filter(&self, r: &mut Request, chain: Chain, next: NextBody<'_>) -> FilterResult {
        let Some(ctx) = r.ctx_mut::<_, _, _, QuoteCtx>(&KEY) else {
            return next.call(r, chain);
        };
        let out = quote_chain(ctx, chain).map_err(|e| FilterError(format!("quote: pread() failed ({e})")))?;
        // Again from below goes up unchanged: the chain was accepted, and
        // the producer waits for the socket before it sends more.
        next.call(r, out)
    }
}

/// Quotes one chain: payload bufs become prefix and line-slice bufs, and
/// each input buf's flags stay at the place where its payload ended.
///
/// Memory: what comes in goes out in the same call; nothing is held back.
/// A file region is read whole, in [`READ_PIECE`] pieces, into memory: a
/// body filter is not called again when the socket drains, so it cannot
/// read the next piece later.
pub fn quote_chain(ctx: &mut QuoteCtx, chain: Chain) -> std::io::Result<Chain> {
    let mut out = Chain::new();
    for buf in chain {
        match &buf.payload {
            Payload::Mem(bytes) => quote_bytes(ctx, bytes, &mut out),
            Payload::File(region) => quote_file(ctx, region, &mut out)?,
        }
        if buf.last_buf && !ctx.at_line_start {
            out.push(Buf::from_static(b"\n"));
            ctx.at_line_start = true;
        }
        if buf.has_flags() {
            out.push(flags_of(&buf));
        }
    }
    Ok(out)
}

/// Appends `bytes` quoted: a prefix before each line's first byte, then
/// the line as a slice of `bytes` (no copy). The prefix is written only
/// when a byte of the line is there, so a body ending with a newline gets
/// no dangling prefix.
fn quote_bytes(ctx: &mut QuoteCtx, bytes: &Bytes, out: &mut Chain) {
    let mut start = 0;
    while start < bytes.len() {
        if ctx.at_line_start {
            out.push(Buf::mem(ctx.prefix.clone()));
        }
        let end = match memchr(b'\n', &bytes[start..]) {
            Some(i) => start + i + 1,
            None => bytes.len(),
        };
        ctx.at_line_start = bytes[end - 1] == b'\n';
        out.push(Buf::mem(bytes.slice(start..end)));
        start = end;
    }
}

/// Reads a file region piece by piece and quotes each piece.
fn quote_file(ctx: &mut QuoteCtx, region: &FileRegion, out: &mut Chain) -> std::io::Result<()> {
    let mut pos = 0;
    while pos < region.len {
        let n = (region.len - pos).min(READ_PIECE);
        let mut piece = vec![0; n as usize];
        region.file.read_exact_at(&mut piece, region.offset + pos)?;
        quote_bytes(ctx, &Bytes::from(piece), out);
        pos += n;
    }
    Ok(())
}

/// An empty buf with `buf`'s flags.
fn flags_of(buf: &Buf) -> Buf {
    let mut flags = Buf::from_static(b"");
    (flags.flush, flags.last_buf, flags.last_in_chain) = (buf.flush, buf.last_buf, buf.last_in_chain);
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(prefix: &'static str) -> QuoteCtx {
        QuoteCtx { prefix: Bytes::from_static(prefix.as_bytes()), at_line_start: true }
    }

    /// Runs `input` through the filter as the given pieces, one chain per
    /// piece, the last with `last_buf`; returns the output bytes and
    /// whether exactly the last output chain ended the response.
    fn quote_pieces(prefix: &'static str, pieces: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut c = ctx(prefix);
        let mut bytes = Vec::new();
        let mut last_seen_early = false;
        let mut ended = false;
        for (i, p) in pieces.iter().enumerate() {
            let mut buf = Buf::mem(Bytes::copy_from_slice(p));
            if i + 1 == pieces.len() {
                buf = buf.with_last();
            }
            let out = quote_chain(&mut c, Chain::one(buf)).expect("memory only");
            bytes.extend(out.to_vec().expect("memory only"));
            last_seen_early |= ended;
            ended = out.is_last();
        }
        (bytes, ended && !last_seen_early)
    }

    #[test]
    fn every_line_gets_the_prefix() {
        let (out, ended) = quote_pieces("> ", &[b"one\ntwo\n\nfour\n"]);
        assert_eq!(String::from_utf8_lossy(&out), "> one\n> two\n> \n> four\n");
        assert!(ended);
    }

    #[test]
    fn a_missing_final_newline_is_added_before_last_buf() {
        let (out, _) = quote_pieces("> ", &[b"no newline"]);
        assert_eq!(out, b"> no newline\n");
        let (out, _) = quote_pieces("> ", &[b""]);
        assert_eq!(out, b"", "an empty body stays empty");
    }

    #[test]
    fn every_split_into_two_and_three_pieces_gives_the_same_output() {
        let input: &[u8] = b"ab\n\nc\nlonger line here\nend";
        let (want, _) = quote_pieces("| ", &[input]);
        assert_eq!(String::from_utf8_lossy(&want), "| ab\n| \n| c\n| longer line here\n| end\n");
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let (got, ended) = quote_pieces("| ", &[&input[..i], &input[i..j], &input[j..]]);
                assert_eq!(got, want, "split at {i} and {j}");
                assert!(ended, "split at {i} and {j}");
            }
        }
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_output() {
        let input: &[u8] = b"x\ny\n\nz";
        let pieces: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(quote_pieces("> ", &pieces).0, b"> x\n> y\n> \n> z\n");
    }

    #[test]
    fn lines_are_slices_of_the_input_not_copies() {
        let payload = Bytes::from_static(b"first\nsecond\n");
        let out = quote_chain(&mut ctx("> "), Chain::one(Buf::mem(payload.clone()))).expect("memory");
        let bufs = out.bufs();
        assert_eq!(bufs.len(), 4, "prefix, line, prefix, line");
        let first = bufs[1].as_bytes().expect("memory");
        let second = bufs[3].as_bytes().expect("memory");
        assert_eq!(first.as_ptr(), payload.as_ptr());
        assert_eq!(second.as_ptr(), payload[6..].as_ptr());
    }

    #[test]
    fn flags_stay_where_their_payload_ended() {
        let mut c = ctx("> ");
        let mut chain = Chain::one(Buf::mem(&b"a\nb"[..]).with_flush());
        chain.push(Buf::mem(&b"c\n"[..]));
        let out = quote_chain(&mut c, chain).expect("memory");
        let flush_at = out.bufs().iter().position(|b| b.flush).expect("flush kept");
        let before: u64 = out.bufs()[..flush_at].iter().map(Buf::len).sum();
        assert_eq!(before, "> a\n> b".len() as u64, "the flush follows the payload of its own buf");
        assert_eq!(out.to_vec().expect("memory"), b"> a\n> bc\n");
        assert!(!out.is_last());
    }

    #[test]
    fn flag_only_chains_pass_as_flags() {
        let out = quote_chain(&mut ctx("> "), Chain::one(Buf::flush())).expect("memory");
        assert_eq!(out.len(), 0);
        assert!(out.wants_flush());
        let out = quote_chain(&mut ctx("> "), Chain::one(Buf::last())).expect("memory");
        assert!(out.is_last());
        assert_eq!(out.len(), 0);
    }

    #[test]
    fn file_regions_are_read_in_pieces_across_line_ends() {
        let text: Vec<u8> = (0..20_000).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        let path = std::env::temp_dir().join(format!("quote-test-{}", std::process::id()));
        std::fs::write(&path, &text).expect("write temp file");
        let file = Arc::new(std::fs::File::open(&path).expect("open temp file"));
        std::fs::remove_file(&path).expect("remove temp file");
        assert!(text.len() as u64 > 3 * READ_PIECE, "several pieces");
        // The region starts inside line 0, so the first piece starts mid-line.
        let out = quote_chain(&mut ctx("> "), Chain::one(Buf::file(file, 2, text.len() as u64 - 2).with_last()))
            .expect("read");
        let mut want = b"> ne 0\n".to_vec();
        want.extend((1..20_000).flat_map(|i| format!("> line {i}\n").into_bytes()));
        assert_eq!(out.to_vec().expect("memory"), want);
        assert!(out.is_last());
    }

    #[test]
    fn text_plain_is_recognised_with_parameters_and_any_case() {
        assert!(is_text_plain(b"text/plain"));
        assert!(is_text_plain(b"Text/Plain; charset=utf-8"));
        assert!(!is_text_plain(b"text/html"));
        assert!(!is_text_plain(b"text/plainish"));
        assert!(!is_text_plain(b""));
    }

    #[test]
    fn prefix_bounds() {
        assert_eq!(check_prefix(""), Err("must not be empty".to_string()));
        assert_eq!(check_prefix(&"x".repeat(65)), Err("is longer than 64 bytes".to_string()));
        assert_eq!(check_prefix(&"x".repeat(64)), Ok(()));
    }

    #[test]
    fn merge_inherits_then_falls_back_to_the_defaults() {
        let m = QuoteModule;
        let parent = QuoteLocConf { on: Some(true), prefix: None };
        let mut child = QuoteLocConf::default();
        m.merge_loc_conf(&parent, &mut child).expect("merge");
        assert_eq!(child.on, Some(true));
        assert_eq!(child.prefix.as_deref(), Some(DEFAULT_PREFIX));
        let parent = QuoteLocConf { on: None, prefix: Some("| ".into()) };
        let mut child = QuoteLocConf { on: None, prefix: None };
        m.merge_loc_conf(&parent, &mut child).expect("merge");
        assert_eq!(child.on, Some(false));
        assert_eq!(child.prefix.as_deref(), Some("| "));
    }
}
