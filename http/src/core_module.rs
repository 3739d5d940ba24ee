//! The http core module: `server`, `listen`, `server_name`, `location`,
//! `root`, `types`, timeouts, buffer sizes and the other directives of
//! nginx's `ngx_http_core_module`.
//!
//! ```text
//! http {
//!     include mime.types;
//!     server {
//!         listen 127.0.0.1:8080 default_server;
//!         server_name example.com *.example.com;
//!         location / { root html; }
//!         location = /status { return 200 "ok"; }
//!     }
//! }
//! ```
//!
//! It is always module 0 of the list: everything else reads its resolved
//! location conf (`CoreLocConf`) through `Request::core_loc`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::conf::directive::{self, custom, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{value, Origin, SetError, Statement};

use crate::config::HttpConfCx;
pub use crate::listen::ListenSpec;
use crate::location::LocMatch;
use crate::module::{downcast, downcast_mut, AnyConf, ConfKey, HttpModule, ModuleIndex, PhaseHandler};
use crate::variables::ComplexValue;

/// The key of the core module's confs.
pub static CORE: ConfKey<CoreMainConf, CoreSrvConf, CoreLocConf> = ConfKey::new();

/// A `server { }` block as read, before merging.
pub(crate) struct ServerBuild {
    pub srv_confs: Vec<AnyConf>,
    pub loc_confs: Vec<AnyConf>,
    pub origin: Origin,
}

/// A `location { }` block as read, before merging.
pub(crate) struct LocationBuild {
    pub matcher: LocMatch,
    pub confs: Vec<AnyConf>,
    pub origin: Origin,
}

/// Main conf: the servers of the `http` block, while it is read.
#[derive(Default)]
pub struct CoreMainConf {
    pub(crate) servers: Vec<ServerBuild>,
    hash_directives: std::collections::HashSet<String>,
}

/// Server conf.
#[derive(Default, Debug)]
pub struct CoreSrvConf {
    /// `listen`.
    pub listen: Vec<ListenSpec>,
    /// `server_name`, as written (default: `""`).
    pub server_names: Vec<String>,
    /// `client_header_timeout` (60s).
    pub client_header_timeout: Option<Duration>,
    /// `client_header_buffer_size` (1k).
    pub client_header_buffer_size: Option<u64>,
    /// `large_client_header_buffers` (4 8k).
    pub large_client_header_buffers: Option<(u64, u64)>,
    /// `merge_slashes` (on).
    pub merge_slashes: Option<bool>,
    /// `underscores_in_headers` (off).
    pub underscores_in_headers: Option<bool>,
    /// `ignore_invalid_headers` (on).
    pub ignore_invalid_headers: Option<bool>,
    pool_directives: std::collections::HashSet<String>,
}

/// What `error_page` maps a status to.
#[derive(Clone, Debug)]
pub struct ErrorPage {
    /// The statuses it applies to.
    pub codes: Vec<u16>,
    /// `=code` (Some(Some(c))), `=` (Some(None): the handler's status), or
    /// keep the original status (None).
    pub overwrite: Option<Option<u16>>,
    /// The URI, `@name` or URL.
    pub target: ComplexValue,
}

/// `client_body_in_file_only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyInFile {
    /// Memory first, file beyond `client_body_buffer_size`.
    Off,
    /// Always a file, kept after the request.
    On,
    /// Always a file, removed after the request.
    Clean,
}

/// `keepalive_disable`: which browsers get no keep-alive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeepaliveDisable {
    /// Old MSIE (before 6.0 SP2), for POST requests.
    pub msie6: bool,
    /// Safari and Safari-like browsers on macOS and iOS.
    pub safari: bool,
}

/// `server_tokens`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerTokens {
    /// `Server: sluice`.
    Off,
    /// `Server: sluice/VERSION`.
    On,
    /// As `on` (nginx adds the build name).
    Build,
}

/// Location conf.
#[derive(Default)]
pub struct CoreLocConf {
    pub(crate) locations: Vec<LocationBuild>,
    /// `limit_except`: the methods the location allows as they are (bits of
    /// [`method_bit`]), and the anonymous location whose confs apply to the
    /// others.
    pub(crate) limit_except: Option<(u32, usize)>,
    pub(crate) content_handler: Option<Arc<dyn PhaseHandler>>,
    /// A URI equal to the location's name without its trailing slash gets
    /// a 301 to the name (set by handlers such as `proxy_pass`).
    pub(crate) auto_redirect: bool,
    /// `root` (html).
    pub root: Option<ComplexValue>,
    /// `alias`.
    pub alias: Option<ComplexValue>,
    /// What the `alias` replaces: the leading bytes of the URI matched by
    /// the location that set it (inherited with the alias by nested
    /// locations, as nginx does), or the whole URI in a regex location.
    pub alias_of: Option<AliasOf>,
    /// `internal`.
    pub internal: Option<bool>,
    /// `default_type` (text/plain).
    pub default_type: Option<String>,
    /// The resolved `default_type`, ready to share with responses.
    pub(crate) default_type_value: bytes::Bytes,
    /// `types { }` (built-in html/gif/jpg/... when none given).
    /// (Types are kept as `Bytes`, so a response shares them.)
    pub types: Option<Arc<HashMap<String, bytes::Bytes>>>,
    /// `keepalive_timeout` (75s) and the optional header timeout.
    pub keepalive_timeout: Option<(Duration, Option<Duration>)>,
    /// `keepalive_requests` (1000).
    pub keepalive_requests: Option<u64>,
    /// `keepalive_time` (1h): a connection older than this is closed after
    /// its current request.
    pub keepalive_time: Option<Duration>,
    /// `keepalive_disable` (msie6): browsers that get no keep-alive.
    pub keepalive_disable: Option<KeepaliveDisable>,
    /// `client_body_timeout` (60s).
    pub client_body_timeout: Option<Duration>,
    /// `client_max_body_size` (1m; 0 = unlimited).
    pub client_max_body_size: Option<u64>,
    /// `client_body_buffer_size` (16k).
    pub client_body_buffer_size: Option<u64>,
    /// `client_body_temp_path` (client_body_temp).
    pub client_body_temp_path: Option<PathBuf>,
    /// `client_body_in_file_only` (off).
    pub client_body_in_file_only: Option<BodyInFile>,
    /// `client_body_in_single_buffer` (off): a body kept in memory is one
    /// buffer (one piece for `$request_body` and for upstreams).
    pub client_body_in_single_buffer: Option<bool>,
    /// `send_timeout` (60s).
    pub send_timeout: Option<Duration>,
    /// `sendfile` (off).
    pub sendfile: Option<bool>,
    /// `tcp_nopush` (off).
    pub tcp_nopush: Option<bool>,
    /// `tcp_nodelay` (on).
    pub tcp_nodelay: Option<bool>,
    /// `postpone_output` (1460).
    pub postpone_output: Option<u64>,
    /// `limit_rate` (none: no limit), bytes per second; variables allowed.
    pub limit_rate: Option<ComplexValue>,
    /// `limit_rate_after` (0): bytes sent before `limit_rate` applies.
    pub limit_rate_after: Option<ComplexValue>,
    /// `chunked_transfer_encoding` (on).
    pub chunked_transfer_encoding: Option<bool>,
    /// `absolute_redirect` (on).
    pub absolute_redirect: Option<bool>,
    /// `port_in_redirect` (on).
    pub port_in_redirect: Option<bool>,
    /// `server_name_in_redirect` (off).
    pub server_name_in_redirect: Option<bool>,
    /// `log_not_found` (on).
    pub log_not_found: Option<bool>,
    /// `etag` (on).
    pub etag: Option<bool>,
    /// `server_tokens` (on).
    pub server_tokens: Option<ServerTokens>,
    /// `error_page` entries (inherited only when a level has none).
    pub error_pages: Option<Vec<ErrorPage>>,
    /// `error_log` at this level: targets while reading, then the opened
    /// log (inherited by inner levels that name none).
    pub(crate) error_log_targets: Vec<(sluice_core::log::Target, sluice_core::log::Level)>,
    /// The opened `error_log` of this level or the nearest outer one; `None`
    /// means the main error log.
    pub error_log: Option<Arc<sluice_core::log::ErrorLog>>,
    /// `recursive_error_pages` (off): an error page's own error may use
    /// `error_page` again.
    pub recursive_error_pages: Option<bool>,
    /// `lingering_close` (on).
    pub lingering_close: Option<bool>,
    /// `lingering_time` (30s).
    pub lingering_time: Option<Duration>,
    /// `lingering_timeout` (5s).
    pub lingering_timeout: Option<Duration>,
    /// `auth_delay` (0s): how long a 401 or 407 from the access phase waits.
    pub auth_delay: Option<Duration>,
}

/// What part of the URI an `alias` stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasOf {
    /// The first N bytes: the name of the prefix location that set it.
    Prefix(usize),
    /// A regex location's alias is the whole path (with captures).
    Regex,
}

/// The core module.
#[derive(Debug)]
pub struct CoreModule;

static SERVER_TOKENS: &[(&str, ServerTokens)] =
    &[("off", ServerTokens::Off), ("on", ServerTokens::On), ("build", ServerTokens::Build)];
static BODY_IN_FILE: &[(&str, BodyInFile)] =
    &[("off", BodyInFile::Off), ("on", BodyInFile::On), ("clean", BodyInFile::Clean)];

/// The built-in types used when a level has no `types { }`.
const DEFAULT_TYPES: &[(&str, &str)] = &[
    ("html", "text/html"),
    ("htm", "text/html"),
    ("gif", "image/gif"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
    ("js", "application/javascript"),
    ("css", "text/css"),
    ("txt", "text/plain"),
];

fn any_loc() -> C {
    C::HTTP_ANY
}

// One row per directive, as nginx's command tables: kept on one line each.
#[rustfmt::skip]
fn directives() -> Vec<Directive<HttpConfCx>> {
    use Level::{Loc, Main, Srv};
    let srv_only = C::HTTP_MAIN | C::HTTP_SRV;
    vec![
        Directive::new("server", C::HTTP_MAIN, Args::BLOCK | Args::NOARGS, Main, custom(set_server)),
        Directive::new("listen", C::HTTP_SRV, Args::MORE1, Srv, custom(crate::listen::set_listen)),
        Directive::new("server_name", C::HTTP_SRV, Args::MORE1, Srv, custom(set_server_name)),
        Directive::new("location", C::HTTP_SRV | C::HTTP_LOC, Args::BLOCK | Args::TAKE12, Loc, custom(set_location)),
        Directive::new("root", any_loc() | C::HTTP_LIF, Args::TAKE1, Loc, custom(set_root)),
        Directive::new("alias", C::HTTP_LOC, Args::TAKE1, Loc, custom(set_alias)),
        Directive::new("internal", C::HTTP_LOC, Args::NOARGS, Loc, custom(set_internal)),
        Directive::new("limit_except", C::HTTP_LOC, Args::BLOCK | Args::MORE1, Loc, custom(set_limit_except)),
        Directive::new("default_type", any_loc(), Args::TAKE1, Loc, directive::string(|c: &mut CoreLocConf| &mut c.default_type)),
        Directive::new("types", any_loc(), Args::BLOCK | Args::NOARGS, Loc, custom(set_types)),
        Directive::new("keepalive_timeout", any_loc(), Args::TAKE12, Loc, custom(set_keepalive_timeout)),
        Directive::new("keepalive_requests", any_loc(), Args::TAKE1, Loc, directive::number(|c: &mut CoreLocConf| &mut c.keepalive_requests)),
        Directive::new("keepalive_time", any_loc(), Args::TAKE1, Loc, directive::time(|c: &mut CoreLocConf| &mut c.keepalive_time)),
        Directive::new("keepalive_disable", any_loc(), Args::TAKE12, Loc, custom(set_keepalive_disable)),
        Directive::new("server_names_hash_bucket_size", C::HTTP_MAIN, Args::TAKE1, Main, custom(set_names_hash)),
        Directive::new("server_names_hash_max_size", C::HTTP_MAIN, Args::TAKE1, Main, custom(set_names_hash)),
        Directive::new("connection_pool_size", srv_only, Args::TAKE1, Srv, custom(set_pool_size)),
        Directive::new("request_pool_size", srv_only, Args::TAKE1, Srv, custom(set_pool_size)),
        Directive::new("client_header_timeout", srv_only, Args::TAKE1, Srv, directive::time(|c: &mut CoreSrvConf| &mut c.client_header_timeout)),
        Directive::new("client_header_buffer_size", srv_only, Args::TAKE1, Srv, directive::size(|c: &mut CoreSrvConf| &mut c.client_header_buffer_size)),
        Directive::new("large_client_header_buffers", srv_only, Args::TAKE2, Srv, custom(set_large_buffers)),
        Directive::new("merge_slashes", srv_only, Args::FLAG, Srv, directive::flag(|c: &mut CoreSrvConf| &mut c.merge_slashes)),
        Directive::new("underscores_in_headers", srv_only, Args::FLAG, Srv, directive::flag(|c: &mut CoreSrvConf| &mut c.underscores_in_headers)),
        Directive::new("ignore_invalid_headers", srv_only, Args::FLAG, Srv, directive::flag(|c: &mut CoreSrvConf| &mut c.ignore_invalid_headers)),
        Directive::new("client_body_timeout", any_loc(), Args::TAKE1, Loc, directive::time(|c: &mut CoreLocConf| &mut c.client_body_timeout)),
        Directive::new("client_max_body_size", any_loc(), Args::TAKE1, Loc, directive::offset(|c: &mut CoreLocConf| &mut c.client_max_body_size)),
        Directive::new("client_body_buffer_size", any_loc(), Args::TAKE1, Loc, directive::size(|c: &mut CoreLocConf| &mut c.client_body_buffer_size)),
        Directive::new("client_body_temp_path", any_loc(), Args::TAKE1234, Loc, custom(set_body_temp_path)),
        Directive::new("client_body_in_single_buffer", any_loc(), Args::FLAG, Loc, directive::flag(|c: &mut CoreLocConf| &mut c.client_body_in_single_buffer)),
        Directive::new("client_body_in_file_only", any_loc(), Args::TAKE1, Loc, directive::enumeration(BODY_IN_FILE, |c: &mut CoreLocConf| { &mut c.client_body_in_file_only })),
        Directive::new("send_timeout", any_loc(), Args::TAKE1, Loc, directive::time(|c: &mut CoreLocConf| &mut c.send_timeout)),
        Directive::new("sendfile", any_loc() | C::HTTP_LIF, Args::FLAG, Loc, directive::flag(|c: &mut CoreLocConf| &mut c.sendfile)),
        Directive::new("tcp_nopush", any_loc(), Args::FLAG, Loc, directive::flag(|c: &mut CoreLocConf| &mut c.tcp_nopush)),
        Directive::new("tcp_nodelay", any_loc(), Args::FLAG, Loc, directive::flag(|c: &mut CoreLocConf| &mut c.tcp_nodelay)),
        Directive::new("postpone_output", any_loc(), Args::TAKE1, Loc, directive::size(|c: &mut CoreLocConf| &mut c.postpone_output)),
        Directive::new("limit_rate", any_loc() | C::HTTP_LIF, Args::TAKE1, Loc, custom(|cx, c: &mut CoreLocConf, s| set_rate(cx, &mut c.limit_rate, s))),
        Directive::new("limit_rate_after", any_loc() | C::HTTP_LIF, Args::TAKE1, Loc, custom(|cx, c: &mut CoreLocConf, s| set_rate(cx, &mut c.limit_rate_after, s))),
        Directive::new("chunked_transfer_encoding", any_loc(), Args::FLAG, Loc, directive::flag(|c: &mut CoreLocConf| &mut c.chunked_transfer_encoding)),
        Directive::new("absolute_redirect", any_loc(), Args::FLAG, Loc, directive::flag(|c: &mut CoreLocConf| &mut c.absolute_redirect)),
        Directive::new("port_in_redirect", any_loc(), Args::FLAG, Loc, directive::flag(|c: &mut CoreLocConf| &mut c.port_in_redirect)),
        Directive::new("server_name_in_redirect", any_loc(), Args::FLAG, Loc, directive::flag(|c: &mut CoreLocConf| &mut c.server_name_in_redirect)),
        Directive::new("error_log", any_loc(), Args::TAKE12, Loc, custom(set_error_log)),
        Directive::new("etag", any_loc(), Args::FLAG, Loc, directive::flag(|c: &mut CoreLocConf| &mut c.etag)),
        Directive::new("log_not_found", any_loc(), Args::FLAG, Loc, directive::flag(|c: &mut CoreLocConf| &mut c.log_not_found)),
        Directive::new("server_tokens", any_loc(), Args::TAKE1, Loc, directive::enumeration(SERVER_TOKENS, |c: &mut CoreLocConf| &mut c.server_tokens)),
        Directive::new("error_page", any_loc() | C::HTTP_LIF, Args::MORE2, Loc, custom(set_error_page)),
        Directive::new("recursive_error_pages", any_loc(), Args::FLAG, Loc, directive::flag(|c: &mut CoreLocConf| &mut c.recursive_error_pages)),
        Directive::new("lingering_close", any_loc(), Args::TAKE1, Loc, directive::flag(|c: &mut CoreLocConf| &mut c.lingering_close)),
        Directive::new("lingering_time", any_loc(), Args::TAKE1, Loc, directive::time(|c: &mut CoreLocConf| &mut c.lingering_time)),
        Directive::new("lingering_timeout", any_loc(), Args::TAKE1, Loc, directive::time(|c: &mut CoreLocConf| &mut c.lingering_timeout)),
        Directive::new("auth_delay", any_loc(), Args::TAKE1, Loc, directive::time(|c: &mut CoreLocConf| &mut c.auth_delay)),
    ]
}

fn set_server(cx: &mut HttpConfCx, main: &mut CoreMainConf, stmt: &Statement) -> Result<(), SetError> {
    let (srv_confs, loc_confs) = cx.read_server(stmt.block.as_deref().unwrap_or(&[]))?;
    main.servers.push(ServerBuild { srv_confs, loc_confs, origin: stmt.origin.clone() });
    Ok(())
}

fn set_server_name(cx: &mut HttpConfCx, srv: &mut CoreSrvConf, stmt: &Statement) -> Result<(), SetError> {
    for a in &stmt.args {
        let name = a.as_str();
        if let Some(re) = name.strip_prefix('~') {
            let compiled = crate::regex_compat::compile(re, re.bytes().any(|c| c.is_ascii_uppercase()))?;
            for (n, _) in crate::regex_compat::names(&compiled) {
                cx.vars.add_capture(&n);
            }
        } else if name.contains('/') {
            return Err(format!("server name \"{name}\" has suspicious symbols").into());
        }
        srv.server_names.push(if name.starts_with('~') { name.to_string() } else { name.to_ascii_lowercase() });
    }
    Ok(())
}

/// `limit_rate` / `limit_rate_after`: a size, or text with variables read
/// as a size per request (an empty or bad value means no limit).
fn set_rate(cx: &mut HttpConfCx, field: &mut Option<ComplexValue>, stmt: &Statement) -> Result<(), SetError> {
    if field.is_some() {
        return Err(directive::duplicate(stmt).into());
    }
    let value = cx.compile(stmt.arg(0))?;
    if let Some(text) = value.as_literal() {
        let ok = std::str::from_utf8(text).ok().and_then(sluice_core::conf::value::parse_size).is_some();
        if !ok {
            return Err(format!("\"{}\" directive invalid value", stmt.name).into());
        }
    }
    *field = Some(value);
    Ok(())
}

/// A method's bit in a `limit_except` set; every method nginx has no
/// name for shares one (they are never in the set).
pub(crate) fn method_bit(m: crate::parse::Method) -> u32 {
    use crate::parse::Method as M;
    1 << match m {
        M::Get => 0,
        M::Head => 1,
        M::Post => 2,
        M::Put => 3,
        M::Delete => 4,
        M::Mkcol => 5,
        M::Copy => 6,
        M::Move => 7,
        M::Options => 8,
        M::Propfind => 9,
        M::Proppatch => 10,
        M::Lock => 11,
        M::Unlock => 12,
        M::Patch => 13,
        M::Trace => 14,
        M::Connect => 15,
        M::Other => 16,
    }
}

/// `limit_except METHOD ... { ... }`: the block's directives (`allow`,
/// `deny`, `auth_basic`, `proxy_pass`, `access_log`) apply to requests with
/// the other methods. GET allows HEAD too; names are read in any case, as
/// nginx reads them.
fn set_limit_except(cx: &mut HttpConfCx, c: &mut CoreLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.limit_except.is_some() {
        return Err(directive::duplicate(stmt).into());
    }
    use crate::parse::Method;
    let mut allowed = 0;
    for a in &stmt.args {
        let m = Method::from_name(a.as_str().to_ascii_uppercase().as_bytes());
        if matches!(m, Method::Other | Method::Trace | Method::Connect) {
            return Err(format!("invalid method \"{}\"", a.as_str()).into());
        }
        allowed |= method_bit(m);
    }
    if allowed & method_bit(Method::Get) != 0 {
        allowed |= method_bit(Method::Head);
    }
    let confs = cx.read_anonymous_location(stmt.block.as_deref().unwrap_or(&[]), C::HTTP_LMT)?;
    // Added to `c`, the location being read, which is on top of the stack.
    c.locations.push(LocationBuild {
        matcher: LocMatch::Anonymous(Box::new(LocMatch::ServerLevel)),
        confs,
        origin: stmt.origin.clone(),
    });
    let n = c.locations.iter().filter(|l| matches!(l.matcher, LocMatch::Anonymous(_))).count() - 1;
    c.limit_except = Some((allowed, n));
    Ok(())
}

fn set_location(cx: &mut HttpConfCx, parent: &mut CoreLocConf, stmt: &Statement) -> Result<(), SetError> {
    let (modifier, name) = match stmt.args.len() {
        1 => {
            let a = stmt.arg(0);
            if let Some(rest) = a.strip_prefix('=') {
                ("=", rest)
            } else if let Some(rest) = a.strip_prefix("^~") {
                ("^~", rest)
            } else if let Some(rest) = a.strip_prefix("~*") {
                ("~*", rest)
            } else if a.starts_with('~') && a.len() > 1 {
                ("~", &a[1..])
            } else {
                ("", a)
            }
        }
        _ => (stmt.arg(0), stmt.arg(1)),
    };
    let matcher = LocMatch::parse(modifier, name)?;
    if let LocMatch::Regex { re, .. } = &matcher {
        for (n, _) in crate::regex_compat::names(re) {
            cx.vars.add_capture(&n);
        }
    }
    let kind = match &matcher {
        LocMatch::Prefix { name, .. } => crate::config::LocationKind::Prefix(name.clone()),
        LocMatch::Exact(name) => crate::config::LocationKind::Exact(name.clone()),
        LocMatch::Regex { .. } => crate::config::LocationKind::Regex,
        LocMatch::Named(_) => crate::config::LocationKind::Named,
        LocMatch::ServerLevel | LocMatch::Anonymous(_) => crate::config::LocationKind::Server,
    };
    let mut confs = cx.read_location(stmt.block.as_deref().unwrap_or(&[]), kind)?;
    let core: &mut CoreLocConf = downcast_mut(confs[0].as_mut());
    if core.alias.is_some() {
        core.alias_of = Some(match matcher {
            LocMatch::Regex { .. } => AliasOf::Regex,
            _ => AliasOf::Prefix(matcher.name().len()),
        });
    }
    parent.locations.push(LocationBuild { matcher, confs, origin: stmt.origin.clone() });
    Ok(())
}

fn set_root(cx: &mut HttpConfCx, c: &mut CoreLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.root.is_some() || c.alias.is_some() {
        let which = if c.alias.is_some() { "alias" } else { "root" };
        return Err(
            format!("\"{}\" directive is duplicate, \"{}\" directive was specified earlier", stmt.name, which).into()
        );
    }
    c.root = Some(cx.compile(stmt.arg(0))?);
    Ok(())
}

fn set_alias(cx: &mut HttpConfCx, c: &mut CoreLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.root.is_some() || c.alias.is_some() {
        let which = if c.alias.is_some() { "alias" } else { "root" };
        return Err(
            format!("\"{}\" directive is duplicate, \"{}\" directive was specified earlier", stmt.name, which).into()
        );
    }
    c.alias = Some(cx.compile(stmt.arg(0))?);
    Ok(())
}

fn set_internal(_: &mut HttpConfCx, c: &mut CoreLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.internal.is_some() {
        return Err(directive::duplicate(stmt).into());
    }
    c.internal = Some(true);
    Ok(())
}

fn set_types(_: &mut HttpConfCx, c: &mut CoreLocConf, stmt: &Statement) -> Result<(), SetError> {
    let mut map: HashMap<String, bytes::Bytes> = match &c.types {
        Some(t) => (**t).clone(),
        None => HashMap::new(),
    };
    for entry in stmt.block.as_deref().unwrap_or(&[]) {
        if entry.block.is_some() {
            return Err(entry.error("unexpected \"{\"").into());
        }
        if entry.args.is_empty() {
            return Err(entry.error("invalid number of arguments in \"types\" directive").into());
        }
        let mime = bytes::Bytes::from(entry.name.clone());
        for ext in &entry.args {
            map.insert(ext.as_str().to_ascii_lowercase(), mime.clone());
        }
    }
    c.types = Some(Arc::new(map));
    Ok(())
}

fn set_keepalive_timeout(_: &mut HttpConfCx, c: &mut CoreLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.keepalive_timeout.is_some() {
        return Err(directive::duplicate(stmt).into());
    }
    let invalid = || SetError::Msg(format!("\"{}\" directive invalid value", stmt.name));
    let t = value::parse_time(stmt.arg(0)).ok_or_else(invalid)?;
    let header = match stmt.args.len() {
        2 => Some(value::parse_time(stmt.arg(1)).ok_or_else(invalid)?),
        _ => None,
    };
    c.keepalive_timeout = Some((t, header));
    Ok(())
}

/// `error_log file|stderr [level]` inside `http`, `server` or `location`:
/// lines about requests served there go to this log instead of the main one.
fn set_error_log(cx: &mut HttpConfCx, c: &mut CoreLocConf, stmt: &Statement) -> Result<(), SetError> {
    use sluice_core::log::{Level as LogLevel, Target};
    let target = if stmt.arg(0) == "stderr" { Target::Stderr } else { Target::File(cx.full_path(stmt.arg(0))) };
    let level = match stmt.args.get(1) {
        Some(l) => LogLevel::parse(l.as_str()).ok_or_else(|| format!("invalid log level \"{}\"", l.as_str()))?,
        None => LogLevel::Error,
    };
    c.error_log_targets.push((target, level));
    Ok(())
}

fn set_keepalive_disable(_: &mut HttpConfCx, c: &mut CoreLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.keepalive_disable.is_some() {
        return Err(directive::duplicate(stmt).into());
    }
    let mut d = KeepaliveDisable::default();
    for a in &stmt.args {
        match a.as_str() {
            "none" => d = KeepaliveDisable::default(),
            "msie6" => d.msie6 = true,
            "safari" => d.safari = true,
            other => return Err(format!("invalid value \"{other}\"").into()),
        }
    }
    c.keepalive_disable = Some(d);
    Ok(())
}

/// `server_names_hash_bucket_size` / `server_names_hash_max_size`: nginx
/// sizes a static hash with them and refuses to start when names do not
/// fit. sluice's name table grows by itself, so the values are checked
/// (a size for the bucket, a number for the maximum) and otherwise change
/// nothing; they are accepted so that nginx configurations load unchanged.
fn set_names_hash(_: &mut HttpConfCx, main: &mut CoreMainConf, stmt: &Statement) -> Result<(), SetError> {
    if !main.hash_directives.insert(stmt.name.clone()) {
        return Err(directive::duplicate(stmt).into());
    }
    value::parse_size(stmt.arg(0))
        .filter(|n| *n > 0)
        .map(|_| ())
        .ok_or_else(|| SetError::Msg(format!("\"{}\" directive invalid value", stmt.name)))
}

/// `connection_pool_size` / `request_pool_size`: nginx's per-connection and
/// per-request memory pool sizes. sluice allocates per need (buffers are
/// bounded by the header and body buffer directives instead), so the size is
/// checked as nginx checks it and otherwise changes nothing; accepted so
/// that nginx configurations load unchanged.
fn set_pool_size(_: &mut HttpConfCx, c: &mut CoreSrvConf, stmt: &Statement) -> Result<(), SetError> {
    if !c.pool_directives.insert(stmt.name.clone()) {
        return Err(directive::duplicate(stmt).into());
    }
    match value::parse_size(stmt.arg(0)) {
        Some(n) if n >= 80 => Ok(()),
        Some(_) => Err(format!("\"{}\" directive the pool size must be no less than 80", stmt.name).into()),
        None => Err(format!("\"{}\" directive invalid value", stmt.name).into()),
    }
}

fn set_large_buffers(_: &mut HttpConfCx, c: &mut CoreSrvConf, stmt: &Statement) -> Result<(), SetError> {
    if c.large_client_header_buffers.is_some() {
        return Err(directive::duplicate(stmt).into());
    }
    let n = value::parse_number(stmt.arg(0)).filter(|n| *n > 0);
    let size = value::parse_size(stmt.arg(1)).filter(|s| *s > 0);
    match (n, size) {
        (Some(n), Some(size)) => {
            c.large_client_header_buffers = Some((n, size));
            Ok(())
        }
        _ => Err(format!("invalid value \"{} {}\"", stmt.arg(0), stmt.arg(1)).into()),
    }
}

fn set_body_temp_path(cx: &mut HttpConfCx, c: &mut CoreLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.client_body_temp_path.is_some() {
        return Err(directive::duplicate(stmt).into());
    }
    // Levels (the optional further arguments) spread files over
    // subdirectories in nginx; sluice removes each file as soon as the
    // request ends, so one directory is enough: the levels are checked and
    // otherwise do not change where files go.
    for level in &stmt.args[1..] {
        match level.as_str().parse::<u8>() {
            Ok(1..=2) => {}
            _ => return Err(format!("invalid value \"{}\"", level.as_str()).into()),
        }
    }
    c.client_body_temp_path = Some(cx.full_path(stmt.arg(0)));
    Ok(())
}

fn parse_status(s: &str) -> Option<u16> {
    s.parse::<u16>().ok().filter(|c| (300..=599).contains(c))
}

fn set_error_page(cx: &mut HttpConfCx, c: &mut CoreLocConf, stmt: &Statement) -> Result<(), SetError> {
    let n = stmt.args.len();
    let target = stmt.args[n - 1].as_str();
    let mut codes = Vec::new();
    let mut overwrite = None;
    for (i, a) in stmt.args[..n - 1].iter().enumerate() {
        let a = a.as_str();
        if let Some(rest) = a.strip_prefix('=') {
            if i != n - 2 {
                return Err(format!("invalid value \"{a}\"").into());
            }
            overwrite = Some(if rest.is_empty() {
                None
            } else {
                Some(rest.parse::<u16>().ok().filter(|c| *c < 1000).ok_or_else(|| format!("invalid value \"{a}\""))?)
            });
            continue;
        }
        let code = parse_status(a).ok_or_else(|| format!("value \"{a}\" must be between 300 and 599"))?;
        if code == 499 {
            return Err(format!("value \"{a}\" must be between 300 and 599").into());
        }
        codes.push(code);
    }
    if codes.is_empty() {
        return Err(format!("invalid number of arguments in \"{}\" directive", stmt.name).into());
    }
    let page = ErrorPage { codes, overwrite, target: cx.compile(target)? };
    c.error_pages.get_or_insert_with(Vec::new).push(page);
    Ok(())
}

fn merge<T: Clone>(child: &mut Option<T>, parent: &Option<T>, default: T) {
    if child.is_none() {
        *child = Some(parent.clone().unwrap_or(default));
    }
}

fn merge_opt<T: Clone>(child: &mut Option<T>, parent: &Option<T>) {
    if child.is_none() {
        child.clone_from(parent);
    }
}

fn default_types() -> Arc<HashMap<String, bytes::Bytes>> {
    Arc::new(DEFAULT_TYPES.iter().map(|(e, t)| (e.to_string(), bytes::Bytes::from_static(t.as_bytes()))).collect())
}

impl HttpModule for CoreModule {
    fn name(&self) -> &'static str {
        "http_core"
    }

    fn index(&self) -> &'static ModuleIndex {
        CORE.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        directives()
    }

    fn preconfiguration(&self, cf: &mut crate::config::PreConf) -> Result<(), String> {
        crate::core_variables::register(cf.vars)
    }

    fn create_main_conf(&self) -> AnyConf {
        Box::new(CoreMainConf::default())
    }

    fn postconfiguration(&self, cf: &mut crate::config::PostConf) -> Result<(), String> {
        crate::filters::register(cf);
        Ok(())
    }

    fn create_srv_conf(&self) -> AnyConf {
        Box::new(CoreSrvConf::default())
    }

    fn merge_srv_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &CoreSrvConf = downcast(parent);
        let c: &mut CoreSrvConf = downcast_mut(child);
        if c.listen.is_empty() {
            c.listen.push(ListenSpec::new(SocketAddr::from(([0, 0, 0, 0], if running_as_root() { 80 } else { 8000 }))));
        }
        if c.server_names.is_empty() {
            c.server_names.push(String::new());
        }
        merge(&mut c.client_header_timeout, &p.client_header_timeout, Duration::from_secs(60));
        merge(&mut c.client_header_buffer_size, &p.client_header_buffer_size, 1024);
        merge(&mut c.large_client_header_buffers, &p.large_client_header_buffers, (4, 8192));
        merge(&mut c.merge_slashes, &p.merge_slashes, true);
        merge(&mut c.underscores_in_headers, &p.underscores_in_headers, false);
        merge(&mut c.ignore_invalid_headers, &p.ignore_invalid_headers, true);
        let (_, large) = c.large_client_header_buffers.unwrap_or((4, 8192));
        if large < c.client_header_buffer_size.unwrap_or(1024) && large < 1024 {
            return Err("the \"large_client_header_buffers\" size must be equal to or greater than 1k".into());
        }
        Ok(())
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(CoreLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &CoreLocConf = downcast(parent);
        let c: &mut CoreLocConf = downcast_mut(child);
        if c.root.is_none() && c.alias.is_none() {
            if p.alias.is_some() {
                // A location nested in an alias location keeps the alias
                // and what it replaces, as nginx's merge does.
                c.alias.clone_from(&p.alias);
                c.alias_of = p.alias_of;
            } else {
                c.root = Some(p.root.clone().unwrap_or_else(|| ComplexValue::literal("html")));
            }
        }
        merge(&mut c.internal, &None, false);
        merge(&mut c.default_type, &p.default_type, "text/plain".to_string());
        c.default_type_value = bytes::Bytes::from(c.default_type.clone().unwrap_or_default());
        if c.types.is_none() {
            c.types = Some(p.types.clone().unwrap_or_else(default_types));
        }
        merge(&mut c.keepalive_timeout, &p.keepalive_timeout, (Duration::from_secs(75), None));
        merge(&mut c.keepalive_requests, &p.keepalive_requests, 1000);
        merge(&mut c.keepalive_time, &p.keepalive_time, Duration::from_secs(3600));
        merge(&mut c.keepalive_disable, &p.keepalive_disable, KeepaliveDisable { msie6: true, safari: false });
        merge(&mut c.client_body_timeout, &p.client_body_timeout, Duration::from_secs(60));
        merge(&mut c.client_max_body_size, &p.client_max_body_size, 1024 * 1024);
        merge(&mut c.client_body_buffer_size, &p.client_body_buffer_size, 16 * 1024);
        merge(&mut c.client_body_temp_path, &p.client_body_temp_path, PathBuf::from("client_body_temp"));
        merge(&mut c.client_body_in_file_only, &p.client_body_in_file_only, BodyInFile::Off);
        merge(&mut c.client_body_in_single_buffer, &p.client_body_in_single_buffer, false);
        merge(&mut c.send_timeout, &p.send_timeout, Duration::from_secs(60));
        merge(&mut c.sendfile, &p.sendfile, false);
        merge(&mut c.tcp_nopush, &p.tcp_nopush, false);
        merge(&mut c.tcp_nodelay, &p.tcp_nodelay, true);
        merge(&mut c.postpone_output, &p.postpone_output, 1460);
        merge_opt(&mut c.limit_rate, &p.limit_rate);
        merge_opt(&mut c.limit_rate_after, &p.limit_rate_after);
        merge(&mut c.chunked_transfer_encoding, &p.chunked_transfer_encoding, true);
        merge(&mut c.absolute_redirect, &p.absolute_redirect, true);
        merge(&mut c.port_in_redirect, &p.port_in_redirect, true);
        merge(&mut c.server_name_in_redirect, &p.server_name_in_redirect, false);
        merge(&mut c.log_not_found, &p.log_not_found, true);
        merge(&mut c.etag, &p.etag, true);
        merge(&mut c.server_tokens, &p.server_tokens, ServerTokens::On);
        merge_opt(&mut c.error_pages, &p.error_pages);
        if c.error_log_targets.is_empty() {
            c.error_log.clone_from(&p.error_log);
        } else {
            let log = sluice_core::log::ErrorLog::open(&c.error_log_targets)
                .map_err(|e| format!("could not open error log file: {}", sluice_core::log::os_error(&e)))?;
            let log = Arc::new(log);
            sluice_core::log::track(&log);
            c.error_log = Some(log);
        }
        merge(&mut c.recursive_error_pages, &p.recursive_error_pages, false);
        merge(&mut c.lingering_close, &p.lingering_close, true);
        merge(&mut c.lingering_time, &p.lingering_time, Duration::from_secs(30));
        merge(&mut c.lingering_timeout, &p.lingering_timeout, Duration::from_secs(5));
        merge(&mut c.auth_delay, &p.auth_delay, Duration::ZERO);
        Ok(())
    }
}

/// The default port is 80 for root and 8000 otherwise, as nginx's.
fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}
