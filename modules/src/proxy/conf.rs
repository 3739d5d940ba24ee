//! The proxy module's location conf and directive table.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_core::conf::directive::{self as d, custom, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_http::config::LocationKind;
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::variables::ComplexValue;
use sluice_http::{AnyConf, ConfKey, HttpConfCx, HttpModule, ModuleIndex, PreConf};

use super::redirect::Redirects;
use super::url::{self, ProxyUrl};
use crate::upstream::GroupRef;

/// Where `proxy_pass` sends requests.
pub(crate) enum Pass {
    /// A URL fixed at configuration time.
    Fixed {
        url: ProxyUrl,
        group: Arc<GroupRef>,
        /// `$proxy_host`.
        proxy_host: Bytes,
    },
    /// A URL with variables, evaluated per request.
    Dynamic(ComplexValue),
}

/// `proxy_next_upstream` conditions.
pub(crate) mod next {
    pub const ERROR: u32 = 1;
    pub const TIMEOUT: u32 = 1 << 1;
    pub const INVALID_HEADER: u32 = 1 << 2;
    pub const HTTP_500: u32 = 1 << 3;
    pub const HTTP_502: u32 = 1 << 4;
    pub const HTTP_503: u32 = 1 << 5;
    pub const HTTP_504: u32 = 1 << 6;
    pub const HTTP_403: u32 = 1 << 7;
    pub const HTTP_404: u32 = 1 << 8;
    pub const HTTP_429: u32 = 1 << 9;
    pub const NON_IDEMPOTENT: u32 = 1 << 10;
    /// `off`.
    pub const OFF: u32 = 1 << 31;

    /// The condition a status is.
    pub fn for_status(status: u16) -> u32 {
        match status {
            500 => HTTP_500,
            502 => HTTP_502,
            503 => HTTP_503,
            504 => HTTP_504,
            403 => HTTP_403,
            404 => HTTP_404,
            429 => HTTP_429,
            _ => 0,
        }
    }
}

/// `proxy_ignore_headers` fields.
pub(crate) mod ignore {
    pub const X_ACCEL_REDIRECT: u32 = 1;
    pub const X_ACCEL_EXPIRES: u32 = 1 << 1;
    pub const X_ACCEL_LIMIT_RATE: u32 = 1 << 2;
    pub const X_ACCEL_BUFFERING: u32 = 1 << 3;
    pub const X_ACCEL_CHARSET: u32 = 1 << 4;
    pub const EXPIRES: u32 = 1 << 5;
    pub const CACHE_CONTROL: u32 = 1 << 6;
    pub const SET_COOKIE: u32 = 1 << 7;
    pub const VARY: u32 = 1 << 8;
}

/// The proxy's location conf (every field unset until merged).
#[derive(Default)]
pub struct ProxyLocConf {
    pub(crate) pass: Option<Arc<Pass>>,
    /// The location's name, for replacing it with the URL's URI part.
    pub(crate) location: Option<String>,
    pub(crate) http_version: Option<u8>,
    pub(crate) set_headers: Option<Arc<Vec<(Bytes, ComplexValue)>>>,
    pub(crate) pass_request_headers: Option<bool>,
    pub(crate) pass_request_body: Option<bool>,
    pub(crate) set_body: Option<ComplexValue>,
    pub(crate) method: Option<ComplexValue>,
    pub(crate) hide_headers: Option<Vec<Bytes>>,
    pub(crate) pass_headers: Option<Vec<Bytes>>,
    pub(crate) ignore_headers: Option<u32>,
    pub(crate) redirect: Option<Arc<Redirects>>,
    pub(crate) cookie_domains: Option<Arc<super::cookie::CookieRules>>,
    pub(crate) cookie_paths: Option<Arc<super::cookie::CookieRules>>,
    pub(crate) cookie_flags: Option<Arc<super::cookie::FlagRules>>,
    pub(crate) intercept_errors: Option<bool>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) send_timeout: Option<Duration>,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) request_buffering: Option<bool>,
    pub(crate) buffering: Option<bool>,
    pub(crate) buffer_size: Option<u64>,
    pub(crate) buffers: Option<(u64, u64)>,
    pub(crate) busy_buffers_size: Option<u64>,
    pub(crate) max_temp_file_size: Option<u64>,
    pub(crate) temp_file_write_size: Option<u64>,
    pub(crate) temp_path: Option<PathBuf>,
    pub(crate) next_upstream: Option<u32>,
    pub(crate) next_upstream_tries: Option<u64>,
    pub(crate) next_upstream_timeout: Option<Duration>,
    pub(crate) ignore_client_abort: Option<bool>,
    pub(crate) socket_keepalive: Option<bool>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), ProxyLocConf> = ConfKey::new();

/// The proxy module.
#[derive(Debug)]
pub struct ProxyModule;

/// The page size, nginx's default for `proxy_buffer_size` and `proxy_buffers`.
pub(crate) const PAGE: u64 = 4096;

impl ProxyLocConf {
    pub(crate) fn buffer_size(&self) -> u64 {
        self.buffer_size.unwrap_or(PAGE)
    }
    pub(crate) fn buffers(&self) -> (u64, u64) {
        self.buffers.unwrap_or((8, PAGE))
    }
    pub(crate) fn next_upstream(&self) -> u32 {
        self.next_upstream.unwrap_or(next::ERROR | next::TIMEOUT)
    }
}

fn set_pass(cx: &mut HttpConfCx, c: &mut ProxyLocConf, stmt: &Statement) -> Result<(), SetError> {
    if c.pass.is_some() {
        return Err(d::duplicate(stmt).into());
    }
    let kind = cx.location_kind();
    let text = stmt.arg(0);
    let value = cx.compile(text)?;
    let pass = if value.has_variables() {
        Pass::Dynamic(value)
    } else {
        let u = url::parse(text)?;
        if u.uri.is_some() && matches!(kind, LocationKind::Regex | LocationKind::Named | LocationKind::If) {
            return Err("\"proxy_pass\" cannot have URI part in location given by regular expression, or inside \
                        named location, or inside \"if\" statement, or inside \"limit_except\" block"
                .into());
        }
        let group = cx.with_main_conf(&crate::upstream::KEY, |m| {
            m.reference(&u.host, u.port, u.explicit_port, stmt.origin.clone())
        });
        let proxy_host = Bytes::from(u.proxy_host());
        Pass::Fixed { url: u, group, proxy_host }
    };
    c.location = match kind {
        LocationKind::Prefix(n) | LocationKind::Exact(n) => Some(n),
        _ => None,
    };
    c.pass = Some(Arc::new(pass));
    if matches!(cx.location_kind(), LocationKind::Prefix(ref n) | LocationKind::Exact(ref n) if n.ends_with('/')) {
        cx.set_auto_redirect()?;
    }
    cx.set_content_handler(super::handler())
}

fn set_http_version(_: &mut HttpConfCx, c: &mut ProxyLocConf, stmt: &Statement) -> Result<(), SetError> {
    c.http_version = Some(match stmt.arg(0) {
        "1.0" => 0,
        "1.1" => 1,
        other => return Err(format!("invalid value \"{other}\" in \"{}\" directive", stmt.name).into()),
    });
    Ok(())
}

fn set_header(cx: &mut HttpConfCx, c: &mut ProxyLocConf, stmt: &Statement) -> Result<(), SetError> {
    let value = cx.compile(stmt.arg(1))?;
    let list = Arc::make_mut(c.set_headers.get_or_insert_with(Default::default));
    list.push((Bytes::from(stmt.arg(0).to_string()), value));
    Ok(())
}

fn push_name(field: &mut Option<Vec<Bytes>>, stmt: &Statement) {
    field.get_or_insert_with(Vec::new).push(Bytes::from(stmt.arg(0).to_ascii_lowercase()));
}

fn set_ignore_headers(_: &mut HttpConfCx, c: &mut ProxyLocConf, stmt: &Statement) -> Result<(), SetError> {
    let mut mask = 0;
    for a in &stmt.args {
        mask |= match a.as_str().to_ascii_lowercase().as_str() {
            "x-accel-redirect" => ignore::X_ACCEL_REDIRECT,
            "x-accel-expires" => ignore::X_ACCEL_EXPIRES,
            "x-accel-limit-rate" => ignore::X_ACCEL_LIMIT_RATE,
            "x-accel-buffering" => ignore::X_ACCEL_BUFFERING,
            "x-accel-charset" => ignore::X_ACCEL_CHARSET,
            "expires" => ignore::EXPIRES,
            "cache-control" => ignore::CACHE_CONTROL,
            "set-cookie" => ignore::SET_COOKIE,
            "vary" => ignore::VARY,
            other => return Err(format!("invalid value \"{other}\" in \"{}\" directive", stmt.name).into()),
        };
    }
    c.ignore_headers = Some(mask);
    Ok(())
}

fn set_next_upstream(_: &mut HttpConfCx, c: &mut ProxyLocConf, stmt: &Statement) -> Result<(), SetError> {
    let mut mask = 0;
    for a in &stmt.args {
        mask |= match a.as_str() {
            "error" => next::ERROR,
            "timeout" => next::TIMEOUT,
            "invalid_header" => next::INVALID_HEADER,
            "http_500" => next::HTTP_500,
            "http_502" => next::HTTP_502,
            "http_503" => next::HTTP_503,
            "http_504" => next::HTTP_504,
            "http_403" => next::HTTP_403,
            "http_404" => next::HTTP_404,
            "http_429" => next::HTTP_429,
            "non_idempotent" => next::NON_IDEMPOTENT,
            "off" => next::OFF,
            other => return Err(format!("invalid value \"{other}\"").into()),
        };
    }
    if mask & next::OFF != 0 && mask != next::OFF {
        return Err("invalid value \"off\"".into());
    }
    c.next_upstream = Some(mask);
    Ok(())
}

fn set_buffers(_: &mut HttpConfCx, c: &mut ProxyLocConf, stmt: &Statement) -> Result<(), SetError> {
    let n: u64 = stmt.arg(0).parse().map_err(|_| format!("invalid value \"{}\"", stmt.arg(0)))?;
    let size = sluice_core::conf::value::parse_size(stmt.arg(1)).ok_or(format!("invalid value \"{}\"", stmt.arg(1)))?;
    if n == 0 || size == 0 {
        return Err(format!("invalid value \"{} {}\"", stmt.arg(0), stmt.arg(1)).into());
    }
    c.buffers = Some((n, size));
    Ok(())
}

fn set_temp_path(cx: &mut HttpConfCx, c: &mut ProxyLocConf, stmt: &Statement) -> Result<(), SetError> {
    // Levels (`proxy_temp_path dir 1 2`) are accepted: files go straight in
    // the directory, which only changes how many share it.
    for level in &stmt.args[1..] {
        if !matches!(level.as_str(), "1" | "2") {
            return Err(format!("invalid value \"{}\"", level.as_str()).into());
        }
    }
    c.temp_path = Some(cx.full_path(stmt.arg(0)));
    Ok(())
}

impl HttpModule for ProxyModule {
    fn name(&self) -> &'static str {
        "proxy"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn preconfiguration(&self, cf: &mut PreConf) -> Result<(), String> {
        super::vars::add(cf.vars)
    }

    #[rustfmt::skip]
    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        use Level::Loc;
        let any = C::HTTP_ANY;
        vec![
            Directive::new("proxy_pass", C::HTTP_LOC | C::HTTP_LIF | C::HTTP_LMT, Args::TAKE1, Loc, custom(set_pass)),
            Directive::new("proxy_http_version", any, Args::TAKE1, Loc, custom(set_http_version)),
            Directive::new("proxy_set_header", any, Args::TAKE2, Loc, custom(set_header)),
            Directive::new("proxy_pass_request_headers", any, Args::FLAG, Loc, d::flag(|c: &mut ProxyLocConf| &mut c.pass_request_headers)),
            Directive::new("proxy_pass_request_body", any, Args::FLAG, Loc, d::flag(|c: &mut ProxyLocConf| &mut c.pass_request_body)),
            Directive::new("proxy_set_body", any, Args::TAKE1, Loc, custom(|cx: &mut HttpConfCx, c: &mut ProxyLocConf, s| {
                c.set_body = Some(cx.compile(s.arg(0))?);
                Ok(())
            })),
            Directive::new("proxy_method", any, Args::TAKE1, Loc, custom(|cx: &mut HttpConfCx, c: &mut ProxyLocConf, s| {
                c.method = Some(cx.compile(s.arg(0))?);
                Ok(())
            })),
            Directive::new("proxy_hide_header", any, Args::TAKE1, Loc, custom(|_: &mut HttpConfCx, c: &mut ProxyLocConf, s| {
                push_name(&mut c.hide_headers, s);
                Ok(())
            })),
            Directive::new("proxy_pass_header", any, Args::TAKE1, Loc, custom(|_: &mut HttpConfCx, c: &mut ProxyLocConf, s| {
                push_name(&mut c.pass_headers, s);
                Ok(())
            })),
            Directive::new("proxy_ignore_headers", any, Args::MORE1, Loc, custom(set_ignore_headers)),
            Directive::new("proxy_redirect", any, Args::TAKE12, Loc, custom(super::redirect::set_redirect)),
            Directive::new("proxy_cookie_domain", any, Args::TAKE12, Loc, custom(|cx: &mut HttpConfCx, c: &mut ProxyLocConf, s| super::cookie::set_domain(cx, &mut c.cookie_domains, s))),
            Directive::new("proxy_cookie_path", any, Args::TAKE12, Loc, custom(|cx: &mut HttpConfCx, c: &mut ProxyLocConf, s| super::cookie::set_path(cx, &mut c.cookie_paths, s))),
            Directive::new("proxy_cookie_flags", any, Args::TAKE1234, Loc, custom(|cx: &mut HttpConfCx, c: &mut ProxyLocConf, s| super::cookie::set_flags(cx, &mut c.cookie_flags, s))),
            Directive::new("proxy_intercept_errors", any, Args::FLAG, Loc, d::flag(|c: &mut ProxyLocConf| &mut c.intercept_errors)),
            Directive::new("proxy_connect_timeout", any, Args::TAKE1, Loc, d::time(|c: &mut ProxyLocConf| &mut c.connect_timeout)),
            Directive::new("proxy_send_timeout", any, Args::TAKE1, Loc, d::time(|c: &mut ProxyLocConf| &mut c.send_timeout)),
            Directive::new("proxy_read_timeout", any, Args::TAKE1, Loc, d::time(|c: &mut ProxyLocConf| &mut c.read_timeout)),
            Directive::new("proxy_request_buffering", any, Args::FLAG, Loc, d::flag(|c: &mut ProxyLocConf| &mut c.request_buffering)),
            Directive::new("proxy_buffering", any, Args::FLAG, Loc, d::flag(|c: &mut ProxyLocConf| &mut c.buffering)),
            Directive::new("proxy_buffer_size", any, Args::TAKE1, Loc, d::size(|c: &mut ProxyLocConf| &mut c.buffer_size)),
            Directive::new("proxy_buffers", any, Args::TAKE2, Loc, custom(set_buffers)),
            Directive::new("proxy_busy_buffers_size", any, Args::TAKE1, Loc, d::size(|c: &mut ProxyLocConf| &mut c.busy_buffers_size)),
            Directive::new("proxy_max_temp_file_size", any, Args::TAKE1, Loc, d::size(|c: &mut ProxyLocConf| &mut c.max_temp_file_size)),
            Directive::new("proxy_temp_file_write_size", any, Args::TAKE1, Loc, d::size(|c: &mut ProxyLocConf| &mut c.temp_file_write_size)),
            Directive::new("proxy_temp_path", any, Args::TAKE1234, Loc, custom(set_temp_path)),
            Directive::new("proxy_next_upstream", any, Args::MORE1, Loc, custom(set_next_upstream)),
            Directive::new("proxy_next_upstream_tries", any, Args::TAKE1, Loc, d::number(|c: &mut ProxyLocConf| &mut c.next_upstream_tries)),
            Directive::new("proxy_next_upstream_timeout", any, Args::TAKE1, Loc, d::time(|c: &mut ProxyLocConf| &mut c.next_upstream_timeout)),
            Directive::new("proxy_ignore_client_abort", any, Args::FLAG, Loc, d::flag(|c: &mut ProxyLocConf| &mut c.ignore_client_abort)),
            Directive::new("proxy_socket_keepalive", any, Args::FLAG, Loc, d::flag(|c: &mut ProxyLocConf| &mut c.socket_keepalive)),
        ]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(ProxyLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &ProxyLocConf = downcast(parent);
        let c: &mut ProxyLocConf = downcast_mut(child);
        macro_rules! inherit {
            ($($f:ident),*) => { $( if c.$f.is_none() { c.$f.clone_from(&p.$f); } )* };
        }
        // `proxy_pass` reaches `if` blocks and nested locations only through
        // the content handler, which is the location's own; the target is
        // inherited so an `if` inside a proxied location still proxies.
        if c.pass.is_none() {
            c.pass.clone_from(&p.pass);
            c.location.clone_from(&p.location);
        }
        inherit!(http_version, set_headers, pass_request_headers, pass_request_body, set_body, method);
        inherit!(
            hide_headers,
            pass_headers,
            ignore_headers,
            redirect,
            cookie_domains,
            cookie_paths,
            cookie_flags,
            intercept_errors
        );
        inherit!(connect_timeout, send_timeout, read_timeout, request_buffering, buffering, buffer_size, buffers);
        inherit!(busy_buffers_size, max_temp_file_size, temp_file_write_size, temp_path);
        inherit!(next_upstream, next_upstream_tries, next_upstream_timeout, ignore_client_abort, socket_keepalive);
        let (n, size) = c.buffers();
        if n < 2 {
            return Err("there must be at least 2 \"proxy_buffers\"".into());
        }
        let busy = c.busy_buffers_size.unwrap_or(2 * size.max(c.buffer_size()));
        if busy < size.max(c.buffer_size()) {
            return Err("\"proxy_busy_buffers_size\" must be equal to or greater than the maximum of the value of \
                        \"proxy_buffer_size\" and one of the \"proxy_buffers\""
                .into());
        }
        if busy > (n - 1) * size {
            return Err(
                "\"proxy_busy_buffers_size\" must be less than the size of all \"proxy_buffers\" minus one buffer"
                    .into(),
            );
        }
        Ok(())
    }
}
