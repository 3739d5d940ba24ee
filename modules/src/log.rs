//! The access log: `log_format` and `access_log`.
//!
//! ```text
//! log_format  main  '$remote_addr [$time_local] "$request" $status';
//! access_log  logs/access.log  main;
//! access_log  logs/errors.log  combined  if=$loggable;
//! access_log  off;
//! ```
//!
//! Runs in the log phase, after the response. Each `access_log` line of the
//! location (or the nearest level that has some; `off` stops inheritance)
//! gets one line, written with one `write(2)` on a file opened with
//! O_APPEND, so lines of several workers never interleave. `combined` is
//! predefined. Variable values are escaped as `escape=` says (default:
//! `"`, `\` and bytes outside printable ASCII as `\xHH`; `json`: JSON string
//! escapes; `none`). Files are reopened on USR1.
//!
//! With `buffer=size`, each worker keeps lines for that file in a buffer of
//! its own and writes the buffer with one `write(2)` when the next line
//! would not fit, when it is older than `flush=time` (checked about once a
//! second from the worker loop), and when the worker ends; `flush=` alone
//! buffers 64k, as nginx does. With `gzip[=level]` (level 1 by default;
//! 64k buffers unless `buffer=` says otherwise) each buffer is written as
//! one gzip member, so `zcat` reads the file whole.
//!
//! A path with variables (`access_log logs/$host.log;`) names the file per
//! request: as in nginx, the file is opened for each line (with
//! `open_log_file_cache`, each worker keeps the descriptors of the files
//! used most), nothing is written when the request's root directory does
//! not exist, and such a log cannot be buffered.
//!
//! Not done here: syslog.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use sluice_core::conf::directive::{custom, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::variables::ComplexValue;
use sluice_http::{AnyConf, ConfKey, Flow, HttpConfCx, HttpModule, ModuleIndex, Phase, PostConf, Request};

/// The predefined `combined` format.
const COMBINED: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";

/// How variable values are escaped in a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// `"`, `\`, and bytes outside 0x20..0x7e as `\xHH`.
    Default,
    /// JSON string escapes.
    Json,
    /// As is.
    None,
}

/// A compiled `log_format`.
#[derive(Clone)]
pub struct LogFormat {
    name: String,
    escape: Escape,
    /// Literal text between variables is not escaped; only variable values
    /// are, so the format is kept as parts.
    parts: Vec<Part>,
}

#[derive(Clone)]
enum Part {
    Lit(Bytes),
    Value(ComplexValue),
}

/// An open log file, shared by the locations that name it.
pub struct LogFile {
    path: PathBuf,
    file: RwLock<File>,
}

impl LogFile {
    fn open(path: PathBuf) -> io::Result<LogFile> {
        let file = OpenOptions::new().append(true).create(true).open(&path)?;
        Ok(LogFile { path, file: RwLock::new(file) })
    }

    fn write_line(&self, line: &[u8]) {
        if let Ok(f) = self.file.read() {
            // One write per line; a short write on a regular file means the
            // disk is full, which the error log cannot fix either.
            let _ = (&*f).write(line);
        }
    }

    fn reopen(&self) -> io::Result<()> {
        let f = OpenOptions::new().append(true).create(true).open(&self.path)?;
        if let Ok(mut slot) = self.file.write() {
            *slot = f;
        }
        Ok(())
    }
}

/// One `access_log` line.
#[derive(Clone)]
struct AccessLog {
    target: Target,
    format: Arc<LogFormat>,
    condition: Option<ComplexValue>,
    buffering: Option<Buffering>,
}

/// Where an `access_log` writes.
#[derive(Clone)]
enum Target {
    /// A file opened once, at load.
    File(Arc<LogFile>),
    /// A path with variables, valued per request (relative paths are
    /// under the prefix, as `ngx_conf_full_name` makes them).
    Path(ComplexValue),
}

/// `open_log_file_cache max=N [inactive=time] [min_uses=N] [valid=time]`.
#[derive(Debug, PartialEq, Eq)]
pub struct OpenLogFileCache {
    max: usize,
    inactive: std::time::Duration,
    min_uses: u32,
    valid: std::time::Duration,
}

/// A file named by a path with variables, as a worker's cache holds it.
struct CachedFile {
    /// Open once used `min_uses` times within `inactive`.
    file: Option<File>,
    uses: u32,
    last_used: std::time::Instant,
    /// When the descriptor was last checked against the name (`valid=`).
    checked: std::time::Instant,
}

thread_local! {
    /// Each `open_log_file_cache`'s files in this worker, by the cache's
    /// address and the file's path.
    static OPEN_FILES: std::cell::RefCell<std::collections::HashMap<(usize, PathBuf), CachedFile>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Writes `line` to the file `path` names, through the cache when there is
/// one, as nginx's `ngx_open_cached_file` keeps log descriptors: a file
/// used `min_uses` times stays open until it is unused for `inactive`, is
/// the least recently used of `max`, or, checked every `valid`, no longer
/// has that name. An open that fails is logged and not cached.
fn write_to_path(r: &Request, path: &std::path::Path, line: &[u8], cache: Option<&Arc<OpenLogFileCache>>) {
    let open = || OpenOptions::new().append(true).create(true).open(path);
    let failed = |e: io::Error| {
        sluice_core::log_error!(
            sluice_core::log::Level::Crit,
            r.log_id(),
            "open() \"{}\" failed ({})",
            path.display(),
            sluice_core::log::os_error(&e)
        );
    };
    let Some(c) = cache else {
        match open() {
            Ok(f) => drop((&f).write(line)),
            Err(e) => failed(e),
        }
        return;
    };
    let now = sluice_core::event::now();
    let id = Arc::as_ptr(c) as usize;
    OPEN_FILES.with(|files| {
        let mut files = files.borrow_mut();
        files.retain(|(cache, _), f| *cache != id || now.saturating_duration_since(f.last_used) < c.inactive);
        let key = (id, path.to_path_buf());
        if let Some(f) = files.get_mut(&key) {
            f.uses += 1;
            f.last_used = now;
            if f.file.is_some() && now.saturating_duration_since(f.checked) >= c.valid {
                f.checked = now;
                if !same_file(f.file.as_ref(), path) {
                    f.file = None;
                }
            }
            if f.file.is_none() {
                match open() {
                    Ok(file) if f.uses >= c.min_uses => f.file = Some(file),
                    Ok(file) => return drop((&file).write(line)),
                    Err(e) => return failed(e),
                }
            }
            if let Some(file) = &f.file {
                let _ = (&*file).write(line);
            }
            return;
        }
        let file = match open() {
            Ok(file) => file,
            Err(e) => return failed(e),
        };
        let _ = (&file).write(line);
        let ours = files.keys().filter(|(cache, _)| *cache == id).count();
        if ours >= c.max {
            let oldest = files.iter().filter(|((cache, _), _)| *cache == id).min_by_key(|(_, f)| f.last_used);
            if let Some(k) = oldest.map(|(k, _)| k.clone()) {
                files.remove(&k);
            }
        }
        let kept = (c.min_uses <= 1).then_some(file);
        files.insert(key, CachedFile { file: kept, uses: 1, last_used: now, checked: now });
    });
}

/// Whether the open `file` is still the file `path` names.
fn same_file(file: Option<&File>, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.and_then(|f| f.metadata().ok()), std::fs::metadata(path)) {
        (Some(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// A log path with variables is written only while the request's root
/// directory exists, as nginx checks (so that a server whose document
/// root is gone does not create log files for it).
fn root_exists(r: &Request) -> bool {
    let root = r.map_uri_to_path(b"");
    let err = match std::fs::metadata(&root) {
        Ok(m) if m.is_dir() => return true,
        Ok(_) => io::Error::from_raw_os_error(nix::libc::ENOTDIR),
        Err(e) => e,
    };
    sluice_core::log_error!(
        sluice_core::log::Level::Error,
        r.log_id(),
        "testing \"{}\" existence failed ({})",
        root.display(),
        sluice_core::log::os_error(&err)
    );
    false
}

/// `buffer=` and `flush=` of one `access_log`.
#[derive(Clone, Copy, Debug)]
struct Buffering {
    size: usize,
    flush: Option<std::time::Duration>,
    /// `gzip[=level]`: each buffer goes to the file as a gzip member.
    gzip: Option<u32>,
}

/// Lines a worker holds for one file.
struct Pending {
    file: Arc<LogFile>,
    data: Vec<u8>,
    since: std::time::Instant,
    flush: Option<std::time::Duration>,
    gzip: Option<u32>,
}

thread_local! {
    /// This worker's buffered lines, one entry per file that uses `buffer=`.
    static PENDING: std::cell::RefCell<Vec<Pending>> = const { std::cell::RefCell::new(Vec::new()) };
    static TICK_ADDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn flush_pending(p: &mut Pending) {
    if p.data.is_empty() {
        return;
    }
    match p.gzip {
        // A complete gzip member per buffer: `zcat` reads the file whole,
        // whatever the members' number (as nginx writes it).
        Some(level) => {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            match z.write_all(&p.data).and_then(|_| z.finish()) {
                Ok(member) => p.file.write_line(&member),
                Err(_) => p.file.write_line(&p.data),
            }
        }
        None => p.file.write_line(&p.data),
    }
    p.data.clear();
}

/// The worker tick: writes buffers older than their `flush=`, and all of
/// them when the worker ends.
fn tick(now: std::time::Instant, last: bool) {
    PENDING.with(|pending| {
        for p in pending.borrow_mut().iter_mut() {
            if last || p.flush.is_some_and(|f| now >= p.since + f) {
                flush_pending(p);
            }
        }
    });
}

/// Adds a line to this worker's buffer for `file`, writing the buffer first
/// when the line would not fit.
fn write_buffered(file: &Arc<LogFile>, line: &[u8], b: Buffering) {
    if !TICK_ADDED.with(|t| t.replace(true)) {
        sluice_core::event::add_tick(Box::new(tick));
    }
    PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        let i = match pending.iter().position(|p| Arc::ptr_eq(&p.file, file)) {
            Some(i) => i,
            None => {
                pending.push(Pending {
                    file: file.clone(),
                    data: Vec::with_capacity(b.size),
                    since: sluice_core::event::now(),
                    flush: b.flush,
                    gzip: b.gzip,
                });
                pending.len() - 1
            }
        };
        let p = &mut pending[i];
        if p.data.len() + line.len() > b.size {
            flush_pending(p);
        }
        if line.len() > b.size {
            p.file.write_line(line);
            return;
        }
        if p.data.is_empty() {
            p.since = sluice_core::event::now();
        }
        p.data.extend_from_slice(line);
    });
}

/// Main conf: formats and open files of this `http` block.
#[derive(Default)]
pub struct LogMainConf {
    formats: Vec<Arc<LogFormat>>,
    files: Mutex<Vec<Arc<LogFile>>>,
    /// `logs/access.log combined`, for requests whose levels name no log.
    default: std::sync::OnceLock<Arc<Vec<AccessLog>>>,
}

/// Location conf: `None` = inherit; `Some(empty)` = `off`.
#[derive(Default)]
pub struct LogLocConf {
    // Shared, so the log phase takes them with a reference count.
    logs: Option<Arc<Vec<AccessLog>>>,
    /// `open_log_file_cache`: `None` inherit, `Some(None)` off.
    open_file_cache: Option<Option<Arc<OpenLogFileCache>>>,
}

/// The module's key.
pub static KEY: ConfKey<LogMainConf, (), LogLocConf> = ConfKey::new();

/// The log module.
#[derive(Debug)]
pub struct LogModule;

fn compile_format(cx: &HttpConfCx, name: &str, escape: Escape, text: &str) -> Result<LogFormat, SetError> {
    compile_with(&cx.vars, name, escape, text)
}

fn compile_with(
    vars: &sluice_http::variables::Variables,
    name: &str,
    escape: Escape,
    text: &str,
) -> Result<LogFormat, SetError> {
    // Split the text at variables so that only their values get escaped.
    let mut parts = Vec::new();
    let b = text.as_bytes();
    let mut lit_start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let end = if b.get(i + 1) == Some(&b'{') {
            b[i..].iter().position(|&c| c == b'}').map(|p| i + p + 1).unwrap_or(b.len())
        } else {
            i + 1 + b[i + 1..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count()
        };
        if i > lit_start {
            parts.push(Part::Lit(Bytes::copy_from_slice(&b[lit_start..i])));
        }
        parts.push(Part::Value(ComplexValue::compile(&text[i..end], vars)?));
        lit_start = end;
        i = end;
    }
    if lit_start < b.len() {
        parts.push(Part::Lit(Bytes::copy_from_slice(&b[lit_start..])));
    }
    Ok(LogFormat { name: name.to_string(), escape, parts })
}

fn set_log_format(cx: &mut HttpConfCx, main: &mut LogMainConf, stmt: &Statement) -> Result<(), SetError> {
    let name = stmt.arg(0);
    if name == "combined" || main.formats.iter().any(|f| f.name == name) {
        return Err(format!("duplicate \"log_format\" name \"{name}\"").into());
    }
    let mut rest = &stmt.args[1..];
    let mut escape = Escape::Default;
    if let Some(e) = rest.first().and_then(|a| a.as_str().strip_prefix("escape=")) {
        escape = match e {
            "default" => Escape::Default,
            "json" => Escape::Json,
            "none" => Escape::None,
            _ => return Err(format!("unknown log format escaping \"{e}\"").into()),
        };
        rest = &rest[1..];
    }
    if rest.is_empty() {
        return Err(format!("invalid number of arguments in \"{}\" directive", stmt.name).into());
    }
    let text: String = rest.iter().map(|a| a.as_str()).collect();
    let f = compile_format(cx, name, escape, &text)?;
    main.formats.push(Arc::new(f));
    Ok(())
}

fn set_access_log(cx: &mut HttpConfCx, c: &mut LogLocConf, stmt: &Statement) -> Result<(), SetError> {
    if stmt.arg(0) == "off" {
        if stmt.args.len() > 1 {
            return Err(format!("invalid parameter \"{}\"", stmt.arg(1)).into());
        }
        c.logs = Some(Arc::default());
        return Ok(());
    }
    if c.logs.as_ref().is_some_and(|l| l.is_empty()) {
        return Err("\"access_log off\" was specified earlier".into());
    }
    let path = stmt.arg(0);
    if path.starts_with("syslog:") {
        return Err(format!("\"{path}\": syslog is not supported").into());
    }
    let format_name = stmt.args.get(1).map(|a| a.as_str()).filter(|a| !a.contains('=')).unwrap_or("combined");
    let params_from = if stmt.args.get(1).is_some_and(|a| !a.as_str().contains('=')) { 2 } else { 1 };
    let mut condition = None;
    let (mut size, mut flush, mut gzip) = (None, None, None);
    for p in &stmt.args[params_from..] {
        let p = p.as_str();
        if let Some(cond) = p.strip_prefix("if=") {
            condition = Some(cx.compile(cond)?);
        } else if let Some(v) = p.strip_prefix("buffer=") {
            let n = sluice_core::conf::value::parse_size(v).filter(|n| *n > 0);
            size = Some(n.ok_or_else(|| format!("invalid buffer size \"{v}\""))? as usize);
        } else if let Some(v) = p.strip_prefix("flush=") {
            let t = sluice_core::conf::value::parse_time(v).filter(|t| !t.is_zero());
            flush = Some(t.ok_or_else(|| format!("invalid flush time \"{v}\""))?);
        } else if p == "gzip" {
            gzip = Some(1);
        } else if let Some(v) = p.strip_prefix("gzip=") {
            let level = v.parse::<u32>().ok().filter(|l| (1..=9).contains(l));
            gzip = Some(level.ok_or_else(|| format!("invalid compression level \"{v}\""))?);
        } else {
            return Err(format!("invalid parameter \"{p}\"").into());
        }
    }
    let full = cx.full_path(path);
    let by_request = cx.compile(&full.to_string_lossy())?;
    let by_request = by_request.has_variables().then_some(by_request);
    if by_request.is_some() && (size.is_some() || flush.is_some() || gzip.is_some()) {
        return Err("buffered logs cannot have variables in name".into());
    }
    let (format, file) = cx.with_main_conf(&KEY, |main: &mut LogMainConf| -> Result<_, SetError> {
        let format = if format_name == "combined" {
            None
        } else {
            Some(
                main.formats
                    .iter()
                    .find(|f| f.name == format_name)
                    .cloned()
                    .ok_or_else(|| SetError::from(format!("unknown log format \"{format_name}\"")))?,
            )
        };
        if by_request.is_some() {
            return Ok((format, None));
        }
        let mut files = main.files.lock().map_err(|_| SetError::from("log files lock poisoned"))?;
        let file = match files.iter().find(|f| f.path == full) {
            Some(f) => f.clone(),
            None => {
                let f = Arc::new(LogFile::open(full.clone()).map_err(|e| {
                    format!("open() \"{}\" failed ({})", full.display(), sluice_core::log::os_error(&e))
                })?);
                files.push(f.clone());
                f
            }
        };
        Ok((format, Some(file)))
    })?;
    let target = match (file, by_request) {
        (Some(f), _) => Target::File(f),
        (None, Some(path)) => Target::Path(path),
        (None, None) => unreachable!("a path without variables has its file"),
    };
    let format = match format {
        Some(f) => f,
        None => Arc::new(compile_format(cx, "combined", Escape::Default, COMBINED)?),
    };
    // `flush=` or `gzip` without `buffer=` buffers 64k, as nginx does.
    let buffering = match (size, flush, gzip) {
        (None, None, None) => None,
        (size, flush, gzip) => Some(Buffering { size: size.unwrap_or(64 * 1024), flush, gzip }),
    };
    Arc::make_mut(c.logs.get_or_insert_with(Arc::default)).push(AccessLog { target, format, condition, buffering });
    Ok(())
}

fn set_open_log_file_cache(_: &mut HttpConfCx, c: &mut LogLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.open_file_cache.is_some() {
        return Err(sluice_core::conf::directive::duplicate(stmt).into());
    }
    if stmt.arg(0) == "off" && stmt.args.len() == 1 {
        c.open_file_cache = Some(None);
        return Ok(());
    }
    let (mut max, mut inactive, mut min_uses, mut valid) =
        (None, std::time::Duration::from_secs(10), 1, std::time::Duration::from_secs(60));
    for a in &stmt.args {
        let a = a.as_str();
        let bad = || SetError::from(format!("invalid \"open_log_file_cache\" parameter \"{a}\""));
        let time = |v: &str| sluice_core::conf::value::parse_time(v).ok_or_else(bad);
        match a.split_once('=') {
            Some(("max", v)) => max = Some(v.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(bad)?),
            Some(("inactive", v)) => inactive = time(v)?,
            Some(("min_uses", v)) => min_uses = v.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(bad)?,
            Some(("valid", v)) => valid = time(v)?,
            _ => return Err(bad()),
        }
    }
    let max = max.ok_or_else(|| SetError::from("\"open_log_file_cache\" must have \"max\" parameter"))?;
    c.open_file_cache = Some(Some(Arc::new(OpenLogFileCache { max, inactive, min_uses, valid })));
    Ok(())
}

fn escape_into(out: &mut Vec<u8>, v: &[u8], escape: Escape) {
    match escape {
        Escape::None => out.extend_from_slice(v),
        Escape::Default => {
            for &c in v {
                if c == b'"' || c == b'\\' || !(0x20..0x7f).contains(&c) {
                    out.extend_from_slice(format!("\\x{c:02X}").as_bytes());
                } else {
                    out.push(c);
                }
            }
        }
        Escape::Json => {
            for &c in v {
                match c {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    c if c < 0x20 => out.extend_from_slice(format!("\\u{c:04X}").as_bytes()),
                    c => out.push(c),
                }
            }
        }
    }
}

impl LogFormat {
    /// Renders one line (newline included) for a request.
    pub fn render(&self, r: &Request) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        for p in &self.parts {
            match p {
                Part::Lit(b) => out.extend_from_slice(b),
                Part::Value(v) => {
                    let val = v.eval(r);
                    // As nginx: `-` for a missing value, except with json
                    // (an empty string) and none (nothing at all).
                    if val.is_empty() && self.escape == Escape::Default {
                        out.push(b'-');
                    } else {
                        escape_into(&mut out, &val, self.escape);
                    }
                }
            }
        }
        out.push(b'\n');
        out
    }
}

fn log_handler(r: &mut Request) -> Flow {
    let logs = match r.loc_conf(&KEY).logs.clone() {
        Some(l) => l,
        None => match r.main_conf(&KEY).default.get() {
            Some(d) => d.clone(),
            None => return Flow::Ok,
        },
    };
    let (mut root_tested, mut root_ok) = (false, false);
    for l in logs.iter() {
        if let Some(cond) = &l.condition {
            let v = cond.eval(r);
            if v.is_empty() || &v[..] == b"0" {
                continue;
            }
        }
        let line = l.format.render(r);
        match (&l.target, l.buffering) {
            (Target::File(f), Some(b)) => write_buffered(f, &line, b),
            (Target::File(f), None) => f.write_line(&line),
            (Target::Path(path), _) => {
                if !root_tested {
                    root_tested = true;
                    root_ok = root_exists(r);
                }
                if root_ok {
                    let path = std::path::PathBuf::from(std::ffi::OsString::from_vec(path.eval(r).to_vec()));
                    let cache = r.loc_conf(&KEY).open_file_cache.clone().flatten();
                    write_to_path(r, &path, &line, cache.as_ref());
                }
            }
        }
    }
    Flow::Ok
}

impl HttpModule for LogModule {
    fn name(&self) -> &'static str {
        "log"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![
            Directive::new("log_format", C::HTTP_MAIN, Args::MORE2, Level::Main, custom(set_log_format)),
            Directive::new(
                "access_log",
                C::HTTP_ANY | C::HTTP_LIF | C::HTTP_LMT,
                Args::MORE1,
                Level::Loc,
                custom(set_access_log),
            ),
            Directive::new(
                "open_log_file_cache",
                C::HTTP_ANY,
                Args::TAKE1234,
                Level::Loc,
                custom(set_open_log_file_cache),
            ),
        ]
    }

    fn create_main_conf(&self) -> AnyConf {
        Box::new(LogMainConf::default())
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(LogLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &LogLocConf = downcast(parent);
        let c: &mut LogLocConf = downcast_mut(child);
        if c.logs.is_none() {
            c.logs.clone_from(&p.logs);
        }
        if c.open_file_cache.is_none() {
            c.open_file_cache.clone_from(&p.open_file_cache);
        }
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.add_phase_handler(Phase::Log, Arc::new(log_handler));
        // nginx's default `access_log logs/access.log combined`. Its
        // directory is created under the prefix when missing, as for the
        // default error log.
        let main = cf.main_conf(&KEY);
        let path = cf.prefix.join("logs/access.log");
        let _ = std::fs::create_dir_all(cf.prefix.join("logs"));
        let file = LogFile::open(path.clone())
            .map_err(|e| format!("open() \"{}\" failed ({})", path.display(), sluice_core::log::os_error(&e)))?;
        let format = compile_with(cf.vars, "combined", Escape::Default, COMBINED).map_err(|e| match e {
            SetError::Msg(m) => m,
            SetError::Located(e) => e.to_string(),
        })?;
        let file = Arc::new(file);
        if let Ok(mut files) = main.files.lock() {
            files.push(file.clone());
        }
        let _ = main.default.set(Arc::new(vec![AccessLog {
            target: Target::File(file),
            format: Arc::new(format),
            condition: None,
            buffering: None,
        }]));
        Ok(())
    }

    fn reopen_files(&self, main: &dyn std::any::Any) -> io::Result<()> {
        let m: &LogMainConf = downcast(main);
        let files = m.files.lock().map_err(|_| io::Error::other("log files lock poisoned"))?;
        for f in files.iter() {
            f.reopen()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        let mut o = Vec::new();
        escape_into(&mut o, b"a\"b\\c\x01\xff", Escape::Default);
        assert_eq!(o, b"a\\x22b\\x5Cc\\x01\\xFF");
        let mut o = Vec::new();
        escape_into(&mut o, b"a\"\n\x01\x1b", Escape::Json);
        // Upper-case hex digits, as nginx writes them.
        assert_eq!(o, b"a\\\"\\n\\u0001\\u001B");
    }
}
