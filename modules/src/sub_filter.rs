//! The sub module: replaces strings in response bodies as they stream, as
//! nginx's `ngx_http_sub_filter_module` (its `-V` name is `sub`).
//!
//! ```text
//! location / {
//!     sub_filter '<a href="http://127.0.0.1:8080/' '<a href="https://$host/';
//!     sub_filter '</body>' '<script src="/x.js"></script></body>';
//!     sub_filter_once off;             # default on: each string once
//!     sub_filter_types text/css;       # text/html always; `*` for any
//!     sub_filter_last_modified on;     # default off: drop Last-Modified
//! }
//! ```
//!
//! Several `sub_filter` pairs may be given at one level; a level with any
//! replaces the outer level's list (they are not merged, as in nginx). The
//! search is ASCII case-insensitive. Both strings may contain variables: the
//! search strings are evaluated when the response head passes (an empty one
//! is dropped), a replacement when first needed, once per response. The
//! matching rules (leftmost, then first written; `once` per string) are in
//! [`matcher`].
//!
//! A header filter and a body filter, above `charset` and (once it exists)
//! `gzip`: the strings are searched in the body as the handler produced it,
//! before it is recoded or compressed. The header filter leaves alone
//! responses with no search strings, an empty body, a type not in
//! `sub_filter_types`, or a `Content-Encoding` (sluice's addition: the
//! strings cannot be found in compressed bytes). Otherwise the length
//! changes, so `Content-Length` goes; with `sub_filter_last_modified off`
//! `Last-Modified` and `ETag` go too, with `on` the `ETag` becomes weak.
//! A HEAD response gets the same head as the GET would.
//!
//! Per-request state ([`SubFilterCtx`]): the matcher's state (at most the
//! longest search string minus one byte held back), the replacements once
//! evaluated, and the input not yet scanned. Unchanged runs of memory bufs
//! go on as slices of the input (no copy). A file region is read in 32 KiB
//! pieces, each passed on as soon as it is scanned; when downstream answers
//! Again with the end of the response already in hand, the rest waits in
//! the context and the filter's own task (see [`SubFilterResume`]) carries
//! on when the socket drains, so a large file costs one piece of memory.
//! `flush` passes on everything but a possible partial match (nginx keeps
//! that too); `last_buf` ends it.
//!
//! Not done: subrequests (none exist yet: every response is treated as the
//! main request's).

pub mod matcher;

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sluice_core::buf::Payload;
use sluice_core::conf::directive::{custom, duplicate, flag, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_core::log::Level as LogLevel;
use sluice_core::{log_error, Buf, Chain};
use sluice_http::location::Location;
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::variables::ComplexValue;
use sluice_http::{
    AnyConf, BodyFilter, ConfKey, FilterError, FilterResult, FilterStatus, Flow, HeaderFilter, HttpConfCx, HttpModule,
    ModuleIndex, NextBody, NextHeader, PostConf, Request, Resume, Task,
};

pub use matcher::{Output, Patterns, Scan, MAX_PATTERNS};

/// How much of a file region is read and scanned at a time.
const READ_PIECE: u64 = 32 * 1024;

/// The type `sub_filter_types` always includes.
const DEFAULT_TYPE: &str = "text/html";

/// One `sub_filter` line.
#[derive(Clone, Debug)]
struct Pair {
    /// Lower-cased when it has no variables.
    search: ComplexValue,
    replacement: ComplexValue,
}

/// A level's `sub_filter` list, with its strings compiled when they have
/// no variables.
#[derive(Debug)]
pub struct SubPairs {
    pairs: Vec<Pair>,
    fixed: Option<Arc<Patterns>>,
}

impl SubPairs {
    fn new(pairs: Vec<Pair>) -> SubPairs {
        let literal: Option<Vec<Bytes>> = pairs.iter().map(|p| p.search.as_literal().cloned()).collect();
        let fixed = literal.and_then(|l| Patterns::new(&l)).map(Arc::new);
        SubPairs { pairs, fixed }
    }
}

/// `sub_filter_types`.
#[derive(Clone, Debug)]
enum Types {
    Any,
    /// Lower-case; `text/html` is always among them.
    List(Vec<String>),
}

/// Location conf.
#[derive(Debug, Default)]
pub struct SubFilterLocConf {
    /// This level's own `sub_filter` lines (configuration time only).
    own: Vec<Pair>,
    /// The list in force: this level's, or the outer level's.
    pairs: Option<Arc<SubPairs>>,
    once: Option<bool>,
    last_modified: Option<bool>,
    types: Option<Types>,
}

/// The per-request state.
#[derive(Debug)]
pub struct SubFilterCtx {
    pats: Arc<Patterns>,
    /// The replacement of each search string, in the order of `pats`.
    values: Vec<ComplexValue>,
    /// Replacements evaluated so far (once per response).
    subs: Vec<Option<Bytes>>,
    scan: Scan,
    out: Output,
    /// Input received and not yet scanned.
    input: Chain,
    /// `last_buf` went on, or scanning failed: pass everything through.
    finished: bool,
}

/// The module's key.
pub static KEY: ConfKey<(), (), SubFilterLocConf> = ConfKey::new();

/// The sub module.
#[derive(Debug)]
pub struct SubFilterModule;

fn set_sub_filter(cx: &mut HttpConfCx, c: &mut SubFilterLocConf, stmt: &Statement) -> Result<(), SetError> {
    if stmt.arg(0).is_empty() {
        return Err("empty search pattern".into());
    }
    if c.own.len() == MAX_PATTERNS {
        return Err(format!("number of search patterns exceeds {MAX_PATTERNS}").into());
    }
    let search = cx.compile(stmt.arg(0))?;
    let search = match search.as_literal() {
        Some(l) => ComplexValue::literal(l.to_ascii_lowercase()),
        None => search,
    };
    c.own.push(Pair { search, replacement: cx.compile(stmt.arg(1))? });
    Ok(())
}

fn set_types(c: &mut SubFilterLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.types.is_some() {
        return Err(duplicate(stmt).into());
    }
    let mut list = vec![DEFAULT_TYPE.to_string()];
    for a in &stmt.args {
        if a.value == "*" {
            c.types = Some(Types::Any);
            return Ok(());
        }
        let t = a.value.to_ascii_lowercase();
        if !list.contains(&t) {
            list.push(t);
        }
    }
    c.types = Some(Types::List(list));
    Ok(())
}

/// Whether the response's type is one `sub_filter_types` names.
fn type_listed(types: Option<&Types>, content_type: Option<&Bytes>) -> bool {
    let list = match types {
        Some(Types::Any) => return true,
        Some(Types::List(l)) => l.as_slice(),
        None => &[],
    };
    let Some(ct) = content_type else { return false };
    let ty = ct.split(|&c| c == b';').next().unwrap_or_default().trim_ascii();
    ty.eq_ignore_ascii_case(DEFAULT_TYPE.as_bytes()) || list.iter().any(|t| ty.eq_ignore_ascii_case(t.as_bytes()))
}

/// The patterns and replacements for this response; `None` when every
/// search string evaluated to nothing.
fn response_patterns(r: &Request, set: &SubPairs) -> Option<(Arc<Patterns>, Vec<ComplexValue>)> {
    let values = |pairs: &mut dyn Iterator<Item = &Pair>| pairs.map(|p| p.replacement.clone()).collect();
    if let Some(fixed) = &set.fixed {
        return Some((fixed.clone(), values(&mut set.pairs.iter())));
    }
    let mut searches = Vec::with_capacity(set.pairs.len());
    let mut kept = Vec::with_capacity(set.pairs.len());
    for p in &set.pairs {
        let s = p.search.eval(r);
        if !s.is_empty() {
            searches.push(s);
            kept.push(p);
        }
    }
    let pats = Patterns::new(&searches)?;
    Some((Arc::new(pats), values(&mut kept.into_iter())))
}

/// Makes the response's `ETag` weak (nginx's `ngx_http_weak_etag`): a
/// strong one gets `W/`, one that is not a valid tag goes.
fn weaken_etag(r: &mut Request) {
    let Some(tag) = r.headers_out.get("ETag") else { return };
    if tag.len() > 2 && tag.starts_with(b"W/") {
        return;
    }
    if !tag.starts_with(b"\"") {
        r.headers_out.remove("ETag");
        return;
    }
    let mut weak = BytesMut::with_capacity(tag.len() + 2);
    weak.extend_from_slice(b"W/");
    weak.extend_from_slice(&tag);
    r.headers_out.set(Bytes::from_static(b"ETag"), weak.freeze());
}

/// The header filter.
struct SubHeaderFilter;

impl HeaderFilter for SubHeaderFilter {
    fn wanted_in(&self, loc: &Location) -> bool {
        loc.conf(&KEY).pairs.is_some()
    }

    fn header_filter(&self, r: &mut Request, next: NextHeader<'_>) -> FilterResult {
        let lcf = r.loc_conf(&KEY);
        let Some(set) = lcf.pairs.clone() else {
            return next.call(r);
        };
        let encoded = r.headers_out.get("Content-Encoding").is_some_and(|v| !v.is_empty());
        if r.headers_out.content_length == Some(0)
            || encoded
            || !type_listed(lcf.types.as_ref(), r.headers_out.content_type.as_ref())
        {
            return next.call(r);
        }
        let (once, last_modified) = (lcf.once.unwrap_or(true), lcf.last_modified.unwrap_or(false));
        let Some((pats, values)) = response_patterns(r, &set) else {
            return next.call(r);
        };
        r.headers_out.content_length = None;
        if last_modified {
            weaken_etag(r);
        } else {
            r.headers_out.last_modified = None;
            r.headers_out.remove("ETag");
        }
        if !r.header_only {
            let ctx = SubFilterCtx {
                scan: Scan::new(&pats, once),
                subs: vec![None; values.len()],
                values,
                pats,
                out: Output::new(),
                input: Chain::new(),
                finished: false,
            };
            r.set_ctx(&KEY, ctx);
        }
        next.call(r)
    }
}

/// Reads a file region (at most [`READ_PIECE`] long) into memory.
fn read_region(b: &Buf) -> Result<Bytes, FilterError> {
    let Payload::File(f) = &b.payload else {
        return Ok(b.as_bytes().cloned().unwrap_or_default());
    };
    let mut piece = vec![0u8; f.len as usize];
    f.file.read_exact_at(&mut piece, f.offset).map_err(|e| FilterError(format!("pread() failed ({e})")))?;
    Ok(Bytes::from(piece))
}

/// What one step of the body filter's loop produced.
#[derive(Debug)]
enum Step {
    /// No input left.
    Idle,
    /// A piece was scanned; its output waits for more.
    Hold,
    /// Output to pass on now.
    Send(Chain),
}

impl SubFilterCtx {
    /// Scans one buf (a file region at most [`READ_PIECE`] long) into
    /// `out`; `eval` evaluates a replacement.
    fn scan_buf(&mut self, b: &Buf, eval: &dyn Fn(&ComplexValue) -> Bytes) -> Result<(), FilterError> {
        let data = read_region(b)?;
        let (values, subs) = (&self.values, &mut self.subs);
        let mut replace = |i: usize| subs[i].get_or_insert_with(|| eval(&values[i])).clone();
        if !data.is_empty() {
            self.scan.feed(&self.pats, data, &mut replace, &mut self.out);
        }
        if b.last_buf || b.last_in_chain {
            self.scan.finish(&mut self.out);
        }
        Ok(())
    }

    /// Takes the next piece of input: a whole memory buf, or the first
    /// [`READ_PIECE`] bytes of a file region (the rest stays in front).
    fn next_piece(&mut self) -> Option<Buf> {
        let mut b = self.input.pop_front()?;
        if !b.in_memory() && b.len() > READ_PIECE {
            let head = b.split_to(READ_PIECE);
            self.input.push_front(b);
            return Some(head);
        }
        Some(b)
    }

    /// The collected output as a chain, ending with a flag-only buf that
    /// carries `from`'s flags.
    fn take_chain(&mut self, from: &Buf) -> Chain {
        let mut chain: Chain = Chain::new();
        for b in self.out.take() {
            chain.push(Buf::mem(b));
        }
        if from.has_flags() {
            let mut flags = Buf::from_static(b"");
            (flags.flush, flags.last_buf, flags.last_in_chain) = (from.flush, from.last_buf, from.last_in_chain);
            chain.push(flags);
        }
        chain
    }

    /// Scans the next piece; output goes on after every file piece (so a
    /// file costs one piece of memory), every flag, and at the end of the
    /// input.
    fn step(&mut self, eval: &dyn Fn(&ComplexValue) -> Bytes) -> Result<Step, FilterError> {
        let Some(b) = self.next_piece() else {
            return Ok(Step::Idle);
        };
        if let Err(e) = self.scan_buf(&b, eval) {
            self.finished = true;
            return Err(e);
        }
        if !(!b.in_memory() || b.has_flags() || self.input.is_empty()) {
            return Ok(Step::Hold);
        }
        self.finished |= b.last_buf;
        let chain = self.take_chain(&b);
        Ok(if chain.is_empty() { Step::Hold } else { Step::Send(chain) })
    }

    /// Scans the input and passes the output on. Stops early (answering
    /// Again) only when downstream is full and the input already holds the
    /// response's end: the task it installs resumes the scan when the
    /// socket drains. Otherwise the producer drives it with more input.
    fn run(&mut self, r: &mut Request, next: NextBody<'_>) -> FilterResult {
        let mut status = FilterStatus::Ok;
        let mut sent = false;
        loop {
            let chain = match self.step(&|v| v.eval(r))? {
                Step::Idle => break,
                Step::Hold => continue,
                Step::Send(chain) => chain,
            };
            sent = true;
            if next.call(r, chain)? == FilterStatus::Again {
                status = FilterStatus::Again;
                if !self.input.is_empty() && self.input.is_last() {
                    r.set_task(Box::new(SubFilterResume));
                    return Ok(FilterStatus::Again);
                }
            }
        }
        if !sent {
            // Lets the filters below make progress of their own.
            return next.call(r, Chain::new());
        }
        Ok(status)
    }
}

/// The body filter.
struct SubBodyFilter;

impl BodyFilter for SubBodyFilter {
    fn wanted_in(&self, loc: &Location) -> bool {
        loc.conf(&KEY).pairs.is_some()
    }

    fn body_filter(&self, r: &mut Request, chain: Chain, next: NextBody<'_>) -> FilterResult {
        if !matches!(r.ctx::<_, _, _, SubFilterCtx>(&KEY), Some(c) if !c.finished) {
            return next.call(r, chain);
        }
        let Some(mut ctx) = r.take_ctx::<_, _, _, SubFilterCtx>(&KEY) else {
            return next.call(r, chain);
        };
        ctx.input.append(chain);
        let res = ctx.run(r, next);
        r.set_ctx(&KEY, ctx);
        res
    }
}

/// The task that carries on a response whose end the body filter holds
/// while the socket drains: it runs the body filters again with no new
/// input (nginx's writer calling the output filters with an empty chain).
#[derive(Debug)]
pub struct SubFilterResume;

impl Task for SubFilterResume {
    fn resume(&mut self, r: &mut Request, why: Resume) -> Flow {
        if why != Resume::Writable {
            return Flow::Again;
        }
        match r.output(Chain::new()) {
            Ok(_) if r.ctx::<_, _, _, SubFilterCtx>(&KEY).is_some_and(|c| !c.input.is_empty()) => Flow::Again,
            Ok(_) => Flow::Done,
            Err(e) => {
                log_error!(LogLevel::Error, r.log_id(), "{}", e.0);
                Flow::Status(500)
            }
        }
    }
}

impl HttpModule for SubFilterModule {
    fn name(&self) -> &'static str {
        "sub"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![
            Directive::new("sub_filter", C::HTTP_ANY, Args::TAKE2, Level::Loc, custom(set_sub_filter)),
            Directive::new(
                "sub_filter_types",
                C::HTTP_ANY,
                Args::MORE1,
                Level::Loc,
                custom(|_, c: &mut SubFilterLocConf, s| set_types(c, s)),
            ),
            Directive::new(
                "sub_filter_once",
                C::HTTP_ANY,
                Args::FLAG,
                Level::Loc,
                flag(|c: &mut SubFilterLocConf| &mut c.once),
            ),
            Directive::new(
                "sub_filter_last_modified",
                C::HTTP_ANY,
                Args::FLAG,
                Level::Loc,
                flag(|c: &mut SubFilterLocConf| &mut c.last_modified),
            ),
        ]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(SubFilterLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &SubFilterLocConf = downcast(parent);
        let c: &mut SubFilterLocConf = downcast_mut(child);
        c.once = c.once.or(p.once);
        c.last_modified = c.last_modified.or(p.last_modified);
        if c.types.is_none() {
            c.types.clone_from(&p.types);
        }
        if !c.own.is_empty() {
            c.pairs = Some(Arc::new(SubPairs::new(c.own.clone())));
        } else if let Some(set) = &p.pairs {
            c.pairs = Some(set.clone());
        } else if !p.own.is_empty() {
            // The http level is never merged itself: compile its list here.
            c.pairs = Some(Arc::new(SubPairs::new(p.own.clone())));
        }
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.push_header_filter(Arc::new(SubHeaderFilter));
        cf.push_body_filter(Arc::new(SubBodyFilter));
        Ok(())
    }
}

#[cfg(test)]
#[path = "sub_filter_tests.rs"]
mod tests;
