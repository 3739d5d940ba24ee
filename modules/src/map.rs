//! The map module: variables whose value depends on another value.
//!
//! ```text
//! map $http_host $site {
//!     hostnames;
//!     default          main;
//!     example.com      main;
//!     *.example.org    org;
//!     ~^(?<sub>\w+)\.test$  test-$sub;
//!     include          more-sites.conf;
//! }
//! ```
//!
//! `map SOURCE $name { ... }` (http level) declares `$name`. Its value is
//! computed when first used in a request and kept for the rest of it
//! (internal redirects included) unless the map says `volatile;`. Look-up
//! order, as nginx's: exact keys (compared case-insensitively), then with
//! `hostnames` the longest `*.suffix` / `.suffix` wildcard, then `prefix.*`,
//! then `~regex` / `~*regex` keys in the order written (their captures may
//! be used in the value), then `default` (else the empty string). With
//! `hostnames` a trailing dot of the source is ignored. A key starting with
//! `\` is literal (`\include`, `\~x`).
//!
//! Values may use variables, including maps written later in the file: the
//! source and values are compiled after the whole `http` block was read.
//! Per-request state: the cached value, in the request's variable store.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use regex::bytes::{Captures, Regex};
use sluice_core::conf::directive::{custom, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_http::variables::{ComplexValue, DeclaredGetter, Variables};
use sluice_http::{AnyConf, ConfKey, HttpConfCx, HttpModule, ModuleIndex, PostConf, PreConf, Request};

/// The maps of the `http` block.
#[derive(Default)]
pub struct MapMainConf {
    maps: Vec<Arc<MapDef>>,
}

/// The module's key.
pub static KEY: ConfKey<MapMainConf, (), ()> = ConfKey::new();

/// The map module.
#[derive(Debug)]
pub struct MapModule;

/// A key as written.
enum MapKey {
    Exact(Vec<u8>),
    /// `*.example.com` (subdomains only) or `.example.com` (the domain too):
    /// the suffix with its leading dot.
    Head {
        suffix: Vec<u8>,
        bare: bool,
    },
    /// `www.example.*`: the prefix with its trailing dot.
    Tail(Vec<u8>),
    Regex(Regex, Vec<(String, usize)>),
}

/// One `map` block: read at parse time, compiled after the `http` block.
struct MapDef {
    source: String,
    hostnames: bool,
    keys: Vec<(MapKey, String)>,
    default: Option<String>,
    compiled: OnceLock<Compiled>,
}

struct Compiled {
    source: ComplexValue,
    exact: HashMap<Vec<u8>, usize>,
    values: Vec<MapValue>,
    default: Option<MapValue>,
}

/// A value: text with variables, and for a regex key the key's captures.
struct MapValue {
    parts: Vec<Part>,
}

enum Part {
    Text(ComplexValue),
    Capture(usize),
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl MapValue {
    /// Compiles `text`; `$N` and the regex's named groups become captures
    /// of the key's match, anything else goes to [`ComplexValue`].
    fn compile(text: &str, names: Option<&[(String, usize)]>, vars: &Variables) -> Result<MapValue, String> {
        let Some(names) = names else {
            return Ok(MapValue { parts: vec![Part::Text(ComplexValue::compile(text, vars)?)] });
        };
        let b = text.as_bytes();
        let (mut parts, mut start, mut i) = (Vec::new(), 0, 0);
        while i < b.len() {
            if b[i] != b'$' {
                i += 1;
                continue;
            }
            let braced = b.get(i + 1) == Some(&b'{');
            let from = i + 1 + braced as usize;
            let len = b[from..].iter().take_while(|&&c| is_name_char(c)).count();
            let name = &text[from..from + len];
            let end = from + len + (braced && b.get(from + len) == Some(&b'}')) as usize;
            let group = match name.parse::<usize>() {
                Ok(n) => Some(n),
                Err(_) => names.iter().find(|(n, _)| n == name).map(|&(_, g)| g),
            };
            match group {
                Some(g) if len > 0 => {
                    if start < i {
                        parts.push(Part::Text(ComplexValue::compile(&text[start..i], vars)?));
                    }
                    parts.push(Part::Capture(g));
                    start = end;
                    i = end;
                }
                _ => i += 1,
            }
        }
        if start < b.len() || parts.is_empty() {
            parts.push(Part::Text(ComplexValue::compile(&text[start..], vars)?));
        }
        Ok(MapValue { parts })
    }

    fn eval(&self, r: &Request, caps: Option<&Captures<'_>>) -> Bytes {
        if let [Part::Text(cv)] = self.parts.as_slice() {
            return cv.eval(r);
        }
        let mut out = BytesMut::new();
        for p in &self.parts {
            match p {
                Part::Text(cv) => out.extend_from_slice(&cv.eval(r)),
                Part::Capture(g) => {
                    if let Some(m) = caps.and_then(|c| c.get(*g)) {
                        out.extend_from_slice(m.as_bytes());
                    }
                }
            }
        }
        out.freeze()
    }
}

fn parse_key(key: &str, hostnames: bool) -> Result<MapKey, String> {
    if let Some(rest) = key.strip_prefix('\\') {
        return Ok(MapKey::Exact(rest.to_ascii_lowercase().into_bytes()));
    }
    if let Some(re) = key.strip_prefix('~') {
        let (re, caseless) = match re.strip_prefix('*') {
            Some(re) => (re, true),
            None => (re, false),
        };
        let re = sluice_http::regex_compat::compile(re, caseless)?;
        let names = sluice_http::regex_compat::names(&re);
        return Ok(MapKey::Regex(re, names));
    }
    let low = key.to_ascii_lowercase();
    if !hostnames {
        return Ok(MapKey::Exact(low.into_bytes()));
    }
    let invalid = || format!("invalid hostname or wildcard \"{key}\"");
    if let Some(rest) = low.strip_prefix("*.") {
        if rest.is_empty() || rest.contains('*') {
            return Err(invalid());
        }
        return Ok(MapKey::Head { suffix: low.as_bytes()[1..].to_vec(), bare: false });
    }
    if low.starts_with('.') && low.len() > 1 && !low.contains('*') {
        return Ok(MapKey::Head { suffix: low.into_bytes(), bare: true });
    }
    if let Some(rest) = low.strip_suffix(".*") {
        if rest.is_empty() || rest.contains('*') {
            return Err(invalid());
        }
        return Ok(MapKey::Tail(low.as_bytes()[..low.len() - 1].to_vec()));
    }
    if low.contains('*') {
        return Err(invalid());
    }
    Ok(MapKey::Exact(low.into_bytes()))
}

fn read_entries(def: &mut MapDef, block: &[Statement]) -> Result<bool, SetError> {
    let mut volatile = false;
    // `hostnames` changes how later keys read, as in nginx.
    for stmt in block {
        let at = |e: String| SetError::from(stmt.error(e));
        match (stmt.name.as_str(), stmt.args.len()) {
            ("hostnames", 0) => def.hostnames = true,
            ("volatile", 0) => volatile = true,
            (_, 1) if stmt.block.is_none() => {
                let value = stmt.arg(0).to_string();
                if stmt.name == "default" {
                    if def.default.is_some() {
                        return Err(at("duplicate default map parameter".into()));
                    }
                    def.default = Some(value);
                    continue;
                }
                let key = parse_key(&stmt.name, def.hostnames).map_err(at)?;
                def.keys.push((key, value));
            }
            _ => return Err(at("invalid number of the map parameters".into())),
        }
    }
    Ok(volatile)
}

fn set_map(cx: &mut HttpConfCx, main: &mut MapMainConf, stmt: &Statement) -> Result<(), SetError> {
    let Some(name) = stmt.arg(1).strip_prefix('$').filter(|n| !n.is_empty()) else {
        return Err(format!("invalid variable name \"{}\"", stmt.arg(1)).into());
    };
    let mut def = MapDef {
        source: stmt.arg(0).to_string(),
        hostnames: false,
        keys: Vec::new(),
        default: None,
        compiled: OnceLock::new(),
    };
    let volatile = read_entries(&mut def, stmt.block.as_deref().unwrap_or(&[]))?;
    let index = cx.vars.declare(name)?;
    let getter = DeclaredGetter { get: map_variable, data: main.maps.len(), cache: !volatile, weak: false };
    cx.vars.set_declared_getter(index, getter)?;
    main.maps.push(Arc::new(def));
    Ok(())
}

impl MapDef {
    fn compile(&self, vars: &Variables) -> Result<Compiled, String> {
        let mut exact = HashMap::new();
        let mut values = Vec::with_capacity(self.keys.len());
        for (i, (key, value)) in self.keys.iter().enumerate() {
            let names = match key {
                MapKey::Regex(_, names) => Some(names.as_slice()),
                _ => None,
            };
            values.push(MapValue::compile(value, names, vars)?);
            if let MapKey::Exact(k) = key {
                exact.entry(k.clone()).or_insert(i);
            }
        }
        let default = self.default.as_deref().map(|d| MapValue::compile(d, None, vars)).transpose()?;
        Ok(Compiled { source: ComplexValue::compile(&self.source, vars)?, exact, values, default })
    }

    /// The best wildcard key for `host`: the longest suffix, then the
    /// longest prefix.
    fn wildcard(&self, host: &[u8]) -> Option<usize> {
        let head = self
            .keys
            .iter()
            .enumerate()
            .filter_map(|(i, (k, _))| match k {
                MapKey::Head { suffix, bare } => {
                    let hit = (host.len() > suffix.len() && host.ends_with(suffix)) || (*bare && host == &suffix[1..]);
                    hit.then_some((suffix.len(), i))
                }
                _ => None,
            })
            .max_by_key(|&(len, i)| (len, std::cmp::Reverse(i)));
        if let Some((_, i)) = head {
            return Some(i);
        }
        self.keys
            .iter()
            .enumerate()
            .filter_map(|(i, (k, _))| match k {
                MapKey::Tail(prefix) if host.len() > prefix.len() && host.starts_with(prefix) => {
                    Some((prefix.len(), i))
                }
                _ => None,
            })
            .max_by_key(|&(len, i)| (len, std::cmp::Reverse(i)))
            .map(|(_, i)| i)
    }
}

/// The getter of a map's variable: `data` is the map's number.
fn map_variable(r: &Request, data: usize) -> Option<Bytes> {
    let def = r.main_conf(&KEY).maps.get(data)?;
    let c = def.compiled.get()?;
    let mut key = c.source.eval(r);
    if def.hostnames && key.ends_with(b".") {
        key.truncate(key.len() - 1);
    }
    let low = key.to_ascii_lowercase();
    let found = c.exact.get(&low).copied().or_else(|| if def.hostnames { def.wildcard(&low) } else { None });
    if let Some(i) = found {
        return Some(c.values[i].eval(r, None));
    }
    if !key.is_empty() {
        for (i, (k, _)) in def.keys.iter().enumerate() {
            if let MapKey::Regex(re, _) = k {
                if let Some(caps) = re.captures(&key) {
                    return Some(c.values[i].eval(r, Some(&caps)));
                }
            }
        }
    }
    Some(c.default.as_ref().map(|d| d.eval(r, None)).unwrap_or_default())
}

impl HttpModule for MapModule {
    fn name(&self) -> &'static str {
        "map"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![Directive::new("map", C::HTTP_MAIN, Args::BLOCK | Args::TAKE2, Level::Main, custom(set_map))]
    }

    // A map's variable may be used above the `map` that defines it, as in
    // nginx: declare them all before the block is read.
    fn preconfiguration(&self, cf: &mut PreConf) -> Result<(), String> {
        for stmt in cf.block.iter().filter(|s| s.name == "map") {
            if let Some(name) = stmt.arg(1).strip_prefix('$').filter(|n| !n.is_empty()) {
                let _ = cf.vars.declare(name);
            }
        }
        Ok(())
    }

    fn create_main_conf(&self) -> AnyConf {
        Box::new(MapMainConf::default())
    }

    // Every variable is declared now, so values may name maps written
    // later in the file.
    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        for def in &cf.main_conf(&KEY).maps {
            let compiled = def.compile(cf.vars)?;
            let _ = def.compiled.set(compiled);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(hostnames: bool, keys: &[&str]) -> MapDef {
        MapDef {
            source: "$args".into(),
            hostnames,
            keys: keys.iter().map(|k| (parse_key(k, hostnames).unwrap(), String::new())).collect(),
            default: None,
            compiled: OnceLock::new(),
        }
    }

    #[test]
    fn wildcards_pick_the_longest_match_heads_first() {
        let d = def(true, &["example.*", "*.example.com", ".dot.example.com", "www.example.*"]);
        assert_eq!(d.wildcard(b"example.org"), Some(0));
        assert_eq!(d.wildcard(b"foo.example.com"), Some(1));
        assert_eq!(d.wildcard(b"example.com"), Some(0));
        assert_eq!(d.wildcard(b"dot.example.com"), Some(2));
        assert_eq!(d.wildcard(b"www.dot.example.com"), Some(2));
        assert_eq!(d.wildcard(b"www.example.net"), Some(3));
        assert_eq!(d.wildcard(b"other.net"), None);
    }

    #[test]
    fn keys() {
        assert!(matches!(parse_key("\\include", false), Ok(MapKey::Exact(k)) if k == b"include"));
        assert!(matches!(parse_key("FOO", false), Ok(MapKey::Exact(k)) if k == b"foo"));
        assert!(matches!(parse_key("*.x", false), Ok(MapKey::Exact(k)) if k == b"*.x"));
        assert!(matches!(parse_key("~*^a$", false), Ok(MapKey::Regex(re, _)) if re.is_match(b"A")));
        assert!(matches!(parse_key("~^a$", false), Ok(MapKey::Regex(re, _)) if !re.is_match(b"A")));
        assert_eq!(parse_key("a.*.b", true).err().unwrap(), "invalid hostname or wildcard \"a.*.b\"");
        assert!(parse_key("~(", false).is_err());
    }

    #[test]
    fn values_take_captures_of_regex_keys() {
        let vars = Variables::new();
        let names = vec![("n".to_string(), 1)];
        let v = MapValue::compile("a-$1-${n}-$n-x", Some(&names), &vars).unwrap();
        assert_eq!(v.parts.len(), 7);
        assert!(MapValue::compile("$unknown", Some(&names), &vars).is_err());
        let plain = MapValue::compile("text", None, &vars).unwrap();
        assert_eq!(plain.parts.len(), 1);
    }

    #[test]
    fn block_errors() {
        let text = "http { map $a $b { default 1; default 2; } }";
        let conf = sluice_core::conf::parse_str(text, std::path::Path::new("t"), std::path::Path::new("/")).unwrap();
        let modules =
            sluice_http::Modules::new(vec![Arc::new(MapModule), Arc::new(crate::headers::HeadersModule)]).unwrap();
        let err = sluice_http::config::load_http(&modules, &conf.statements[0], std::path::Path::new("/")).unwrap_err();
        assert!(err.to_string().starts_with("duplicate default map parameter"), "{err}");
        let text = "http { map $args $b { a b c; } }";
        let conf = sluice_core::conf::parse_str(text, std::path::Path::new("t"), std::path::Path::new("/")).unwrap();
        let err = sluice_http::config::load_http(&modules, &conf.statements[0], std::path::Path::new("/")).unwrap_err();
        assert!(err.to_string().starts_with("invalid number of the map parameters"), "{err}");
        let text = "http { add_header X $later; map $args $b { a $later; } map $args $later { default 1; } }";
        let conf = sluice_core::conf::parse_str(text, std::path::Path::new("t"), std::path::Path::new("/")).unwrap();
        assert!(sluice_http::config::load_http(&modules, &conf.statements[0], std::path::Path::new("/")).is_ok());
    }
}
