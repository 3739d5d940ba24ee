//! Locations and their look-up, in nginx's order.
//!
//! At each level: the longest matching prefix (or an exact `=` match, which
//! ends the search) is found among the static locations; if it has nested
//! locations the search goes on inside it; unless the match was exact or
//! `^~`, the regex locations of the level are tried in order and the first
//! match wins (searching its nested locations too); otherwise the longest
//! prefix stands.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use regex::bytes::Regex;
use sluice_core::conf::Origin;

use crate::module::{AnyConf, ConfKey, LocationChains};

/// How a location matches.
#[derive(Debug, Clone)]
pub enum LocMatch {
    /// The server level (no `location`).
    ServerLevel,
    /// `location = /x`.
    Exact(String),
    /// `location /x` (`no_regex`: `location ^~ /x`).
    Prefix {
        /// The prefix.
        name: String,
        /// `^~`: a match stops the regex search.
        no_regex: bool,
    },
    /// `location ~ re` / `location ~* re`.
    Regex {
        /// The pattern as written.
        name: String,
        /// The compiled pattern.
        re: Regex,
    },
    /// `location @name`.
    Named(String),
    /// An `if` block: an anonymous location that matches no URI itself; the
    /// rewrite module switches a request to it. It carries its parent's
    /// matcher (set when the tree is frozen) so that `alias` and the name
    /// read as the enclosing location's, as nginx's `noname` locations do.
    Anonymous(Box<LocMatch>),
}

impl LocMatch {
    /// Parses a modifier and a name, as the `location` directive gets them.
    pub fn parse(modifier: &str, name: &str) -> Result<LocMatch, String> {
        let regex = |caseless: bool| {
            crate::regex_compat::compile(name, caseless).map(|re| LocMatch::Regex { name: name.to_string(), re })
        };
        match modifier {
            "=" => Ok(LocMatch::Exact(name.to_string())),
            "^~" => Ok(LocMatch::Prefix { name: name.to_string(), no_regex: true }),
            "~" => regex(false),
            "~*" => regex(true),
            "" if name.starts_with('@') => Ok(LocMatch::Named(name.to_string())),
            "" => Ok(LocMatch::Prefix { name: name.to_string(), no_regex: false }),
            _ => Err(format!("invalid location modifier \"{modifier}\"")),
        }
    }

    /// The name as written.
    pub fn name(&self) -> &str {
        match self {
            LocMatch::ServerLevel => "",
            LocMatch::Exact(n) | LocMatch::Named(n) => n,
            LocMatch::Prefix { name, .. } | LocMatch::Regex { name, .. } => name,
            LocMatch::Anonymous(parent) => parent.name(),
        }
    }
}

/// One location, frozen: its confs (merged) and its nested locations.
pub struct Location {
    /// How it matches.
    pub matcher: LocMatch,
    pub(crate) confs: Vec<AnyConf>,
    pub(crate) nested: LocationTree,
    /// Where it was written.
    pub origin: Origin,
    /// The filters its responses pass through and the phase handlers its
    /// requests pass by; set once every module has registered them (after
    /// the confs are merged and frozen).
    chains: OnceLock<LocationChains>,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location").field("matcher", &self.matcher).finish()
    }
}

impl Location {
    pub(crate) fn new(matcher: LocMatch, confs: Vec<AnyConf>, nested: LocationTree, origin: Origin) -> Location {
        Location { matcher, confs, nested, origin, chains: OnceLock::new() }
    }

    /// A module's location conf, merged (what `Request::loc_conf` reads for
    /// a request in this location).
    pub fn conf<M, S, L: 'static>(&self, key: &ConfKey<M, S, L>) -> &L {
        crate::module::downcast(self.confs[key.slot()].as_ref())
    }

    /// This location's chains; `None` before the configuration has
    /// finished loading.
    pub(crate) fn chains(&self) -> Option<&LocationChains> {
        self.chains.get()
    }

    /// Gives this location and every location inside it (nested, named,
    /// `if` blocks) their chains.
    pub(crate) fn set_chains(
        &self,
        header: &[Arc<dyn crate::module::HeaderFilter>],
        body: &[Arc<dyn crate::module::BodyFilter>],
        phases: &[Vec<Arc<dyn crate::module::PhaseHandler>>; crate::module::Phase::COUNT],
    ) {
        let _ = self.chains.set(LocationChains::for_location(self, header, body, phases));
        for l in self.nested.all() {
            l.set_chains(header, body, phases);
        }
    }

    /// Whether handler `i` of `phase` has nothing to do here (see
    /// `PhaseHandler::wanted_in`).
    pub(crate) fn skips(&self, phase: crate::module::Phase, i: usize) -> bool {
        i < 64 && self.chains.get().is_some_and(|c| c.phase_skip[phase as usize] & (1 << i) != 0)
    }

    /// The location's name as written (`/images/`, `\.php$`, `@fallback`).
    pub fn name(&self) -> &str {
        self.matcher.name()
    }

    pub(crate) fn collect_named(&self, out: &mut HashMap<String, Arc<Location>>) {
        for l in &self.nested.named {
            out.insert(l.name().to_string(), l.clone());
        }
    }

    /// True for `location = ...`.
    pub fn is_exact(&self) -> bool {
        matches!(self.matcher, LocMatch::Exact(_))
    }

    /// True for regex locations (and `if` blocks inside one).
    pub fn is_regex(&self) -> bool {
        match &self.matcher {
            LocMatch::Regex { .. } => true,
            LocMatch::Anonymous(parent) => matches!(**parent, LocMatch::Regex { .. }),
            _ => false,
        }
    }

    /// The `n`th anonymous (`if`) location written directly inside this one.
    pub fn anonymous(&self, n: usize) -> Option<&Arc<Location>> {
        self.nested.anonymous.get(n)
    }
}

/// The locations of one level.
#[derive(Default)]
pub struct LocationTree {
    /// Exact and prefix locations, longest name first.
    statics: Vec<Arc<Location>>,
    /// Regex locations, in configuration order.
    regexes: Vec<Arc<Location>>,
    /// Named locations (server level only).
    named: Vec<Arc<Location>>,
    /// `if` blocks, in configuration order; never matched by URI.
    anonymous: Vec<Arc<Location>>,
    /// The exact locations' names and their places in `statics`: an exact
    /// match wins over everything else at this level, so it is looked for
    /// first, without walking the prefixes.
    exacts: Vec<(Box<[u8]>, usize)>,
}

/// A location found for a URI, with the captures of a regex match.
#[derive(Debug, Clone)]
pub struct Found {
    /// The location.
    pub location: Arc<Location>,
    /// Capture groups of the regex that matched (byte ranges of the URI).
    pub captures: Vec<Option<Range<usize>>>,
    /// Named groups: name → group index.
    pub capture_names: Vec<(String, usize)>,
    /// The URI is this location's name without its trailing slash, and the
    /// location redirects such URIs (`proxy_pass` in `location /a/`): the
    /// client gets a 301 to the URI with the slash.
    pub auto_redirect: bool,
}

impl LocationTree {
    /// Every location of this level, of all kinds.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Location>> {
        self.statics.iter().chain(&self.regexes).chain(&self.named).chain(&self.anonymous)
    }

    pub(crate) fn new(all: Vec<Arc<Location>>) -> LocationTree {
        let mut t = LocationTree::default();
        for l in all {
            match l.matcher {
                LocMatch::Regex { .. } => t.regexes.push(l),
                LocMatch::Named(_) => t.named.push(l),
                LocMatch::Anonymous(_) => t.anonymous.push(l),
                _ => t.statics.push(l),
            }
        }
        // Longest first; for equal names the exact one first.
        t.statics.sort_by(|a, b| b.name().len().cmp(&a.name().len()).then(b.is_exact().cmp(&a.is_exact())));
        t.exacts = (t.statics.iter().enumerate())
            .filter(|(_, l)| l.is_exact())
            .map(|(i, l)| (l.name().as_bytes().into(), i))
            .collect();
        t
    }

    /// Finds the location for `uri` starting at this level; `None` when
    /// nothing at this level or below matches.
    pub fn find(&self, uri: &[u8]) -> Option<Found> {
        if let Some(&(_, i)) = self.exacts.iter().find(|(name, _)| **name == *uri) {
            return Some(Found {
                location: self.statics[i].clone(),
                captures: Vec::new(),
                capture_names: Vec::new(),
                auto_redirect: false,
            });
        }
        let mut best: Option<Found> = None;
        let mut stop = false;
        let mut redirect: Option<&Arc<Location>> = None;
        for l in &self.statics {
            let name = l.name().as_bytes();
            if redirect.is_none() && name.len() == uri.len() + 1 && name.starts_with(uri) && name.ends_with(b"/") {
                let core: &crate::core_module::CoreLocConf = crate::module::downcast(l.confs[0].as_ref());
                if core.auto_redirect {
                    redirect = Some(l);
                    continue;
                }
            }
            // (An exact location for this URI was returned above.)
            match &l.matcher {
                LocMatch::Prefix { no_regex, .. } if uri.starts_with(name) => {
                    stop = *no_regex;
                    best = Some(Found {
                        location: l.clone(),
                        captures: Vec::new(),
                        capture_names: Vec::new(),
                        auto_redirect: false,
                    });
                    if let Some(deeper) = l.nested.find(uri) {
                        let settled = deeper.location.is_exact() || deeper.location.is_regex() || deeper.stops();
                        best = Some(deeper);
                        if settled {
                            return best;
                        }
                    }
                    break;
                }
                _ => {}
            }
        }
        // As nginx's static tree: the redirect wins over shorter prefixes
        // and over regexes; only an exact match for the URI beats it.
        if let Some(l) = redirect {
            return Some(Found {
                location: l.clone(),
                captures: Vec::new(),
                capture_names: Vec::new(),
                auto_redirect: true,
            });
        }
        if !stop {
            for l in &self.regexes {
                let LocMatch::Regex { re, .. } = &l.matcher else {
                    continue;
                };
                if let Some(caps) = re.captures(uri) {
                    let found = Found {
                        location: l.clone(),
                        captures: (0..caps.len()).map(|i| caps.get(i).map(|m| m.range())).collect(),
                        capture_names: re
                            .capture_names()
                            .enumerate()
                            .filter_map(|(i, n)| n.map(|n| (n.to_string(), i)))
                            .collect(),
                        auto_redirect: false,
                    };
                    return Some(l.nested.find(uri).unwrap_or(found));
                }
            }
        }
        best
    }
}

impl Found {
    fn stops(&self) -> bool {
        matches!(self.location.matcher, LocMatch::Prefix { no_regex: true, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn loc(modifier: &str, name: &str, nested: Vec<Arc<Location>>) -> Arc<Location> {
        Arc::new(Location::new(
            LocMatch::parse(modifier, name).unwrap(),
            Vec::new(),
            LocationTree::new(nested),
            Origin { file: Arc::from(Path::new("t")), line: 1 },
        ))
    }

    fn find(t: &LocationTree, uri: &str) -> String {
        t.find(uri.as_bytes()).map(|f| f.location.name().to_string()).unwrap_or_else(|| "-".into())
    }

    #[test]
    fn nginx_order() {
        let t = LocationTree::new(vec![
            loc("", "/", vec![]),
            loc("=", "/exact", vec![]),
            loc("", "/exact", vec![]),
            loc("^~", "/static/", vec![]),
            loc("", "/images/", vec![loc("~", "\\.png$", vec![])]),
            loc("~*", "\\.(gif|jpg)$", vec![]),
            loc("~", "^/static/x", vec![]),
            loc("", "@named", vec![]),
        ]);
        assert_eq!(find(&t, "/"), "/");
        assert_eq!(find(&t, "/exact"), "/exact");
        assert!(t.find(b"/exact").unwrap().location.is_exact());
        assert!(!t.find(b"/exact/x").unwrap().location.is_exact());
        assert_eq!(find(&t, "/static/x.gif"), "/static/");
        assert_eq!(find(&t, "/a/b.GIF"), "\\.(gif|jpg)$");
        assert_eq!(find(&t, "/images/a.png"), "\\.png$");
        assert_eq!(find(&t, "/images/a.jpg"), "\\.(gif|jpg)$");
        assert_eq!(find(&t, "/images/a.txt"), "/images/");
        assert_eq!(find(&t, "/@named"), "/");
        let t2 = LocationTree::new(vec![loc("", "/a", vec![])]);
        assert_eq!(find(&t2, "/b"), "-");
    }

    #[test]
    fn anonymous_locations_are_never_matched() {
        let parent = LocMatch::parse("~", "^/r/").unwrap();
        let anon = Arc::new(Location::new(
            LocMatch::Anonymous(Box::new(parent)),
            Vec::new(),
            LocationTree::default(),
            Origin { file: Arc::from(Path::new("t")), line: 2 },
        ));
        assert_eq!(anon.name(), "^/r/");
        assert!(anon.is_regex());
        let outer = Arc::new(Location::new(
            LocMatch::parse("", "/").unwrap(),
            Vec::new(),
            LocationTree::new(vec![anon]),
            Origin { file: Arc::from(Path::new("t")), line: 1 },
        ));
        assert_eq!(outer.anonymous(0).unwrap().name(), "^/r/");
        assert!(outer.anonymous(1).is_none());
        let t = LocationTree::new(vec![outer]);
        assert_eq!(find(&t, "/r/x"), "/");
    }

    #[test]
    fn regex_captures() {
        let t = LocationTree::new(vec![loc("~", "^/(?<dir>\\w+)/(.*)$", vec![])]);
        let f = t.find(b"/img/a/b").unwrap();
        assert_eq!(f.captures[1], Some(1..4));
        assert_eq!(f.captures[2], Some(5..8));
        assert_eq!(f.capture_names, vec![("dir".to_string(), 1)]);
    }
}
