//! Variables and complex values.
//!
//! Modules add variables in their `preconfiguration` step: a name (or a
//! prefix such as `http_`, `arg_`, `cookie_`) and a getter. Directives that
//! take text with variables compile it once, at configuration time, into a
//! [`ComplexValue`]: literal pieces and resolved getters. At request time
//! evaluation is a walk over the pieces — no name look-ups.
//!
//! ```text
//! add_header X-Where "uri=$uri, arg=${arg_a}x";
//! ```

use std::collections::HashMap;
use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::request::Request;

/// A getter: the request and the variable's name suffix (for prefix
/// variables, the part after the prefix; else empty). `None` means
/// "not found" (evaluates to the empty string).
pub type VarGetter = fn(&Request, &str) -> Option<Bytes>;

struct VarDef {
    get: VarGetter,
    /// The getter receives the variable's own name as its suffix (named
    /// regex captures, which share one getter).
    pass_name: bool,
}

/// The variable registry of one `http` block.
#[derive(Default)]
pub struct Variables {
    by_name: HashMap<String, VarDef>,
    prefixes: Vec<(String, VarDef)>,
}

impl fmt::Debug for Variables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Variables").field("names", &self.by_name.len()).field("prefixes", &self.prefixes.len()).finish()
    }
}

impl Variables {
    /// An empty registry.
    pub fn new() -> Self {
        Variables::default()
    }

    /// Adds a variable `$name`.
    pub fn add(&mut self, name: &str, get: VarGetter) -> Result<(), String> {
        if self.by_name.contains_key(name) {
            return Err(format!("the duplicate \"{name}\" variable"));
        }
        self.by_name.insert(name.to_string(), VarDef { get, pass_name: false });
        Ok(())
    }

    /// Declares `$name` for a named regex capture (`(?P<name>…)` in a
    /// location or server name). Declaring it twice is fine; a name that is
    /// already another variable keeps that meaning, as in nginx.
    pub fn add_capture(&mut self, name: &str) {
        self.by_name
            .entry(name.to_ascii_lowercase())
            .or_insert(VarDef { get: |r, n| r.named_capture(n), pass_name: true });
    }

    /// Adds a family of variables `$prefixNAME` (e.g. `http_`).
    pub fn add_prefix(&mut self, prefix: &str, get: VarGetter) -> Result<(), String> {
        if self.prefixes.iter().any(|(p, _)| p == prefix) {
            return Err(format!("the duplicate \"{prefix}\" variable prefix"));
        }
        self.prefixes.push((prefix.to_string(), VarDef { get, pass_name: false }));
        Ok(())
    }

    /// Resolves a name to a getter (config time).
    pub fn resolve(&self, name: &str) -> Option<VarRef> {
        let lower = name.to_ascii_lowercase();
        if let Some(d) = self.by_name.get(&lower) {
            return Some(VarRef {
                get: d.get,
                suffix: if d.pass_name { name.into() } else { String::new().into() },
                name: name.into(),
            });
        }
        self.prefixes
            .iter()
            .filter(|(p, _)| lower.starts_with(p.as_str()) && lower.len() > p.len())
            .max_by_key(|(p, _)| p.len())
            .map(|(p, d)| VarRef { get: d.get, suffix: lower[p.len()..].into(), name: name.into() })
    }
}

/// A resolved variable.
#[derive(Clone)]
pub struct VarRef {
    get: VarGetter,
    suffix: Box<str>,
    name: Box<str>,
}

impl fmt::Debug for VarRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.name)
    }
}

impl VarRef {
    /// The variable's value for this request.
    pub fn get(&self, r: &Request) -> Option<Bytes> {
        (self.get)(r, &self.suffix)
    }

    /// The name as written.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[derive(Clone, Debug)]
enum Part {
    Lit(Bytes),
    Var(VarRef),
    /// `$1`..`$9`: a capture of the last regex match.
    Capture(usize),
}

/// Text with variables, compiled once.
#[derive(Clone, Debug)]
pub struct ComplexValue {
    parts: Vec<Part>,
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl ComplexValue {
    /// Compiles `text`. Errors read like nginx's: `unknown "foo" variable`,
    /// `invalid variable name in "..."`.
    pub fn compile(text: &str, vars: &Variables) -> Result<ComplexValue, String> {
        let b = text.as_bytes();
        let mut parts = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'$' {
                lit.push(b[i]);
                i += 1;
                continue;
            }
            i += 1;
            let (name, next) = if b.get(i) == Some(&b'{') {
                let end = b[i + 1..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or_else(|| format!("the closing bracket in \"{text}\" variable is missing"))?;
                (&text[i + 1..i + 1 + end], i + end + 2)
            } else {
                let n = b[i..].iter().take_while(|&&c| is_name_char(c)).count();
                (&text[i..i + n], i + n)
            };
            if name.is_empty() || !name.bytes().all(is_name_char) {
                return Err(format!("invalid variable name in \"{text}\""));
            }
            if !lit.is_empty() {
                parts.push(Part::Lit(Bytes::from(std::mem::take(&mut lit))));
            }
            if name.bytes().all(|c| c.is_ascii_digit()) {
                parts.push(Part::Capture(name.parse().map_err(|_| format!("invalid variable name in \"{text}\""))?));
            } else {
                let v = vars.resolve(name).ok_or_else(|| format!("unknown \"{name}\" variable"))?;
                parts.push(Part::Var(v));
            }
            i = next;
        }
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(Bytes::from(lit)));
        }
        Ok(ComplexValue { parts })
    }

    /// A value with no variables.
    pub fn literal(text: impl Into<Bytes>) -> ComplexValue {
        ComplexValue { parts: vec![Part::Lit(text.into())] }
    }

    /// The text, when it has no variables.
    pub fn as_literal(&self) -> Option<&Bytes> {
        match self.parts.as_slice() {
            [Part::Lit(b)] => Some(b),
            _ => None,
        }
    }

    /// True when the value uses variables or captures.
    pub fn has_variables(&self) -> bool {
        self.as_literal().is_none()
    }

    /// Evaluates the value for a request.
    pub fn eval(&self, r: &Request) -> Bytes {
        if let Some(b) = self.as_literal() {
            return b.clone();
        }
        let mut out = BytesMut::new();
        for p in &self.parts {
            match p {
                Part::Lit(b) => out.extend_from_slice(b),
                Part::Var(v) => {
                    if let Some(val) = v.get(r) {
                        out.extend_from_slice(&val);
                    }
                }
                Part::Capture(n) => {
                    if let Some(c) = r.capture(*n) {
                        out.extend_from_slice(&c);
                    }
                }
            }
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Variables {
        let mut v = Variables::new();
        v.add("uri", |_, _| Some(Bytes::from_static(b"/x"))).unwrap();
        v.add_prefix("arg_", |_, s| Some(Bytes::copy_from_slice(s.as_bytes()))).unwrap();
        v
    }

    #[test]
    fn compile_forms() {
        let v = reg();
        let cv = ComplexValue::compile("a $uri ${uri}b $arg_foo $1", &v).unwrap();
        assert_eq!(cv.parts.len(), 8);
        assert!(cv.has_variables());
        assert_eq!(ComplexValue::compile("plain", &v).unwrap().as_literal().unwrap(), &Bytes::from_static(b"plain"));
        assert_eq!(ComplexValue::compile("", &v).unwrap().as_literal().unwrap(), &Bytes::new());
        assert_eq!(ComplexValue::compile("$nope", &v).unwrap_err(), "unknown \"nope\" variable");
        assert_eq!(ComplexValue::compile("a $", &v).unwrap_err(), "invalid variable name in \"a $\"");
        assert!(ComplexValue::compile("${uri", &v).is_err());
        assert!(v.resolve("ARG_X").is_some());
        assert!(v.resolve("arg_").is_none());
    }

    #[test]
    fn duplicates_rejected() {
        let mut v = reg();
        assert!(v.add("uri", |_, _| None).is_err());
        assert!(v.add_prefix("arg_", |_, _| None).is_err());
    }
}
