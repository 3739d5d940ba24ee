//! The not_modified module: conditional requests (`If-Modified-Since`,
//! `If-None-Match`, `If-Match`, `If-Unmodified-Since`).
//!
//! ```text
//! location / { if_modified_since before; }   # off | exact (default) | before
//! ```
//!
//! A header filter, the first one to run (it is listed last in `src/lib.rs`),
//! as nginx's `ngx_http_not_modified_filter_module` sits at the top of the
//! chain: it sees the handler's own head, before `add_header` or any
//! transforming filter. It acts on 200 responses only:
//!
//! * `If-Unmodified-Since` older than `Last-Modified` (or no `Last-Modified`),
//!   or an `If-Match` list without the response's `ETag` (strong comparison,
//!   `*` matches any): 412, with the built-in page;
//! * else `If-Modified-Since` equal to `Last-Modified` (`exact`), or not older
//!   (`before`), and/or an `If-None-Match` list holding the `ETag` (weak
//!   comparison, `W/` ignored on both sides; `*` matches any): 304 without
//!   body, `Content-Type`, `Content-Length`, `Accept-Ranges` or
//!   `Content-Encoding`; `Last-Modified` and `ETag` stay. When both are sent,
//!   both must say "not modified".
//!
//! Per-request state: none. Not done: `error_page` for the 412 (the built-in
//! page is sent, as for a filter there is no way back to the phases).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sluice_core::conf::directive::{enumeration, Args, Contexts as C, Directive, Level};
use sluice_core::{Buf, Chain};
use sluice_http::core_module::ServerTokens;
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::{
    AnyConf, ConfKey, FilterResult, HeaderFilter, HttpConfCx, HttpModule, ModuleIndex, NextHeader, PostConf, Request,
};

/// `if_modified_since`: how `If-Modified-Since` is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfModifiedSince {
    /// Ignore the header.
    Off,
    /// Not modified when the dates are equal (the default).
    Exact,
    /// Not modified when the header's date is not older.
    Before,
}

const IMS_VALUES: &[(&str, IfModifiedSince)] =
    &[("off", IfModifiedSince::Off), ("exact", IfModifiedSince::Exact), ("before", IfModifiedSince::Before)];

/// Location conf.
#[derive(Debug, Default)]
pub struct NotModifiedLocConf {
    /// `if_modified_since` (exact).
    pub if_modified_since: Option<IfModifiedSince>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), NotModifiedLocConf> = ConfKey::new();

/// The not_modified module.
#[derive(Debug)]
pub struct NotModifiedModule;

/// Seconds since the epoch, negative before it (nginx's `time_t`).
pub(crate) fn epoch_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// A request header's date in epoch seconds; -1 when unparsable, as
/// nginx's `ngx_parse_http_time`.
fn header_time(v: &[u8]) -> i64 {
    std::str::from_utf8(v).ok().and_then(sluice_core::time::parse_http_date).map(epoch_secs).unwrap_or(-1)
}

/// True when `list` (an `If-Match` / `If-None-Match` value) names `etag`.
/// `weak` ignores `W/` prefixes on both sides (`If-None-Match`).
pub(crate) fn etag_listed(list: &[u8], etag: Option<&[u8]>, weak: bool) -> bool {
    if list == b"*" {
        return true;
    }
    let Some(mut etag) = etag else {
        return false;
    };
    if weak && etag.len() > 2 && etag.starts_with(b"W/") {
        etag = &etag[2..];
    }
    let is_space = |c: &u8| *c == b' ' || *c == b'\t';
    let mut rest = list;
    while !rest.is_empty() {
        if weak && rest.len() > 2 && rest.starts_with(b"W/") {
            rest = &rest[2..];
        }
        if etag.len() > rest.len() {
            return false;
        }
        if rest.starts_with(etag) {
            let after = &rest[etag.len()..];
            let skip = after.iter().take_while(|c| is_space(c)).count();
            if after.len() == skip || after[skip] == b',' {
                return true;
            }
        }
        // On to the next element of the list.
        let comma = memchr::memchr(b',', rest).unwrap_or(rest.len());
        rest = &rest[comma..];
        let skip = rest.iter().take_while(|c| is_space(c) || **c == b',').count();
        rest = &rest[skip..];
    }
    false
}

/// nginx's `ngx_http_test_if_modified`: true when the entity counts as
/// modified since `ims`.
fn modified_since(mode: IfModifiedSince, last_modified: Option<i64>, ims: i64) -> bool {
    let Some(lm) = last_modified else {
        return true;
    };
    if mode == IfModifiedSince::Off {
        return true;
    }
    if ims == lm {
        return false;
    }
    mode == IfModifiedSince::Exact || ims < lm
}

/// Answers with `status` and its built-in page from inside a header filter:
/// the filters below get the error head, the page goes down the body
/// filters with `last_buf`, so whatever the handler sends afterwards is
/// dropped. `clean` empties the head first (nginx's
/// `ngx_http_filter_finalize_request`, used for 412); otherwise only the
/// entity's validators go (nginx's special response, used for 416, which
/// keeps `Content-Range`).
pub(crate) fn finalize_with_page(r: &mut Request, status: u16, next: NextHeader<'_>, clean: bool) -> FilterResult {
    let tokens = r.core_loc().server_tokens.unwrap_or(ServerTokens::On);
    let page = sluice_http::special::page(status, tokens).unwrap_or_default();
    // The page is not the entity a filter above prepared to transform.
    crate::charset::forget(r);
    if clean {
        r.headers_out.headers.clear();
    } else {
        r.headers_out.remove("ETag");
        r.headers_out.remove("Accept-Ranges");
    }
    let ho = &mut r.headers_out;
    ho.status = status;
    ho.last_modified = None;
    ho.location = None;
    ho.content_type = Some(Bytes::from_static(b"text/html"));
    ho.content_length = Some(page.len() as u64);
    next.call(r)?;
    let mut chain = Chain::new();
    if !r.header_only && !page.is_empty() {
        chain.push(Buf::mem(page));
    }
    chain.push(Buf::last());
    r.output(chain)
}

/// The header filter.
struct NotModifiedFilter;

impl HeaderFilter for NotModifiedFilter {
    fn header_filter(&self, r: &mut Request, next: NextHeader<'_>) -> FilterResult {
        // One pass over the request's fields: all four conditions start
        // with "If-".
        let conditional = ["If-Unmodified-Since", "If-Match", "If-Modified-Since", "If-None-Match"];
        let any = r.head.headers.iter().any(|h| {
            h.name.len() >= 8
                && h.name[..3].eq_ignore_ascii_case(b"if-")
                && conditional.iter().any(|c| h.name.eq_ignore_ascii_case(c.as_bytes()))
        });
        if r.headers_out.status != 200 || !any {
            return next.call(r);
        }
        let lm = r.headers_out.last_modified.map(epoch_secs);
        let etag = r.headers_out.get("ETag");
        if let Some(ius) = r.header("If-Unmodified-Since") {
            // nginx: without Last-Modified the condition cannot hold.
            if lm.is_none_or(|lm| header_time(ius) < lm) {
                return finalize_with_page(r, 412, next, true);
            }
        }
        if let Some(im) = r.header("If-Match") {
            if !etag_listed(im, etag.as_deref(), false) {
                return finalize_with_page(r, 412, next, true);
            }
        }
        let ims = r.header("If-Modified-Since").map(|v| header_time(v));
        let inm = r.header("If-None-Match").cloned();
        if ims.is_none() && inm.is_none() {
            return next.call(r);
        }
        let mode = r.loc_conf(&KEY).if_modified_since.unwrap_or(IfModifiedSince::Exact);
        if ims.is_some_and(|ims| modified_since(mode, lm, ims)) {
            return next.call(r);
        }
        if inm.is_some_and(|inm| !etag_listed(&inm, etag.as_deref(), true)) {
            return next.call(r);
        }
        let ho = &mut r.headers_out;
        ho.status = 304;
        ho.content_type = None;
        ho.content_length = None;
        r.headers_out.remove("Accept-Ranges");
        r.headers_out.remove("Content-Encoding");
        next.call(r)
    }
}

impl HttpModule for NotModifiedModule {
    fn name(&self) -> &'static str {
        "not_modified"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![Directive::new(
            "if_modified_since",
            C::HTTP_ANY,
            Args::TAKE1,
            Level::Loc,
            enumeration(IMS_VALUES, |c: &mut NotModifiedLocConf| &mut c.if_modified_since),
        )]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(NotModifiedLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &NotModifiedLocConf = downcast(parent);
        let c: &mut NotModifiedLocConf = downcast_mut(child);
        c.if_modified_since = c.if_modified_since.or(p.if_modified_since);
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.push_header_filter(Arc::new(NotModifiedFilter));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &[u8] = b"\"5f3e1a00-1a\"";

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        assert!(etag_listed(TAG, Some(TAG), true));
        assert!(!etag_listed(b"\"foo\"", Some(TAG), true));
        assert!(etag_listed(b"\"foo\", \"bar\", \"5f3e1a00-1a\" , \"baz\"", Some(TAG), true));
        assert!(etag_listed(b"*", Some(TAG), true));
        assert!(etag_listed(b"*", None, true));
        assert!(etag_listed(b"W/\"5f3e1a00-1a\"", Some(TAG), true));
        assert!(etag_listed(b"\"5f3e1a00-1a\"", Some(b"W/\"5f3e1a00-1a\""), true));
        assert!(!etag_listed(TAG, None, true));
        // A prefix of another tag is not a match.
        assert!(!etag_listed(b"\"5f3e1a00-1a\"x", Some(TAG), true));
        assert!(!etag_listed(b"\"5f3e1a00-1", Some(TAG), true));
    }

    #[test]
    fn if_match_is_strong() {
        assert!(etag_listed(TAG, Some(TAG), false));
        assert!(!etag_listed(b"\"foo\"", Some(TAG), false));
        assert!(etag_listed(b"\"foo\", \"bar\", \t\"5f3e1a00-1a\" , \"baz\"", Some(TAG), false));
        assert!(etag_listed(b"*", Some(TAG), false));
        assert!(!etag_listed(b"W/\"5f3e1a00-1a\"", Some(TAG), false));
    }

    #[test]
    fn if_modified_since_modes() {
        use IfModifiedSince::*;
        let lm = Some(1000);
        assert!(!modified_since(Exact, lm, 1000));
        assert!(modified_since(Exact, lm, 1001));
        assert!(modified_since(Exact, lm, 999));
        assert!(!modified_since(Before, lm, 1001));
        assert!(modified_since(Before, lm, 999));
        assert!(modified_since(Before, lm, -1), "an unparsable date is modified");
        assert!(modified_since(Off, lm, 1000));
        assert!(modified_since(Exact, None, 1000), "no Last-Modified: always modified");
    }

    #[test]
    fn header_dates() {
        assert_eq!(header_time(b"Wed, 08 Jul 2037 22:53:52 GMT"), 0x7F00_0000);
        assert_eq!(header_time(b"Tue, 19 Jan 2038 03:14:07 GMT"), 0x7FFF_FFFF);
        assert_eq!(header_time(b"garbage"), -1);
        assert_eq!(epoch_secs(UNIX_EPOCH - std::time::Duration::from_secs(5)), -5);
    }
}
