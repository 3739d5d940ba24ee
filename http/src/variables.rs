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
//!
//! Declared variables (`set $x ...`, `map ... $x`) get an index at
//! configuration time; their values live per request in a [`VarStore`]
//! slot of that index: set by [`Request::set_variable`], or computed by the
//! variable's [`DeclaredGetter`] on first use and kept for the rest of the
//! request unless the getter is volatile.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::request::Request;

/// A getter: the request and the variable's name suffix (for prefix
/// variables, the part after the prefix; else empty). `None` means
/// "not found" (evaluates to the empty string).
pub type VarGetter = fn(&Request, &str) -> Option<Bytes>;

/// A setter of a built-in variable `set` may change (nginx's changeable
/// variables with a set handler: `$args`, `$limit_rate`).
pub type VarSetter = fn(&mut Request, Bytes);

struct VarDef {
    get: VarGetter,
    /// The getter receives the variable's own name as its suffix (named
    /// regex captures, which share one getter).
    pass_name: bool,
    /// A declared variable: its index.
    declared: Option<usize>,
    /// A built-in variable `set` changes through this.
    set: Option<VarSetter>,
}

/// How a declared variable computes its value when the request holds none.
#[derive(Clone, Copy, Debug)]
pub struct DeclaredGetter {
    /// Computes the value; receives `data`.
    pub get: fn(&Request, usize) -> Option<Bytes>,
    /// Handed to `get` (e.g. which `map`).
    pub data: usize,
    /// Keep the computed value for the rest of the request (a `map`
    /// without `volatile`).
    pub cache: bool,
    /// A fallback (`set`'s "uninitialized" warning): a non-weak getter
    /// replaces it, and it never replaces another getter.
    pub weak: bool,
}

struct Declared {
    name: String,
    getter: Option<DeclaredGetter>,
}

/// The variable registry of one `http` block.
#[derive(Default)]
pub struct Variables {
    by_name: HashMap<String, VarDef>,
    prefixes: Vec<(String, VarDef)>,
    declared: Vec<Declared>,
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
        self.by_name.insert(name.to_string(), VarDef { get, pass_name: false, declared: None, set: None });
        Ok(())
    }

    /// Adds a built-in variable `$name` that `set` may change: `set` calls
    /// `set` with the value instead of keeping one of its own.
    pub fn add_settable(&mut self, name: &str, get: VarGetter, set: VarSetter) -> Result<(), String> {
        self.add(name, get)?;
        if let Some(d) = self.by_name.get_mut(name) {
            d.set = Some(set);
        }
        Ok(())
    }

    /// The setter of a built-in variable `set` may change, if `$name` is one.
    pub fn setter(&self, name: &str) -> Option<VarSetter> {
        self.by_name.get(&name.to_ascii_lowercase()).and_then(|d| d.set)
    }

    /// Declares `$name` as a variable whose value lives per request (as
    /// `set` and `map` need) and returns its index. Declaring it again
    /// returns the same index; a built-in name is an error.
    pub fn declare(&mut self, name: &str) -> Result<usize, String> {
        let lower = name.to_ascii_lowercase();
        if let Some(d) = self.by_name.get(&lower) {
            return d.declared.ok_or_else(|| format!("the duplicate \"{name}\" variable"));
        }
        let index = self.declared.len();
        self.declared.push(Declared { name: lower.clone(), getter: None });
        self.by_name.insert(lower, VarDef { get: |_, _| None, pass_name: false, declared: Some(index), set: None });
        Ok(index)
    }

    /// Sets the getter of a declared variable. Two non-weak getters for
    /// one variable are an error (two `map`s to one variable).
    pub fn set_declared_getter(&mut self, index: usize, getter: DeclaredGetter) -> Result<(), String> {
        let d = self.declared.get_mut(index).ok_or("no such declared variable")?;
        match d.getter {
            Some(_) if getter.weak => Ok(()),
            Some(old) if !old.weak => Err(format!("the duplicate \"{}\" variable", d.name)),
            _ => {
                d.getter = Some(getter);
                Ok(())
            }
        }
    }

    /// The name of a declared variable.
    pub fn declared_name(&self, index: usize) -> &str {
        self.declared.get(index).map(|d| d.name.as_str()).unwrap_or("")
    }

    /// Declares `$name` for a named regex capture (`(?P<name>…)` in a
    /// location or server name). Declaring it twice is fine; a name that is
    /// already another variable keeps that meaning, as in nginx.
    pub fn add_capture(&mut self, name: &str) {
        self.by_name.entry(name.to_ascii_lowercase()).or_insert(VarDef {
            get: |r, n| r.named_capture(n),
            pass_name: true,
            declared: None,
            set: None,
        });
    }

    /// Adds a family of variables `$prefixNAME` (e.g. `http_`).
    pub fn add_prefix(&mut self, prefix: &str, get: VarGetter) -> Result<(), String> {
        if self.prefixes.iter().any(|(p, _)| p == prefix) {
            return Err(format!("the duplicate \"{prefix}\" variable prefix"));
        }
        self.prefixes.push((prefix.to_string(), VarDef { get, pass_name: false, declared: None, set: None }));
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
                declared: d.declared,
            });
        }
        self.prefixes
            .iter()
            .filter(|(p, _)| lower.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(p, d)| VarRef { get: d.get, suffix: lower[p.len()..].into(), name: name.into(), declared: None })
    }
}

/// One declared variable's per-request state.
#[derive(Clone, Debug, Default)]
enum Slot {
    #[default]
    Empty,
    /// Its getter is running (a second entry is a cycle).
    Busy,
    Value(Option<Bytes>),
}

/// The per-request values of declared variables, indexed by declaration.
/// Interior mutability lets a getter cache a value while handlers hold
/// `&Request`; no borrow is held across a getter call, so getters may
/// evaluate other variables.
#[derive(Debug, Default)]
pub struct VarStore {
    slots: RefCell<Vec<Slot>>,
}

impl VarStore {
    fn put(&self, index: usize, slot: Slot) {
        let mut slots = self.slots.borrow_mut();
        if slots.len() <= index {
            slots.resize(index + 1, Slot::Empty);
        }
        slots[index] = slot;
    }
}

impl Request {
    /// Sets a declared variable's value for this request (`set`).
    pub fn set_variable(&mut self, index: usize, value: Bytes) {
        self.var_store.put(index, Slot::Value(Some(value)));
    }

    /// A declared variable's value: the stored one, else its getter's.
    pub fn declared_variable(&self, index: usize) -> Option<Bytes> {
        match self.var_store.slots.borrow().get(index) {
            Some(Slot::Value(v)) => return v.clone(),
            Some(Slot::Busy) => {
                sluice_core::log_error!(
                    sluice_core::log::Level::Error,
                    self.log_id(),
                    "cycle while evaluating variable \"{}\"",
                    self.http.vars.declared_name(index)
                );
                return None;
            }
            _ => {}
        }
        let getter = self.http.vars.declared.get(index)?.getter?;
        self.var_store.put(index, Slot::Busy);
        let value = (getter.get)(self, getter.data);
        self.var_store.put(index, if getter.cache { Slot::Value(value.clone()) } else { Slot::Empty });
        value
    }
}

/// A resolved variable.
#[derive(Clone)]
pub struct VarRef {
    get: VarGetter,
    suffix: Box<str>,
    name: Box<str>,
    declared: Option<usize>,
}

impl fmt::Debug for VarRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.name)
    }
}

impl VarRef {
    /// The variable's value for this request.
    pub fn get(&self, r: &Request) -> Option<Bytes> {
        match self.declared {
            Some(i) => r.declared_variable(i),
            None => (self.get)(r, &self.suffix),
        }
    }

    /// The index of a declared variable (`set`, `map`).
    pub fn declared_index(&self) -> Option<usize> {
        self.declared
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
        self.eval_captures_with(r, |c, out| out.extend_from_slice(c))
    }

    /// Evaluates the value, copying each regex capture through `put` (a
    /// rewrite escapes captures that go into arguments).
    pub fn eval_captures_with(&self, r: &Request, put: impl Fn(&[u8], &mut BytesMut)) -> Bytes {
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
                        put(&c, &mut out);
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
        // As nginx: a prefix alone names a variable of that family with an
        // empty name (never found), not an unknown one.
        assert!(v.resolve("arg_").is_some());
        assert!(v.resolve("arg").is_none());
    }

    #[test]
    fn declared_variables() {
        let mut v = reg();
        let i = v.declare("Foo").unwrap();
        assert_eq!(v.declare("foo").unwrap(), i);
        assert_eq!(v.declare("uri").unwrap_err(), "the duplicate \"uri\" variable");
        assert_eq!(v.resolve("foo").unwrap().declared_index(), Some(i));
        assert_eq!(v.declared_name(i), "foo");
        let g = |weak| DeclaredGetter { get: |_, _| None, data: 0, cache: true, weak };
        v.set_declared_getter(i, g(true)).unwrap();
        v.set_declared_getter(i, g(false)).unwrap();
        v.set_declared_getter(i, g(true)).unwrap();
        assert!(v.set_declared_getter(i, g(false)).is_err());
    }

    #[test]
    fn duplicates_rejected() {
        let mut v = reg();
        assert!(v.add("uri", |_, _| None).is_err());
        assert!(v.add_prefix("arg_", |_, _| None).is_err());
    }
}
