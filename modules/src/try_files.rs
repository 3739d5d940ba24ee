//! `try_files file ... uri;` and `try_files file ... =code;`: nginx's
//! `ngx_http_try_files_module` (documented by nginx as a directive of the
//! core module; it lives in its own module since nginx 1.13.4, as here).
//!
//! ```text
//! location / {
//!     try_files $uri $uri/ /index.php?$args;   # files, then a directory, then a URI
//! }
//! location /images/ {
//!     try_files $uri /images/default.gif =404;  # or a status
//! }
//! location / { try_files /maintenance.html @backend; }
//! ```
//!
//! A precontent-phase handler. Each name but the last (variables allowed)
//! is mapped to a path the way `root` / `alias` map a URI, and tested in
//! order: a name ending in `/` must be a directory, any other a file (or
//! anything that is not a directory). The first that exists becomes the
//! request's URI and the content phase serves it in the same location. If
//! none exists the last argument decides: `=code` finishes the request with
//! that status (and its `error_page`), `@name` goes to a named location, and
//! a URI is an internal redirect (its arguments are what follows `?` in it,
//! none otherwise).
//!
//! With `alias` in a prefix location the location's prefix is taken off a
//! name that starts with it before the name is appended to the alias; with
//! `alias` in a regex location the name is appended to the alias and, on
//! success, static serves alias + URI (`Request::add_uri_to_alias`).
//! Per-request state: none.

use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use sluice_core::conf::directive::{custom, duplicate, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_core::log::Level as LogLevel;
use sluice_core::log_error;
use sluice_http::core_module::AliasOf;
use sluice_http::phase::{internal_redirect, named_redirect};
use sluice_http::variables::{ComplexValue, Variables};
use sluice_http::{AnyConf, ConfKey, Flow, HttpConfCx, HttpModule, ModuleIndex, Phase, PostConf, Request};

/// One name to test.
#[derive(Clone, Debug)]
pub struct TryFile {
    /// The name, its trailing `/` removed.
    pub name: ComplexValue,
    /// The name ended in `/`: it must be a directory.
    pub test_dir: bool,
}

/// What happens when no name exists.
#[derive(Clone, Debug)]
pub enum Fallback {
    /// `=code`.
    Status(u16),
    /// A URI (internal redirect) or `@name`.
    Uri(ComplexValue),
}

/// The parsed directive.
#[derive(Clone, Debug)]
pub struct TryFiles {
    /// The names tested, in order.
    pub files: Vec<TryFile>,
    /// The last argument.
    pub fallback: Fallback,
}

/// Location conf.
#[derive(Default, Debug)]
pub struct TryFilesLocConf {
    /// `try_files` (none).
    pub try_files: Option<Arc<TryFiles>>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), TryFilesLocConf> = ConfKey::new();

/// The try_files module.
#[derive(Debug)]
pub struct TryFilesModule;

fn set_try_files(cx: &mut HttpConfCx, c: &mut TryFilesLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.try_files.is_some() {
        return Err(duplicate(stmt).into());
    }
    let args: Vec<&str> = stmt.args.iter().map(|a| a.as_str()).collect();
    c.try_files = Some(Arc::new(parse(&args, &cx.vars)?));
    Ok(())
}

/// Reads the directive's arguments (at least two: the row says so).
fn parse(args: &[&str], vars: &Variables) -> Result<TryFiles, String> {
    let (last, names) = args.split_last().ok_or("invalid number of arguments in \"try_files\" directive")?;
    let mut files = Vec::with_capacity(names.len());
    for a in names {
        let (name, test_dir) = match a.strip_suffix('/') {
            Some(n) => (n, true),
            None => (*a, false),
        };
        files.push(TryFile { name: ComplexValue::compile(name, vars)?, test_dir });
    }
    let fallback = match last.strip_prefix('=') {
        Some(code) => Fallback::Status(
            code.parse::<u16>().ok().filter(|&c| c <= 999).ok_or_else(|| format!("invalid code \"{last}\""))?,
        ),
        None => Fallback::Uri(ComplexValue::compile(last, vars)?),
    };
    Ok(TryFiles { files, fallback })
}

/// How `alias` applies in the current location.
enum AliasMode {
    /// `root`: the name is the URI part of the path.
    Root,
    /// `alias` in a prefix location: the prefix, and the alias path.
    Prefix(Bytes, PathBuf),
    /// `alias` in a regex location: the alias path.
    Regex(PathBuf),
}

/// Decided by the location that set the alias, which may be an outer one
/// (a regex location nested in a prefix location with `alias` maps as
/// that prefix location does, as in nginx).
fn alias_mode(r: &Request) -> AliasMode {
    let core = r.core_loc();
    match (&core.alias, core.alias_of) {
        (None, _) => AliasMode::Root,
        (Some(_), Some(AliasOf::Prefix(n))) => {
            // The URI starts with that location's name, which it matched.
            let prefix = r.uri.slice(..n.min(r.uri.len()));
            let base = r.map_uri_to_path(&prefix);
            AliasMode::Prefix(prefix, base)
        }
        // A regex location's alias is the whole path, whatever the URI.
        (Some(_), _) => AliasMode::Regex(r.map_uri_to_path(b"")),
    }
}

fn concat(base: &std::path::Path, tail: &[u8]) -> PathBuf {
    let mut p = base.as_os_str().as_bytes().to_vec();
    p.extend_from_slice(tail);
    PathBuf::from(std::ffi::OsStr::from_bytes(&p))
}

/// Only a location with `try_files` has files to try.
fn has_try_files(loc: &sluice_http::location::Location) -> bool {
    loc.conf(&KEY).try_files.is_some()
}

fn handle(r: &mut Request) -> Flow {
    let Some(tf) = r.loc_conf(&KEY).try_files.clone() else {
        return Flow::Declined;
    };
    let mode = alias_mode(r);
    for f in &tf.files {
        let name = f.name.eval(r);
        // nginx takes the location's prefix off a name built from variables
        // (such as `$uri`), not off a literal one.
        let (path, tail) = match &mode {
            AliasMode::Root => (r.map_uri_to_path(&name), name.clone()),
            AliasMode::Prefix(prefix, base) => {
                let tail = match name.strip_prefix(&prefix[..]) {
                    Some(t) if f.name.has_variables() => name.slice(name.len() - t.len()..),
                    _ => name.clone(),
                };
                (concat(base, &tail), tail)
            }
            AliasMode::Regex(base) => (concat(base, &name), name.clone()),
        };
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                let quiet = matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
                    || e.raw_os_error() == Some(nix::libc::ENAMETOOLONG);
                if !quiet {
                    log_error!(
                        LogLevel::Crit,
                        r.log_id(),
                        "stat() \"{}\" failed ({})",
                        path.display(),
                        sluice_core::log::os_error(&e)
                    );
                }
                continue;
            }
        };
        if meta.is_dir() != f.test_dir {
            continue;
        }
        match mode {
            AliasMode::Root => r.uri = name,
            AliasMode::Regex(_) => {
                if !f.test_dir {
                    r.uri = name;
                    r.add_uri_to_alias = true;
                }
            }
            AliasMode::Prefix(prefix, _) => {
                let mut uri = prefix.to_vec();
                uri.extend_from_slice(&tail);
                r.uri = Bytes::from(uri);
            }
        }
        return Flow::Declined;
    }
    fallback(r, &tf.fallback)
}

fn fallback(r: &mut Request, fb: &Fallback) -> Flow {
    let target = match fb {
        Fallback::Status(code) => return Flow::Status(*code),
        Fallback::Uri(v) => v.eval(r),
    };
    if target.first() == Some(&b'@') {
        return named_redirect(r, &String::from_utf8_lossy(&target));
    }
    let (uri, args) = match memchr::memchr(b'?', &target) {
        Some(q) => (target.slice(..q), target.slice(q + 1..)),
        None => (target, Bytes::new()),
    };
    internal_redirect(r, uri, args)
}

impl HttpModule for TryFilesModule {
    fn name(&self) -> &'static str {
        "try_files"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![Directive::new("try_files", C::HTTP_SRV | C::HTTP_LOC, Args::MORE2, Level::Loc, custom(set_try_files))]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(TryFilesLocConf::default())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.add_phase_handler(
            Phase::Precontent,
            Arc::new(sluice_http::Gated { handler: handle, wanted_in: has_try_files }),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Variables {
        Variables::new()
    }

    #[test]
    fn trailing_slash_tests_a_directory() {
        let tf = parse(&["/a", "/b/", "=404"], &vars()).unwrap();
        assert!(!tf.files[0].test_dir);
        assert!(tf.files[1].test_dir);
        assert_eq!(tf.files[1].name.as_literal().map(|b| &b[..]), Some(&b"/b"[..]));
        assert!(matches!(tf.fallback, Fallback::Status(404)));
    }

    #[test]
    fn last_argument_is_a_code_or_a_uri() {
        assert!(matches!(parse(&["/a", "=999"], &vars()).unwrap().fallback, Fallback::Status(999)));
        assert_eq!(parse(&["/a", "=1000"], &vars()).unwrap_err(), "invalid code \"=1000\"");
        assert_eq!(parse(&["/a", "=x"], &vars()).unwrap_err(), "invalid code \"=x\"");
        let tf = parse(&["/a", "/fallback?a=1"], &vars()).unwrap();
        assert!(
            matches!(&tf.fallback, Fallback::Uri(v) if v.as_literal().map(|b| &b[..]) == Some(&b"/fallback?a=1"[..]))
        );
    }

    #[test]
    fn concat_appends_bytes_not_path_components() {
        assert_eq!(concat(std::path::Path::new("/srv/dir"), b"/a.html"), PathBuf::from("/srv/dir/a.html"));
        assert_eq!(concat(std::path::Path::new("/srv/"), b"a.html"), PathBuf::from("/srv/a.html"));
    }
}
