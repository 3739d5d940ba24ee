//! The rewrite module: `rewrite`, `return`, `set`, `if`, `break`,
//! `rewrite_log`, `uninitialized_variable_warn`.
//!
//! ```text
//! server {
//!     if ($host = old.example.com) { return 301 http://example.com$request_uri; }
//!     rewrite ^/blog/(\d+)$ /posts?id=$1 last;
//!     location /posts { set $kind post; if ($arg_draft) { return 403; } }
//!     location = /health { return 200 "ok\n"; }
//! }
//! ```
//!
//! As nginx's script engine does, each level's directives are compiled at
//! start-up into a list of steps run in the order written: the server's in
//! the server_rewrite phase, the location's in the rewrite phase (skipped
//! when no location matched, since the server's already ran). Steps are not
//! inherited by nested locations. A `rewrite` matches `$uri` (regexes are
//! compiled once); its captures feed `$1`..`$9` and named captures. A
//! replacement starting with `http://`, `https://` or `$scheme` is a 302
//! redirect; `last` stops the list and has the location looked up again,
//! `break` stops it and keeps the location; a rewrite without a flag changes
//! the URI and goes on. The request's arguments are appended to the
//! replacement's (after `&`), unless the replacement ends with `?`.
//!
//! `if (condition) { ... }` is an anonymous location whose confs are merged
//! from the enclosing ones: when the condition holds, the request switches
//! to it (so `root`, `add_header`, ... written inside apply) and the
//! rewrite directives inside run inline. `set` stores a per-request value
//! of a declared variable (kept across internal redirects).
//!
//! Per-request state: none beyond the variables' values. When the client's
//! URI had `%`-escapes, captures copied into the arguments are escaped
//! again (as nginx does); not done: the same for redirects.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use regex::bytes::Regex;
use sluice_core::conf::directive::{custom, flag, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_core::log::Level as LogLevel;
use sluice_http::location::{LocMatch, Location};
use sluice_http::variables::{ComplexValue, DeclaredGetter};
use sluice_http::{AnyConf, ConfKey, Flow, HttpConfCx, HttpModule, ModuleIndex, Phase, PostConf, PreConf, Request};

/// The rewrite module's main conf: the names of `set` variables, for the
/// "uninitialized" warning.
#[derive(Default)]
pub struct RewriteMainConf {
    set_names: Vec<String>,
}

/// The directives of one level, compiled (per server and location).
#[derive(Default)]
pub struct RewriteLocConf {
    steps: Arc<Vec<Step>>,
    /// `rewrite_log` (off).
    log: Option<bool>,
    /// `uninitialized_variable_warn` (on).
    uninit_warn: Option<bool>,
}

/// The module's key.
pub static KEY: ConfKey<RewriteMainConf, (), RewriteLocConf> = ConfKey::new();

/// The rewrite module.
#[derive(Debug)]
pub struct RewriteModule;

/// One compiled directive.
enum Step {
    Rewrite(Box<Rewrite>),
    Return(Return),
    Set {
        index: usize,
        value: ComplexValue,
    },
    /// `set` of a built-in variable that takes its value itself (`$args`,
    /// `$limit_rate`).
    SetBuiltin {
        set: sluice_http::variables::VarSetter,
        value: ComplexValue,
    },
    Break,
    If(Box<IfBlock>),
}

struct Return {
    code: u16,
    text: Option<ComplexValue>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RewriteFlag {
    None,
    Last,
    Break,
}

struct Rewrite {
    pattern: String,
    re: Regex,
    names: Vec<(String, usize)>,
    /// The replacement (the whole of it for a redirect, else up to `?`).
    uri: ComplexValue,
    /// The replacement's arguments (after its first `?`).
    args: Option<ComplexValue>,
    /// The replacement text has a `?` (a redirect joins with `&`).
    has_args: bool,
    /// Append the request's arguments (no trailing `?`).
    add_args: bool,
    redirect: Option<u16>,
    flag: RewriteFlag,
}

struct IfBlock {
    cond: Cond,
    /// Which anonymous location of the level the block is.
    loc: usize,
    steps: Vec<Step>,
}

enum FileTest {
    File,
    Dir,
    Exists,
    Exec,
}

enum Cond {
    /// True unless empty or "0".
    Value(ComplexValue),
    Equal {
        lhs: ComplexValue,
        rhs: ComplexValue,
        negative: bool,
    },
    Match {
        lhs: ComplexValue,
        re: Regex,
        names: Vec<(String, usize)>,
        negative: bool,
    },
    File {
        path: ComplexValue,
        test: FileTest,
        negative: bool,
    },
}

fn is_redirect(code: u16) -> bool {
    matches!(code, 301 | 302 | 303 | 307 | 308)
}

fn steps_mut(c: &mut RewriteLocConf) -> &mut Vec<Step> {
    // Steps are only shared once the configuration is frozen.
    if Arc::get_mut(&mut c.steps).is_none() {
        c.steps = Arc::new(Vec::new());
    }
    Arc::get_mut(&mut c.steps).expect("unshared while the configuration is read")
}

fn set_return(cx: &mut HttpConfCx, c: &mut RewriteLocConf, stmt: &Statement) -> Result<(), SetError> {
    let first = stmt.arg(0);
    let ret = match first.parse::<u16>() {
        Ok(code) if code <= 999 => Return {
            code,
            text: match stmt.args.get(1) {
                Some(t) => Some(cx.compile(t.as_str())?),
                None => None,
            },
        },
        _ if stmt.args.len() == 1
            && (first.starts_with("http://") || first.starts_with("https://") || first.starts_with('$')) =>
        {
            Return { code: 302, text: Some(cx.compile(first)?) }
        }
        _ => return Err(format!("invalid return code \"{first}\"").into()),
    };
    steps_mut(c).push(Step::Return(ret));
    Ok(())
}

fn compile_regex(cx: &mut HttpConfCx, pattern: &str, caseless: bool) -> Result<(Regex, Vec<(String, usize)>), String> {
    let re = sluice_http::regex_compat::compile(pattern, caseless)?;
    let names = sluice_http::regex_compat::names(&re);
    for (n, _) in &names {
        cx.vars.add_capture(n);
    }
    Ok((re, names))
}

fn set_rewrite(cx: &mut HttpConfCx, c: &mut RewriteLocConf, stmt: &Statement) -> Result<(), SetError> {
    let pattern = stmt.arg(0);
    let mut text = stmt.arg(1);
    if text.is_empty() {
        return Err("empty replacement".into());
    }
    let (re, names) = compile_regex(cx, pattern, false)?;
    let add_args = !text.ends_with('?');
    if !add_args {
        text = &text[..text.len() - 1];
    }
    let mut redirect =
        (text.starts_with("http://") || text.starts_with("https://") || text.starts_with("$scheme")).then_some(302);
    let flag = match stmt.args.get(2).map(|a| a.as_str()) {
        None => RewriteFlag::None,
        Some("last") => RewriteFlag::Last,
        Some("break") => RewriteFlag::Break,
        Some("redirect") => {
            redirect = Some(302);
            RewriteFlag::None
        }
        Some("permanent") => {
            redirect = Some(301);
            RewriteFlag::None
        }
        Some(other) => return Err(format!("invalid parameter \"{other}\"").into()),
    };
    let has_args = text.contains('?');
    let (uri, args) = match text.split_once('?') {
        Some((u, a)) if redirect.is_none() => (cx.compile(u)?, Some(cx.compile(a)?)),
        _ => (cx.compile(text)?, None),
    };
    let rw = Rewrite { pattern: pattern.to_string(), re, names, uri, args, has_args, add_args, redirect, flag };
    steps_mut(c).push(Step::Rewrite(Box::new(rw)));
    Ok(())
}

fn set_break(_: &mut HttpConfCx, c: &mut RewriteLocConf, _: &Statement) -> Result<(), SetError> {
    steps_mut(c).push(Step::Break);
    Ok(())
}

fn set_set(cx: &mut HttpConfCx, c: &mut RewriteLocConf, stmt: &Statement) -> Result<(), SetError> {
    let Some(name) = stmt.arg(0).strip_prefix('$') else {
        return Err(format!("invalid variable name \"{}\"", stmt.arg(0)).into());
    };
    if let Some(set) = cx.vars.setter(name) {
        let value = cx.compile(stmt.arg(1))?;
        steps_mut(c).push(Step::SetBuiltin { set, value });
        return Ok(());
    }
    let index = cx.vars.declare(name)?;
    let data = cx.with_main_conf(&KEY, |m| {
        m.set_names.push(name.to_string());
        m.set_names.len() - 1
    });
    let warn = DeclaredGetter { get: uninitialized, data, cache: false, weak: true };
    cx.vars.set_declared_getter(index, warn)?;
    let value = cx.compile(stmt.arg(1))?;
    steps_mut(c).push(Step::Set { index, value });
    Ok(())
}

/// The value of a `set` variable read before any `set` ran.
fn uninitialized(r: &Request, data: usize) -> Option<Bytes> {
    if r.loc_conf(&KEY).uninit_warn.unwrap_or(true) {
        let name = r.main_conf(&KEY).set_names.get(data).map(String::as_str).unwrap_or("");
        log(r, LogLevel::Warn, format!("using uninitialized \"{name}\" variable"));
    }
    None
}

/// Strips the parentheses of `if (...)`: they may stand alone or stick to
/// the first and last arguments.
fn condition_args(stmt: &Statement) -> Result<Vec<String>, String> {
    let mut args: Vec<String> = stmt.args.iter().map(|a| a.value.clone()).collect();
    let bad = || format!("invalid condition \"{}\"", stmt.arg(0));
    let first = args.first_mut().ok_or_else(bad)?;
    *first = first.strip_prefix('(').ok_or_else(bad)?.to_string();
    let last = args.last_mut().ok_or_else(bad)?;
    *last = last.strip_suffix(')').ok_or_else(bad)?.to_string();
    if args.len() > 1 && args[0].is_empty() && !stmt.args[0].quoted {
        args.remove(0);
    }
    if args.len() > 1 && args.last().is_some_and(|a| a.is_empty()) && !stmt.args[stmt.args.len() - 1].quoted {
        args.pop();
    }
    Ok(args)
}

fn parse_condition(cx: &mut HttpConfCx, stmt: &Statement) -> Result<Cond, SetError> {
    let args = condition_args(stmt)?;
    let a0 = args[0].as_str();
    if a0.starts_with('$') {
        let lhs = cx.compile(a0)?;
        return match args.len() {
            1 => Ok(Cond::Value(lhs)),
            3 => {
                let (op, rhs) = (args[1].as_str(), args[2].as_str());
                match op {
                    "=" | "!=" => Ok(Cond::Equal { lhs, rhs: cx.compile(rhs)?, negative: op == "!=" }),
                    "~" | "~*" | "!~" | "!~*" => {
                        let (re, names) = compile_regex(cx, rhs, op.ends_with('*'))?;
                        Ok(Cond::Match { lhs, re, names, negative: op.starts_with('!') })
                    }
                    _ => Err(format!("unexpected \"{op}\" in condition").into()),
                }
            }
            _ => Err(format!("invalid condition \"{a0}\"").into()),
        };
    }
    let (negative, op) = match a0.strip_prefix('!') {
        Some(op) => (true, op),
        None => (false, a0),
    };
    let test = match op {
        "-f" => FileTest::File,
        "-d" => FileTest::Dir,
        "-e" => FileTest::Exists,
        "-x" => FileTest::Exec,
        _ => return Err(format!("invalid condition \"{a0}\"").into()),
    };
    if args.len() != 2 {
        return Err(format!("invalid condition \"{a0}\"").into());
    }
    Ok(Cond::File { path: cx.compile(&args[1])?, test, negative })
}

fn set_if(cx: &mut HttpConfCx, c: &mut RewriteLocConf, stmt: &Statement, ctx: C) -> Result<(), SetError> {
    let cond = parse_condition(cx, stmt)?;
    let mut confs = cx.read_anonymous_location(stmt.block.as_deref().unwrap_or(&[]), ctx)?;
    let inner: &mut RewriteLocConf = sluice_http::module::downcast_mut(confs[KEY.index().get()].as_mut());
    let steps = std::mem::take(steps_mut(inner));
    let loc = cx.add_anonymous_location(confs, stmt.origin.clone())?;
    steps_mut(c).push(Step::If(Box::new(IfBlock { cond, loc, steps })));
    Ok(())
}

fn set_if_srv(cx: &mut HttpConfCx, c: &mut RewriteLocConf, stmt: &Statement) -> Result<(), SetError> {
    set_if(cx, c, stmt, C::HTTP_SIF)
}

fn set_if_loc(cx: &mut HttpConfCx, c: &mut RewriteLocConf, stmt: &Statement) -> Result<(), SetError> {
    set_if(cx, c, stmt, C::HTTP_LIF)
}

/// Logs with nginx's request suffix.
fn log(r: &Request, level: LogLevel, msg: String) {
    sluice_core::log_error!(
        level,
        r.log_id(),
        "{}, client: {}, server: {}, request: \"{}\"",
        msg,
        r.conn.peer.ip(),
        r.server.name,
        String::from_utf8_lossy(r.head.request_line())
    );
}

/// What a step says about the rest of the list.
enum Next {
    Continue,
    Stop(Flow),
}

/// Runs the steps of the location (or server) the request is in now.
fn run_level(r: &mut Request) -> Flow {
    let base = r.loc.clone();
    let conf = r.loc_conf(&KEY);
    if conf.steps.is_empty() {
        return Flow::Declined;
    }
    let steps = conf.steps.clone();
    let log = conf.log.unwrap_or(false);
    match run(&steps, r, &base, log) {
        Next::Continue => Flow::Declined,
        Next::Stop(flow) => flow,
    }
}

fn run(steps: &[Step], r: &mut Request, base: &Arc<Location>, log_on: bool) -> Next {
    for step in steps {
        let next = match step {
            Step::Rewrite(rw) => rewrite(rw, r, log_on),
            Step::Return(ret) => Next::Stop(answer(ret, r)),
            Step::Set { index, value } => {
                let v = value.eval(r);
                r.set_variable(*index, v);
                Next::Continue
            }
            Step::SetBuiltin { set, value } => {
                let v = value.eval(r);
                set(r, v);
                Next::Continue
            }
            Step::Break => {
                if r.uri_changed() {
                    r.leave_location();
                }
                r.set_uri_changed(false);
                Next::Stop(Flow::Declined)
            }
            Step::If(block) => {
                if !condition(&block.cond, r, log_on) {
                    continue;
                }
                if let Some(loc) = base.anonymous(block.loc) {
                    r.loc = loc.clone();
                }
                run(&block.steps, r, base, log_on)
            }
        };
        if let Next::Stop(flow) = next {
            return Next::Stop(flow);
        }
    }
    Next::Continue
}

fn answer(ret: &Return, r: &mut Request) -> Flow {
    let text = ret.text.as_ref().map(|t| t.eval(r));
    if is_redirect(ret.code) {
        if let Some(loc) = text {
            r.headers_out.location = Some(loc);
        }
        return Flow::Status(ret.code);
    }
    match text {
        None => Flow::Status(ret.code),
        Some(body) => {
            if let Err(status) = r.discard_body() {
                return Flow::Status(status);
            }
            // As nginx: a type already set stays (one kept from an
            // X-Accel-Redirect answer); else by the URI's extension, else
            // default_type.
            let ct = match r.headers_out.content_type {
                Some(_) => None,
                None => Some(r.content_type_for_uri()),
            };
            let _ = r.send_response(ret.code, ct, body);
            Flow::Done
        }
    }
}

/// Runs a regex on `subject`; on a match its captures become the request's.
fn regex_match(r: &mut Request, re: &Regex, names: &[(String, usize)], subject: Bytes) -> bool {
    let groups = match re.captures(&subject) {
        Some(caps) => (0..caps.len()).map(|i| caps.get(i).map(|m| m.range())).collect(),
        None => {
            r.set_captures(Bytes::new(), Vec::new(), Vec::new());
            return false;
        }
    };
    r.set_captures(subject, groups, names.to_vec());
    true
}

fn rewrite(rw: &Rewrite, r: &mut Request, log_on: bool) -> Next {
    let subject = r.uri.clone();
    let matched = regex_match(r, &rw.re, &rw.names, subject.clone());
    if log_on {
        let verb = if matched { "matches" } else { "does not match" };
        log(r, LogLevel::Notice, format!("\"{}\" {verb} \"{}\"", rw.pattern, String::from_utf8_lossy(&subject)));
    }
    if !matched {
        return Next::Continue;
    }
    if let Some(code) = rw.redirect {
        let mut loc = unescape_redirect(&rw.uri.eval(r));
        if rw.add_args && !r.args.is_empty() {
            loc.extend_from_slice(if rw.has_args { b"&" } else { b"?" });
            loc.extend_from_slice(&r.args);
        }
        if log_on {
            log(r, LogLevel::Notice, format!("rewritten redirect: \"{}\"", String::from_utf8_lossy(&loc)));
        }
        r.headers_out.location = Some(loc.freeze());
        return Next::Stop(Flow::Status(code));
    }
    r.internal = true;
    r.set_uri_changed(rw.flag != RewriteFlag::Break);
    if rw.flag == RewriteFlag::Break {
        r.leave_location();
    }
    let uri = rw.uri.eval(r);
    match &rw.args {
        Some(a) => {
            // As nginx: when the client's URI had %-escapes, captures (taken
            // from the decoded URI) are escaped again in the arguments.
            let quoted = memchr::memchr(b'%', r.head.unparsed_uri()).is_some();
            let args = if quoted { a.eval_captures_with(r, escape_arg) } else { a.eval(r) };
            let mut args = BytesMut::from(&args[..]);
            if rw.add_args && !r.args.is_empty() {
                args.extend_from_slice(b"&");
                args.extend_from_slice(&r.args);
            }
            r.args = args.freeze();
        }
        None if !rw.add_args => r.args = Bytes::new(),
        None => {}
    }
    if log_on {
        let (u, a) = (String::from_utf8_lossy(&uri), String::from_utf8_lossy(&r.args));
        log(r, LogLevel::Notice, format!("rewritten data: \"{u}\", args: \"{a}\""));
    }
    if uri.is_empty() {
        log(r, LogLevel::Error, "the rewritten URI has a zero length".to_string());
        return Next::Stop(Flow::Status(500));
    }
    r.uri = uri;
    match rw.flag {
        RewriteFlag::None => Next::Continue,
        RewriteFlag::Last | RewriteFlag::Break => Next::Stop(Flow::Declined),
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Decodes `%XX` in a redirect as nginx does: printable characters above
/// Percent-encodes what cannot stand in an argument (nginx's args
/// escaping): controls, space, `#`, `%`, `+`, `?`, bytes above 0x7e.
fn escape_arg(s: &[u8], out: &mut BytesMut) {
    sluice_http::parse::percent_encode(out, s, |c| c <= 0x20 || c >= 0x7f || matches!(c, b'#' | b'%' | b'+' | b'?'));
}

/// `%` are decoded, others stay escaped (no header splitting), and nothing
/// after the first `?` is decoded.
fn unescape_redirect(s: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(s.len() + 16);
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'?' {
            out.extend_from_slice(&s[i..]);
            break;
        }
        let decoded = match (c, s.get(i + 1).copied().and_then(hex), s.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => Some(h << 4 | l),
            _ => None,
        };
        match decoded {
            Some(b'?') => {
                out.extend_from_slice(b"?");
                out.extend_from_slice(&s[i + 3..]);
                break;
            }
            Some(d) if d > b'%' && d < 0x7f => {
                out.extend_from_slice(&[d]);
                i += 3;
            }
            Some(_) => {
                out.extend_from_slice(&s[i..i + 3]);
                i += 3;
            }
            None => {
                out.extend_from_slice(&[c]);
                i += 1;
            }
        }
    }
    out
}

fn truthy(v: &[u8]) -> bool {
    !(v.is_empty() || v == b"0")
}

fn condition(cond: &Cond, r: &mut Request, log_on: bool) -> bool {
    match cond {
        Cond::Value(v) => truthy(&v.eval(r)),
        Cond::Equal { lhs, rhs, negative } => (lhs.eval(r) == rhs.eval(r)) != *negative,
        Cond::Match { lhs, re, names, negative } => {
            let subject = lhs.eval(r);
            let matched = regex_match(r, re, names, subject.clone());
            if log_on {
                let verb = if matched { "matches" } else { "does not match" };
                log(
                    r,
                    LogLevel::Notice,
                    format!("\"{}\" {verb} \"{}\"", re.as_str(), String::from_utf8_lossy(&subject)),
                );
            }
            matched != *negative
        }
        Cond::File { path, test, negative } => file_test(&path.eval(r), test) != *negative,
    }
}

fn file_test(path: &[u8], test: &FileTest) -> bool {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(std::ffi::OsStr::from_bytes(path)) else {
        return false;
    };
    match test {
        FileTest::File => meta.is_file(),
        FileTest::Dir => meta.is_dir(),
        FileTest::Exists => true,
        FileTest::Exec => meta.permissions().mode() & 0o100 != 0,
    }
}

/// Declares the variables of every `set` in `block`, nested blocks
/// included. A name that cannot be declared is left for `set` to report
/// where it is written.
fn declare_set_variables(block: &[Statement], vars: &mut sluice_http::variables::Variables) {
    for stmt in block {
        if stmt.name == "set" {
            if let Some(name) = stmt.arg(0).strip_prefix('$').filter(|n| !n.is_empty()) {
                if vars.setter(name).is_none() {
                    let _ = vars.declare(name);
                }
            }
        }
        if let Some(inner) = &stmt.block {
            declare_set_variables(inner, vars);
        }
    }
}

/// A level without rewrite directives has no steps to run (they are not
/// inherited, as in nginx).
fn has_steps(loc: &sluice_http::location::Location) -> bool {
    !loc.conf(&KEY).steps.is_empty()
}

fn server_rewrite(r: &mut Request) -> Flow {
    run_level(r)
}

fn location_rewrite(r: &mut Request) -> Flow {
    // No location matched: the server's steps already ran at server_rewrite.
    if matches!(r.loc.matcher, LocMatch::ServerLevel) {
        return Flow::Declined;
    }
    run_level(r)
}

// One row per directive, as nginx's command table.
#[rustfmt::skip]
fn directives() -> Vec<Directive<HttpConfCx>> {
    let script = C::HTTP_SRV | C::HTTP_LOC | C::HTTP_SIF | C::HTTP_LIF;
    let any = C::HTTP_ANY | C::HTTP_SIF | C::HTTP_LIF;
    vec![
        Directive::new("rewrite", script, Args::TAKE23, Level::Loc, custom(set_rewrite)),
        Directive::new("return", script, Args::TAKE12, Level::Loc, custom(set_return)),
        Directive::new("break", script, Args::NOARGS, Level::Loc, custom(set_break)),
        Directive::new("if", C::HTTP_SRV, Args::BLOCK | Args::MORE1, Level::Loc, custom(set_if_srv)),
        Directive::new("if", C::HTTP_LOC, Args::BLOCK | Args::MORE1, Level::Loc, custom(set_if_loc)),
        Directive::new("set", script, Args::TAKE2, Level::Loc, custom(set_set)),
        Directive::new("rewrite_log", any, Args::FLAG, Level::Loc, flag(|c: &mut RewriteLocConf| &mut c.log)),
        Directive::new("uninitialized_variable_warn", any, Args::FLAG, Level::Loc, flag(|c: &mut RewriteLocConf| &mut c.uninit_warn)),
    ]
}

impl HttpModule for RewriteModule {
    fn name(&self) -> &'static str {
        "rewrite"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        directives()
    }

    // nginx resolves variables once the whole block was read, so `$x` may
    // be used above the `set $x` that defines it: declare them all first.
    fn preconfiguration(&self, cf: &mut PreConf) -> Result<(), String> {
        declare_set_variables(cf.block, cf.vars);
        Ok(())
    }

    fn create_main_conf(&self) -> AnyConf {
        Box::new(RewriteMainConf::default())
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(RewriteLocConf::default())
    }

    // The steps are the level's own (a location does not repeat the
    // server's); the flags are inherited.
    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &RewriteLocConf = sluice_http::module::downcast(parent);
        let c: &mut RewriteLocConf = sluice_http::module::downcast_mut(child);
        c.log = c.log.or(p.log);
        c.uninit_warn = c.uninit_warn.or(p.uninit_warn);
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.add_phase_handler(
            Phase::ServerRewrite,
            Arc::new(sluice_http::Gated { handler: server_rewrite, wanted_in: has_steps }),
        );
        cf.add_phase_handler(
            Phase::Rewrite,
            Arc::new(sluice_http::Gated {
                handler: location_rewrite,
                wanted_in: |loc| has_steps(loc) && !matches!(loc.matcher, LocMatch::ServerLevel),
            }),
        );
        Ok(())
    }
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
