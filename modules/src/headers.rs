//! The headers module: `add_header` and `add_trailer`.
//!
//! ```text
//! add_header X-Frame-Options DENY;
//! add_header Cache-Control "max-age=$arg_age" always;
//! add_trailer X-Checksum $request_id;
//! ```
//!
//! A header filter. Headers are added to responses with status 200, 201,
//! 204, 206, 301, 302, 303, 304, 307 or 308, or to every response with
//! `always`; an empty value adds nothing. A level with its own `add_header`
//! lines does not inherit the outer level's (as in nginx); the same holds
//! for `add_trailer`, independently. Trailers go out after a chunked body.

use std::sync::Arc;

use sluice_core::conf::directive::{custom, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::variables::ComplexValue;
use sluice_http::{
    AnyConf, ConfKey, FilterResult, HeaderFilter, HttpConfCx, HttpModule, ModuleIndex, NextHeader, PostConf, Request,
};

/// One `add_header` / `add_trailer` line.
#[derive(Clone)]
struct Entry {
    name: bytes::Bytes,
    value: ComplexValue,
    always: bool,
}

/// Location conf.
#[derive(Default)]
pub struct HeadersLocConf {
    headers: Option<Vec<Entry>>,
    trailers: Option<Vec<Entry>>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), HeadersLocConf> = ConfKey::new();

/// The headers module.
#[derive(Debug)]
pub struct HeadersModule;

fn parse_entry(cx: &mut HttpConfCx, stmt: &Statement) -> Result<Entry, SetError> {
    let always = match stmt.args.get(2).map(|a| a.as_str()) {
        None => false,
        Some("always") => true,
        Some(other) => return Err(format!("invalid value \"{other}\"").into()),
    };
    Ok(Entry { name: bytes::Bytes::from(stmt.arg(0).to_string()), value: cx.compile(stmt.arg(1))?, always })
}

fn status_gets_headers(status: u16) -> bool {
    matches!(status, 200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308)
}

/// The header filter.
struct HeadersFilter;

impl HeaderFilter for HeadersFilter {
    fn header_filter(&self, r: &mut Request, next: NextHeader<'_>) -> FilterResult {
        let conf = r.loc_conf(&KEY);
        if conf.headers.is_none() && conf.trailers.is_none() {
            return next.call(r);
        }
        let safe = status_gets_headers(r.headers_out.status);
        let headers = conf.headers.clone().unwrap_or_default();
        let trailers = conf.trailers.clone().unwrap_or_default();
        for e in headers.iter().filter(|e| safe || e.always) {
            let v = e.value.eval(r);
            if !v.is_empty() {
                r.headers_out.add(e.name.clone(), v);
            }
        }
        if r.protocol() == "HTTP/1.1" && !r.header_only {
            for e in trailers.iter().filter(|e| safe || e.always) {
                let v = e.value.eval(r);
                if !v.is_empty() {
                    r.headers_out.trailers.push((e.name.clone(), v));
                }
            }
        }
        next.call(r)
    }
}

impl HttpModule for HeadersModule {
    fn name(&self) -> &'static str {
        "headers"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        let ctx = C::HTTP_ANY | C::HTTP_LIF;
        vec![
            Directive::new(
                "add_header",
                ctx,
                Args::TAKE23,
                Level::Loc,
                custom(|cx, c: &mut HeadersLocConf, s| {
                    let e = parse_entry(cx, s)?;
                    c.headers.get_or_insert_with(Vec::new).push(e);
                    Ok(())
                }),
            ),
            Directive::new(
                "add_trailer",
                ctx,
                Args::TAKE23,
                Level::Loc,
                custom(|cx, c: &mut HeadersLocConf, s| {
                    let e = parse_entry(cx, s)?;
                    c.trailers.get_or_insert_with(Vec::new).push(e);
                    Ok(())
                }),
            ),
        ]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(HeadersLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &HeadersLocConf = downcast(parent);
        let c: &mut HeadersLocConf = downcast_mut(child);
        if c.headers.is_none() {
            c.headers.clone_from(&p.headers);
        }
        if c.trailers.is_none() {
            c.trailers.clone_from(&p.trailers);
        }
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.push_header_filter(Arc::new(HeadersFilter));
        Ok(())
    }
}
