//! `proxy_redirect`: rewriting `Location` and `Refresh` in upstream
//! responses.
//!
//! `default` stands for the `proxy_pass` URL → the location's name (with a
//! URL without a URI part: URL + `/` → `/`); `off` turns rewriting off at
//! this level; `redirect replacement` replaces a matching prefix (compared
//! case-insensitively, as nginx does), `~regex` / `~*regex` a match, with
//! captures usable in the replacement. The first rule that matches wins.
//! Rules of a level replace the outer level's.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use regex::bytes::Regex;
use sluice_core::conf::directive as d;
use sluice_core::conf::{SetError, Statement};
use sluice_http::variables::ComplexValue;
use sluice_http::{HttpConfCx, Request};

use super::conf::{Pass, ProxyLocConf};

/// One rule.
pub(crate) enum Rule {
    /// `default`: resolved against the location's `proxy_pass` when used.
    Default,
    Prefix(ComplexValue, ComplexValue),
    Regex(Regex, ComplexValue),
}

/// The rules of a level (`off`: none).
#[derive(Default)]
pub(crate) struct Redirects {
    pub(crate) rules: Vec<Rule>,
    pub(crate) off: bool,
}

pub(crate) fn set_redirect(cx: &mut HttpConfCx, c: &mut ProxyLocConf, stmt: &Statement) -> Result<(), SetError> {
    let r = Arc::get_mut(c.redirect.get_or_insert_with(Default::default)).ok_or("proxy_redirect shared")?;
    if r.off {
        return Err(d::duplicate(stmt).into());
    }
    match (stmt.args.len(), stmt.arg(0)) {
        (1, "off") => {
            if !r.rules.is_empty() {
                return Err(d::duplicate(stmt).into());
            }
            r.off = true;
        }
        (1, "false") => r.off = true,
        (1, "default") => {
            if matches!(c.pass.as_deref(), Some(Pass::Dynamic(_))) {
                return Err(
                    "\"proxy_redirect default\" cannot be used with \"proxy_pass\" directive with variables".into()
                );
            }
            r.rules.push(Rule::Default);
        }
        (1, other) => return Err(format!("invalid parameter \"{other}\"").into()),
        (_, from) => {
            let to = cx.compile(stmt.arg(1))?;
            let rule = if let Some(re) = from.strip_prefix("~*") {
                Rule::Regex(Regex::new(&format!("(?i){re}")).map_err(|e| e.to_string())?, to)
            } else if let Some(re) = from.strip_prefix('~') {
                let re = Regex::new(re).map_err(|e| e.to_string())?;
                for n in re.capture_names().flatten() {
                    cx.vars.add_capture(n);
                }
                Rule::Regex(re, to)
            } else {
                Rule::Prefix(cx.compile(from)?, to)
            };
            r.rules.push(rule);
        }
    }
    Ok(())
}

/// The `default` rule for this location: (prefix, replacement).
pub(crate) fn default_rule(conf: &ProxyLocConf) -> Option<(Bytes, Bytes)> {
    let Some(Pass::Fixed { url, .. }) = conf.pass.as_deref() else { return None };
    let base = if url.host.starts_with("unix:") {
        format!("http://{}:", url.host)
    } else if url.explicit_port {
        format!("http://{}:{}", url.host, url.port)
    } else {
        format!("http://{}", url.host)
    };
    match (&url.uri, &conf.location) {
        (Some(uri), Some(loc)) => Some((Bytes::from(format!("{base}{uri}")), Bytes::from(loc.clone()))),
        (Some(_), None) => None,
        (None, _) => Some((Bytes::from(format!("{base}/")), Bytes::from_static(b"/"))),
    }
}

/// Rewrites a `Location` value (or the URL in a `Refresh` value, from
/// `offset` on); `None` when no rule matched.
pub(crate) fn rewrite_with(
    r: &mut Request,
    redirects: Option<&Redirects>,
    default: Option<&(Bytes, Bytes)>,
    value: &[u8],
    offset: usize,
) -> Option<Bytes> {
    let redirects = match redirects {
        Some(rd) if rd.off => return None,
        Some(rd) => Some(rd),
        None => None,
    };
    let target = &value[offset..];
    let splice = |replaced: &[u8], rest: &[u8]| {
        let mut out = BytesMut::with_capacity(value.len() + replaced.len());
        out.extend_from_slice(&value[..offset]);
        out.extend_from_slice(replaced);
        out.extend_from_slice(rest);
        out.freeze()
    };
    let default_only = [Rule::Default];
    let rules: &[Rule] = match redirects {
        Some(rd) => &rd.rules,
        None => &default_only,
    };
    for rule in rules {
        match rule {
            Rule::Default => {
                let Some((from, to)) = default else { continue };
                if starts_with_ci(target, from) {
                    return Some(splice(to, &target[from.len()..]));
                }
            }
            Rule::Prefix(from, to) => {
                let from = from.eval(r);
                if starts_with_ci(target, &from) {
                    let to = to.eval(r);
                    return Some(splice(&to, &target[from.len()..]));
                }
            }
            Rule::Regex(re, to) => {
                let Some(caps) = re.captures(target) else { continue };
                r.set_match(Bytes::copy_from_slice(target), re, &caps);
                // As nginx: a regex rule replaces the whole value.
                let to = to.eval(r);
                return Some(splice(&to, &[]));
            }
        }
    }
    None
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}
