//! `proxy_cookie_domain`, `proxy_cookie_path` and `proxy_cookie_flags`:
//! rewriting the `Set-Cookie` fields an upstream sends.
//!
//! ```text
//! proxy_cookie_domain backend.internal example.com;
//! proxy_cookie_path   /app/ /;
//! proxy_cookie_path   ~*^/old/(.+)$ /new/$1;
//! proxy_cookie_flags  session secure httponly samesite=lax;
//! ```
//!
//! As nginx reads them: a domain rule matches the whole attribute value
//! without case (a leading dot in the value, or in the rule's words, does
//! not count and stays in the value); a path rule matches the value's
//! start, with case; `~regex` matches the value (`~*`, and every domain
//! regex, without case) and its replacement, captures usable, replaces
//! all of it. For each attribute the first rule that matches applies. A
//! field that changed is written again as nginx writes it: attributes
//! joined by `; `, blanks around `=` and `;` dropped; one that did not is
//! passed as it came. Rules of a level replace the outer level's; `off`
//! turns them off there.
//!
//! `proxy_cookie_flags` names a cookie (without case, variables allowed;
//! `~regex` without case too) and flags: `secure`, `httponly`,
//! `samesite=strict|lax|none` add the attribute or set its value, and
//! `nosecure`, `nohttponly`, `nosamesite` remove it. Flags may come from
//! variables; an empty or unknown one is skipped. The first rule whose
//! cookie matches applies.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use regex::bytes::Regex;
use sluice_core::conf::directive as d;
use sluice_core::conf::{SetError, Statement};
use sluice_http::variables::ComplexValue;
use sluice_http::{HttpConfCx, Request};

/// Which attribute a directive rewrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attr {
    Domain,
    Path,
}

/// One rule.
pub(crate) enum Rule {
    /// The value (less a leading dot, for a domain) equal to, or for a
    /// path starting with, the pattern.
    Text(ComplexValue, ComplexValue),
    /// A match of the whole value.
    Regex(Regex, ComplexValue),
}

/// The rules of one level for one directive (`off`: none).
pub(crate) struct Rules<R> {
    rules: Vec<R>,
    off: bool,
}

impl<R> Default for Rules<R> {
    fn default() -> Self {
        Rules { rules: Vec::new(), off: false }
    }
}

impl<R> Rules<R> {
    /// True when rules apply at this level (set and not `off`).
    pub(crate) fn active(rules: Option<&Arc<Rules<R>>>) -> bool {
        rules.is_some_and(|r| !r.off && !r.rules.is_empty())
    }

    /// The level's rules, to add the rule `stmt` gives; `None` when `stmt`
    /// was `off` (alone at a level, as in nginx), which is taken here.
    fn for_rule<'a>(c: &'a mut Option<Arc<Rules<R>>>, stmt: &Statement) -> Result<Option<&'a mut Rules<R>>, SetError> {
        let rules = Arc::get_mut(c.get_or_insert_with(Default::default)).ok_or("cookie rules shared")?;
        if rules.off {
            return Err(d::duplicate(stmt).into());
        }
        if stmt.args.len() > 1 {
            return Ok(Some(rules));
        }
        if stmt.arg(0) != "off" {
            return Err(format!("invalid parameter \"{}\"", stmt.arg(0)).into());
        }
        if !rules.rules.is_empty() {
            return Err(d::duplicate(stmt).into());
        }
        rules.off = true;
        Ok(None)
    }
}

/// `proxy_cookie_domain` or `proxy_cookie_path` rules.
pub(crate) type CookieRules = Rules<Rule>;

pub(crate) fn set_domain(
    cx: &mut HttpConfCx,
    c: &mut Option<Arc<CookieRules>>,
    stmt: &Statement,
) -> Result<(), SetError> {
    set(cx, c, stmt, Attr::Domain)
}

pub(crate) fn set_path(
    cx: &mut HttpConfCx,
    c: &mut Option<Arc<CookieRules>>,
    stmt: &Statement,
) -> Result<(), SetError> {
    set(cx, c, stmt, Attr::Path)
}

fn set(cx: &mut HttpConfCx, c: &mut Option<Arc<CookieRules>>, stmt: &Statement, attr: Attr) -> Result<(), SetError> {
    let Some(rules) = Rules::for_rule(c, stmt)? else {
        return Ok(());
    };
    let (from, to) = (stmt.arg(0), stmt.arg(1));
    let rule = if let Some(re) = from.strip_prefix('~') {
        let (re, caseless) = match re.strip_prefix('*') {
            Some(re) => (re, true),
            None => (re, attr == Attr::Domain),
        };
        let re = Regex::new(&if caseless { format!("(?i){re}") } else { re.to_string() }).map_err(|e| e.to_string())?;
        for n in re.capture_names().flatten() {
            cx.vars.add_capture(n);
        }
        Rule::Regex(re, cx.compile(to)?)
    } else {
        let undot = |s: &'_ str| {
            if attr == Attr::Domain {
                s.strip_prefix('.').unwrap_or(s).to_string()
            } else {
                s.to_string()
            }
        };
        Rule::Text(cx.compile(&undot(from))?, cx.compile(&undot(to))?)
    };
    rules.rules.push(rule);
    Ok(())
}

/// Which cookies a `proxy_cookie_flags` rule is for.
pub(crate) enum CookieName {
    Exact(ComplexValue),
    Regex(Regex),
}

/// `proxy_cookie_flags` rules: a cookie name and its flags.
pub(crate) type FlagRules = Rules<(CookieName, Vec<ComplexValue>)>;

pub(crate) fn set_flags(cx: &mut HttpConfCx, c: &mut Option<Arc<FlagRules>>, stmt: &Statement) -> Result<(), SetError> {
    let Some(rules) = Rules::for_rule(c, stmt)? else {
        return Ok(());
    };
    let name = match stmt.arg(0).strip_prefix('~') {
        Some(re) => CookieName::Regex(Regex::new(&format!("(?i){re}")).map_err(|e| e.to_string())?),
        None => CookieName::Exact(cx.compile(stmt.arg(0))?),
    };
    let mut flags = Vec::new();
    for a in &stmt.args[1..] {
        let v = cx.compile(a.as_str())?;
        if let Some(text) = v.as_literal() {
            if Flag::parse(text).is_none() {
                return Err(format!("invalid flag \"{}\"", a.as_str()).into());
            }
        }
        flags.push(v);
    }
    rules.rules.push((name, flags));
    Ok(())
}

/// One flag of `proxy_cookie_flags`: an attribute set (`Some`) or removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flag {
    Secure(bool),
    HttpOnly(bool),
    /// `Some(value)`, or `None` for `nosamesite`.
    SameSite(Option<&'static str>),
}

impl Flag {
    fn parse(text: &[u8]) -> Option<Flag> {
        let t = text.to_ascii_lowercase();
        Some(match &t[..] {
            b"secure" => Flag::Secure(true),
            b"nosecure" => Flag::Secure(false),
            b"httponly" => Flag::HttpOnly(true),
            b"nohttponly" => Flag::HttpOnly(false),
            b"samesite=strict" => Flag::SameSite(Some("Strict")),
            b"samesite=lax" => Flag::SameSite(Some("Lax")),
            b"samesite=none" => Flag::SameSite(Some("None")),
            b"nosamesite" => Flag::SameSite(None),
            _ => return None,
        })
    }
}

/// The flags a cookie's rule gives, the last of a kind winning: (secure,
/// httponly, samesite), each `None` when the rule says nothing of it.
type Wanted = (Option<bool>, Option<bool>, Option<Option<&'static str>>);

fn wanted_flags(r: &Request, rules: &FlagRules, cookie: &[u8]) -> Option<Wanted> {
    let (_, flags) = rules.rules.iter().find(|(name, _)| match name {
        CookieName::Exact(v) => v.eval(r).eq_ignore_ascii_case(cookie),
        CookieName::Regex(re) => re.is_match(cookie),
    })?;
    let mut w: Wanted = (None, None, None);
    for f in flags.iter().filter_map(|v| Flag::parse(&v.eval(r))) {
        match f {
            Flag::Secure(on) => w.0 = Some(on),
            Flag::HttpOnly(on) => w.1 = Some(on),
            Flag::SameSite(v) => w.2 = Some(v),
        }
    }
    (w != (None, None, None)).then_some(w)
}

/// Edits the attributes as nginx does: an attribute present is kept,
/// removed or given the wanted value in its place; the wanted ones still
/// missing are added at the end, `Secure`, `HttpOnly`, `SameSite`.
fn apply_flags(attrs: &mut Vec<(Bytes, Option<Bytes>)>, w: Wanted) {
    let (mut secure, mut httponly, mut samesite) = w;
    attrs.retain_mut(|(key, val)| {
        let is = |name: &[u8]| key.eq_ignore_ascii_case(name);
        if is(b"secure") {
            return secure.take() != Some(false);
        }
        if is(b"httponly") {
            return httponly.take() != Some(false);
        }
        if is(b"samesite") {
            return match samesite.take() {
                Some(None) => false,
                Some(Some(v)) => {
                    if !val.as_ref().is_some_and(|x| x.eq_ignore_ascii_case(v.as_bytes())) {
                        *key = Bytes::from_static(b"SameSite");
                        *val = Some(Bytes::from_static(v.as_bytes()));
                    }
                    true
                }
                None => true,
            };
        }
        true
    });
    if secure == Some(true) {
        attrs.push((Bytes::from_static(b"Secure"), None));
    }
    if httponly == Some(true) {
        attrs.push((Bytes::from_static(b"HttpOnly"), None));
    }
    if let Some(Some(v)) = samesite {
        attrs.push((Bytes::from_static(b"SameSite"), Some(Bytes::from_static(v.as_bytes()))));
    }
}

/// The `Set-Cookie` value with its `Domain` and `Path` attributes
/// rewritten and its flags set; `None` when no rule applied.
pub(crate) fn rewrite(
    r: &mut Request,
    domains: Option<&Arc<CookieRules>>,
    paths: Option<&Arc<CookieRules>>,
    flags: Option<&Arc<FlagRules>>,
    value: &[u8],
) -> Option<Bytes> {
    let mut attrs = parse(value);
    // The first attribute is the cookie itself; a field without `=` in
    // it is not a cookie and is left alone.
    attrs.first()?.1.as_ref()?;
    let mut changed = false;
    for (key, val) in attrs.iter_mut().skip(1) {
        let Some(v) = val.as_ref() else { continue };
        let (rules, attr) = if key.eq_ignore_ascii_case(b"domain") {
            (domains, Attr::Domain)
        } else if key.eq_ignore_ascii_case(b"path") {
            (paths, Attr::Path)
        } else {
            continue;
        };
        let Some(rules) = rules.filter(|rl| !rl.off) else { continue };
        if let Some(new) = rewrite_value(r, rules, attr, v) {
            *val = Some(new);
            changed = true;
        }
    }
    if let Some(rules) = flags.filter(|f| !f.off) {
        if let Some(w) = wanted_flags(r, rules, &attrs[0].0) {
            apply_flags(&mut attrs, w);
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    let mut out = BytesMut::with_capacity(value.len() + 16);
    for (i, (key, val)) in attrs.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(key);
        if let Some(v) = val {
            out.extend_from_slice(b"=");
            out.extend_from_slice(v);
        }
    }
    Some(out.freeze())
}

/// The attributes of a `Set-Cookie` value as nginx splits them: at `;`,
/// each a name and, after `=`, a value, blanks around both trimmed.
fn parse(value: &[u8]) -> Vec<(Bytes, Option<Bytes>)> {
    let trim = |s: &[u8]| {
        let s = &s[s.iter().take_while(|&&b| b == b' ').count()..];
        let end = s.len() - s.iter().rev().take_while(|&&b| b == b' ').count();
        Bytes::copy_from_slice(&s[..end])
    };
    value
        .split(|&b| b == b';')
        .map(|part| match memchr::memchr(b'=', part) {
            Some(eq) => (trim(&part[..eq]), Some(trim(&part[eq + 1..]))),
            None => (trim(part), None),
        })
        .collect()
}

fn rewrite_value(r: &mut Request, rules: &CookieRules, attr: Attr, value: &Bytes) -> Option<Bytes> {
    for rule in &rules.rules {
        match rule {
            Rule::Text(pattern, to) => {
                let pattern = pattern.eval(r);
                let (kept, rest) = match attr {
                    Attr::Domain if value.first() == Some(&b'.') => value.split_at(1),
                    _ => value.split_at(0),
                };
                let matched = match attr {
                    Attr::Domain => rest.eq_ignore_ascii_case(&pattern),
                    Attr::Path => rest.starts_with(&pattern),
                };
                if matched {
                    let to = to.eval(r);
                    let mut out = BytesMut::with_capacity(value.len() + to.len());
                    out.extend_from_slice(kept);
                    out.extend_from_slice(&to);
                    out.extend_from_slice(&rest[pattern.len()..]);
                    return Some(out.freeze());
                }
            }
            Rule::Regex(re, to) => {
                let Some(caps) = re.captures(value) else { continue };
                r.set_match(value.clone(), re, &caps);
                return Some(to.eval(r));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(attrs: &[(Bytes, Option<Bytes>)]) -> String {
        let parts: Vec<String> = attrs
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{}={}", String::from_utf8_lossy(k), String::from_utf8_lossy(v)),
                None => String::from_utf8_lossy(k).into_owned(),
            })
            .collect();
        parts.join("; ")
    }

    #[test]
    fn flags_are_added_replaced_and_removed_as_nginx_does() {
        let cases: [(&str, Wanted, &str); 5] = [
            ("a=1", (Some(true), Some(true), Some(Some("None"))), "a=1; Secure; HttpOnly; SameSite=None"),
            ("a=1; secure; SameSite=lax", (Some(true), None, Some(Some("Lax"))), "a=1; secure; SameSite=lax"),
            ("a=1; Secure; samesite=none", (None, None, Some(Some("Strict"))), "a=1; Secure; SameSite=Strict"),
            ("a=1; secure; httponly; samesite=lax", (Some(false), Some(false), Some(None)), "a=1"),
            ("a=1; HttpOnly", (None, Some(true), None), "a=1; HttpOnly"),
        ];
        for (cookie, w, want) in cases {
            let mut attrs = parse(cookie.as_bytes());
            apply_flags(&mut attrs, w);
            assert_eq!(shown(&attrs), want, "{cookie}");
        }
    }

    #[test]
    fn attributes_split_as_nginx_splits_them() {
        let attrs = parse(b"v=a=b ;  Domain = .x.org;Secure; Path=/p ");
        let shown: Vec<(String, Option<String>)> = attrs
            .iter()
            .map(|(k, v)| {
                (String::from_utf8_lossy(k).into_owned(), v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()))
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("v".to_string(), Some("a=b".to_string())),
                ("Domain".to_string(), Some(".x.org".to_string())),
                ("Secure".to_string(), None),
                ("Path".to_string(), Some("/p".to_string())),
            ]
        );
    }
}
