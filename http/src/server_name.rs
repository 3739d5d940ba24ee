//! Virtual server selection by name, in nginx's order: the exact name, the
//! longest wildcard starting with an asterisk (`*.example.com`, or
//! `.example.com` which also matches `example.com`), the longest wildcard
//! ending with an asterisk (`www.example.*`), the first matching regular
//! expression (`~^www\d+\.`), else the default server of the address.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use regex::bytes::Regex;

use crate::config::Server;

/// A small multiplicative hasher (the "Fx" hash of rustc) for the exact
/// names. The table holds only configured names and clients never add to
/// it, so a client choosing colliding Host values gains nothing and the
/// flooding resistance of the default SipHash buys nothing; the look-up
/// runs once per request, where SipHash showed in profiles.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes(c.try_into().unwrap_or_default());
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(SEED);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The servers behind one listening address, by name.
#[derive(Debug, Default)]
pub struct ServerNames {
    /// Keyed by bytes: the look-up needs no UTF-8 check of the host.
    exact: HashMap<Box<[u8]>, usize, BuildHasherDefault<FxHasher>>,
    /// `(suffix, also_bare, server)`: `*.x.com` → (".x.com", false); `.x.com` → (".x.com", true).
    front: Vec<(String, bool, usize)>,
    /// `(prefix, server)`: `www.x.*` → ("www.x.", _).
    back: Vec<(String, usize)>,
    regex: Vec<(Regex, usize)>,
    servers: Vec<Arc<Server>>,
    default: usize,
}

impl ServerNames {
    /// Builds the look-up for servers listed in configuration order;
    /// `default` is the index of the `default_server` (or 0).
    pub fn build(servers: Vec<Arc<Server>>, default: usize) -> Result<ServerNames, String> {
        let mut t = ServerNames { default, ..Default::default() };
        for (i, s) in servers.iter().enumerate() {
            for name in &s.core().server_names {
                if let Some(re) = name.strip_prefix('~') {
                    // As nginx: a pattern with capitals matches regardless
                    // of case (host names are compared in lower case).
                    let re = crate::regex_compat::compile(re, re.bytes().any(|c| c.is_ascii_uppercase()))?;
                    t.regex.push((re, i));
                } else if let Some(rest) = name.strip_prefix("*.") {
                    t.front.push((format!(".{rest}"), false, i));
                } else if name.starts_with('.') {
                    t.front.push((name.clone(), true, i));
                } else if let Some(rest) = name.strip_suffix(".*") {
                    t.back.push((format!("{rest}."), i));
                } else {
                    // The first server that names a host wins; nginx warns
                    // about the conflict and ignores later ones.
                    t.exact.entry(name.as_bytes().into()).or_insert(i);
                }
            }
        }
        t.front.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
        t.back.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
        t.servers = servers;
        Ok(t)
    }

    /// The default server.
    pub fn default_server(&self) -> &Arc<Server> {
        &self.servers[self.default]
    }

    /// The server for a validated, lowercased host name (no port), with the
    /// captures when a regular expression matched.
    pub fn find_with_captures(&self, host: &[u8]) -> (&Arc<Server>, Option<crate::location::Found>) {
        for (re, i) in &self.regex {
            let key: &[u8] = if std::str::from_utf8(host).is_ok() { host } else { b"" };
            if self.exact.contains_key(key) {
                break;
            }
            if let Some(caps) = re.captures(host) {
                let s = self.find(host);
                if Arc::ptr_eq(s, &self.servers[*i]) {
                    let groups = (0..caps.len()).map(|g| caps.get(g).map(|m| m.range())).collect();
                    let names = crate::regex_compat::names(re);
                    return (
                        s,
                        Some(crate::location::Found {
                            location: s.root.clone(),
                            captures: groups,
                            capture_names: names,
                            auto_redirect: false,
                        }),
                    );
                }
                break;
            }
        }
        (self.find(host), None)
    }

    /// The server for a validated, lowercased host name (no port).
    pub fn find(&self, host: &[u8]) -> &Arc<Server> {
        // One server on the address answers every name: no hashing.
        if let [only] = &self.servers[..] {
            return only;
        }
        if let Some(&i) = self.exact.get(host) {
            return &self.servers[i];
        }
        let Ok(h) = std::str::from_utf8(host) else {
            return self.default_server();
        };
        for (suffix, bare, i) in &self.front {
            if h.ends_with(suffix.as_str()) || (*bare && h == &suffix[1..]) {
                return &self.servers[*i];
            }
        }
        for (prefix, i) in &self.back {
            if h.starts_with(prefix.as_str()) {
                return &self.servers[*i];
            }
        }
        for (re, i) in &self.regex {
            if re.is_match(host) {
                return &self.servers[*i];
            }
        }
        self.default_server()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fx(bytes: &[u8]) -> u64 {
        let mut h = FxHasher::default();
        h.write(bytes);
        h.finish()
    }

    #[test]
    fn fx_hash_tells_names_apart() {
        let names: [&[u8]; 6] = [b"", b"a", b"b", b"example.com", b"example.org", b"www.example.com"];
        let hashes: std::collections::HashSet<u64> = names.iter().map(|n| fx(n)).collect();
        assert_eq!(hashes.len(), names.len());
        assert_eq!(fx(b"example.com"), fx(b"example.com"));
    }

    #[test]
    fn exact_names_found_with_fx_map() {
        let mut m: HashMap<Box<[u8]>, usize, BuildHasherDefault<FxHasher>> = HashMap::default();
        for (i, n) in ["localhost", "example.com", "a.very.long.host.name.example.net"].iter().enumerate() {
            m.insert(n.as_bytes().into(), i);
        }
        assert_eq!(m.get(&b"example.com"[..]), Some(&1));
        assert_eq!(m.get(&b"a.very.long.host.name.example.net"[..]), Some(&2));
        assert_eq!(m.get(&b"example.co"[..]), None);
    }
}
