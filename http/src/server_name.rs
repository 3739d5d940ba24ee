//! Virtual server selection by name, in nginx's order: the exact name, the
//! longest wildcard starting with an asterisk (`*.example.com`, or
//! `.example.com` which also matches `example.com`), the longest wildcard
//! ending with an asterisk (`www.example.*`), the first matching regular
//! expression (`~^www\d+\.`), else the default server of the address.

use std::collections::HashMap;
use std::sync::Arc;

use regex::bytes::Regex;

use crate::config::Server;

/// The servers behind one listening address, by name.
#[derive(Debug, Default)]
pub struct ServerNames {
    exact: HashMap<String, usize>,
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
                    t.exact.entry(name.clone()).or_insert(i);
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
            if self.exact.contains_key(std::str::from_utf8(host).unwrap_or("")) {
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
        let Ok(h) = std::str::from_utf8(host) else {
            return self.default_server();
        };
        if let Some(&i) = self.exact.get(h) {
            return &self.servers[i];
        }
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
