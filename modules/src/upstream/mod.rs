//! Upstream groups: the servers a proxy talks to, how one is chosen for a
//! request (a balancer), and what is remembered about each (failures,
//! connections), shared by all workers.
//!
//! ```text
//! upstream backend {
//!     least_conn;                      # or ip_hash; hash $key [consistent]; random [two];
//!     server 10.0.0.1:8080 weight=3 max_fails=2 fail_timeout=30s;
//!     server app.internal max_conns=100;     # every address the name resolves to
//!     server unix:/run/app.sock down;
//!     server 10.0.0.9:8080 backup;           # only when no primary peer is available
//!     keepalive 16;                          # keepalive_requests / _time / _timeout
//! }
//! ```
//!
//! A group comes from an `upstream name { ... }` block, or is made
//! implicitly from the host and port of a `proxy_pass` URL that names no
//! block (one peer per address the name resolves to, as nginx does).
//! Directives refer to groups by name before the block may have been read:
//! [`UpstreamMainConf::reference`] hands out a [`GroupRef`] that is filled
//! once the `http` block is complete (`init_main_conf`).
//!
//! # Choosing and releasing a peer
//!
//! The proxy calls [`UpstreamGroup::pick`] for each try of a request (with
//! the request's [`Tried`] set) and [`UpstreamGroup::release`] when the try
//! ends, saying whether it failed. nginx's rules hold: a peer that failed
//! `max_fails` times within `fail_timeout` is skipped until `fail_timeout`
//! has passed since its last failure; then one request probes it (the pick
//! restarts the window, so others keep skipping it until the probe ends),
//! and a success clears its failures. `down` peers are never chosen, peers
//! at `max_conns` are skipped, backups are chosen only when no primary peer
//! is available. A group of one peer and no backups ignores failures (nginx's
//! "single" peer): it is chosen unless `down` or full, and never retried.
//! `None` from `pick` is nginx's "no live upstreams" (the proxy logs that
//! at `error` and answers 502).
//!
//! # Adding a balancer from another module
//!
//! A balancer is a [`Balancer`]; its directive is an ordinary row of the
//! module's table, made by [`balancer_directive`], so the directive machinery
//! checks its context (`upstream` only) and arity like any other:
//!
//! ```
//! use std::ops::Range;
//! use std::sync::Arc;
//! use std::time::Instant;
//! use sluice_core::conf::{Args, Directive};
//! use sluice_http::{ConfKey, HttpConfCx, HttpModule, ModuleIndex, PostConf};
//! use sluice_modules::upstream::{self, Balancer, PeerState, PickCx, Tried, UpstreamGroup};
//!
//! /// Always the first usable peer.
//! struct First;
//!
//! impl Balancer for First {
//!     fn name(&self) -> &'static str { "first" }
//!     fn pick(&self, group: &UpstreamGroup, state: &mut [PeerState], candidates: Range<usize>,
//!             _cx: &PickCx<'_>, tried: &Tried, now: Instant) -> Option<usize> {
//!         candidates.into_iter().find(|&i| !tried.contains(i) && group.available(i, &state[i], now))
//!     }
//! }
//!
//! static KEY: ConfKey<(), (), ()> = ConfKey::new();
//!
//! struct FirstModule;
//!
//! impl HttpModule for FirstModule {
//!     fn name(&self) -> &'static str { "upstream_first" }
//!     fn index(&self) -> &'static ModuleIndex { KEY.index() }
//!     fn directives(&self) -> Vec<Directive<HttpConfCx>> {
//!         vec![upstream::balancer_directive("first", Args::NOARGS, |_cx, _stmt| Ok(Box::new(First)))]
//!     }
//!     fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
//!         assert_eq!(cf.main_conf(&upstream::KEY).groups[0].balancer.name(), "first");
//!         Ok(())
//!     }
//! }
//!
//! let modules = sluice_http::Modules::new(vec![Arc::new(upstream::UpstreamModule), Arc::new(FirstModule)]).unwrap();
//! let text = "http { upstream b { first; server 127.0.0.1:81; server 127.0.0.1:82; } }";
//! let conf = sluice_core::conf::parse_str(text, "t".as_ref(), "/".as_ref()).unwrap();
//! sluice_http::config::load_http(&modules, &conf.statements[0], "/".as_ref()).unwrap();
//! ```
//!
//! A balancer that precomputes from the peers does it in [`Balancer::init`];
//! one that cannot serve `backup` peers says so in
//! [`Balancer::allows_backup`].

pub mod balancer;
pub mod conf;
#[cfg(test)]
mod conf_tests;
#[cfg(test)]
mod group_tests;
pub mod hash;
pub mod ip_hash;
pub mod least_conn;
pub mod random;
#[cfg(test)]
pub(crate) mod test_support;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sluice_core::conf::{Directive, Origin};
use sluice_http::variables::ComplexValue;
use sluice_http::{AnyConf, ConfKey, HttpConfCx, HttpModule, ModuleIndex};

pub use balancer::{Balancer, RoundRobin};
pub use conf::{balancer_directive, MakeBalancer, UpstreamSrvConf};
pub use hash::{ConsistentHash, Hash};
pub use ip_hash::IpHash;
pub use least_conn::LeastConn;
pub use random::Random;

/// Where a peer listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// A TCP address.
    Inet(SocketAddr),
    /// A unix-domain socket path (`unix:/path`).
    Unix(PathBuf),
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Inet(a) => write!(f, "{a}"),
            PeerAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A peer's settings (from `server addr weight=.. ...`).
#[derive(Clone, Debug)]
pub struct PeerConf {
    /// The address.
    pub addr: PeerAddr,
    /// The name as written (`localhost:8080`), for logs.
    pub name: String,
    /// `weight=` (1).
    pub weight: u32,
    /// `max_fails=` (1; 0 turns failure accounting off).
    pub max_fails: u32,
    /// `fail_timeout=` (10s).
    pub fail_timeout: Duration,
    /// `max_conns=` (0: no limit).
    pub max_conns: u32,
    /// `backup`.
    pub backup: bool,
    /// `down`.
    pub down: bool,
}

impl PeerConf {
    /// A peer with nginx's defaults.
    pub fn new(addr: PeerAddr, name: String) -> PeerConf {
        PeerConf {
            addr,
            name,
            weight: 1,
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            max_conns: 0,
            backup: false,
            down: false,
        }
    }
}

/// What is remembered about a peer, shared by the workers.
#[derive(Clone, Debug, Default)]
pub struct PeerState {
    /// Smooth weighted round robin's running weight.
    pub current_weight: i64,
    /// Its effective weight (lowered after failures, recovers).
    pub effective_weight: i64,
    /// Failures within the current `fail_timeout` window.
    pub fails: u32,
    /// When the current `fail_timeout` window started: the last failure,
    /// or the first pick after a quiet `fail_timeout` (nginx's `checked`).
    pub checked: Option<Instant>,
    /// When the last failure was seen (nginx's `accessed`): a success ends
    /// the failures only when the window started after it.
    pub accessed: Option<Instant>,
    /// Requests in flight.
    pub conns: u32,
}

/// An upstream group.
pub struct UpstreamGroup {
    /// The block's name, or `host:port` for an implicit group.
    pub name: String,
    /// The primary peers.
    pub peers: Vec<PeerConf>,
    /// The `backup` peers, tried when no primary peer is available.
    pub backups: Vec<PeerConf>,
    /// Primary and backup peers' state (primary first), one lock for the group:
    /// it is held for a few instructions per pick, off the I/O path.
    pub state: Mutex<Vec<PeerState>>,
    /// How a peer is chosen.
    pub balancer: Box<dyn Balancer>,
    /// `keepalive` and its limits, if set.
    pub keepalive: Option<KeepaliveConf>,
    /// Made from a `proxy_pass` URL rather than an `upstream` block.
    pub implicit: bool,
    /// A number unique per group in the process (keys the keep-alive pools).
    pub id: u64,
    /// `hash`'s key: the proxy evaluates it for each request and passes the
    /// bytes in [`PickCx::hash_key`].
    pub hash_key: Option<ComplexValue>,
    /// Each peer's address as text (primary first), made on first use:
    /// `$upstream_addr` records it for every attempt.
    addr_texts: OnceLock<Vec<Arc<str>>>,
}

impl fmt::Debug for UpstreamGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamGroup")
            .field("name", &self.name)
            .field("peers", &self.peers.len())
            .field("balancer", &self.balancer.name())
            .finish()
    }
}

/// `keepalive N` and its companions.
#[derive(Clone, Copy, Debug)]
pub struct KeepaliveConf {
    /// Idle connections kept per worker.
    pub max_idle: usize,
    /// `keepalive_requests` (1000).
    pub requests: u64,
    /// `keepalive_time` (1h).
    pub time: Duration,
    /// `keepalive_timeout` (60s).
    pub timeout: Duration,
}

static GROUP_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl UpstreamGroup {
    /// A group of these peers, chosen by `balancer` (which is handed the
    /// primary peers once, [`Balancer::init`]).
    pub fn new(name: String, all: Vec<PeerConf>, mut balancer: Box<dyn Balancer>, implicit: bool) -> UpstreamGroup {
        let (backups, peers): (Vec<_>, Vec<_>) = all.into_iter().partition(|p| p.backup);
        let state = peers
            .iter()
            .chain(&backups)
            .map(|p| PeerState { effective_weight: p.weight as i64, ..PeerState::default() })
            .collect();
        balancer.init(&peers);
        UpstreamGroup {
            name,
            peers,
            backups,
            state: Mutex::new(state),
            balancer,
            keepalive: None,
            implicit,
            id: GROUP_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            hash_key: None,
            addr_texts: OnceLock::new(),
        }
    }

    /// The address of the peer at `index` as text (`127.0.0.1:8080`,
    /// `unix:/path`), formatted once per group rather than per attempt.
    pub fn peer_addr_text(&self, index: usize) -> Arc<str> {
        let texts = self
            .addr_texts
            .get_or_init(|| self.peers.iter().chain(&self.backups).map(|p| Arc::from(p.addr.to_string())).collect());
        texts[index].clone()
    }

    /// How many peers a request may try at most (primary and backup).
    pub fn peer_count(&self) -> usize {
        self.peers.len() + self.backups.len()
    }

    /// The peer at `index` (primary peers first, then backups).
    pub fn peer(&self, index: usize) -> &PeerConf {
        if index < self.peers.len() {
            &self.peers[index]
        } else {
            &self.backups[index - self.peers.len()]
        }
    }

    /// One primary peer and no backups: nginx's "single" group, where
    /// failures are not counted and a failed try is not retried.
    pub fn is_single(&self) -> bool {
        self.peers.len() == 1 && self.backups.is_empty()
    }

    /// Chooses a peer for a request that already tried `tried`: primary
    /// peers first, backups when none of those is available. `None`: no
    /// live upstream.
    pub fn pick(&self, cx: &PickCx<'_>, tried: &mut Tried) -> Option<usize> {
        self.pick_at(cx, tried, sluice_core::event::now())
    }

    /// [`UpstreamGroup::pick`] at a given time.
    pub(crate) fn pick_at(&self, cx: &PickCx<'_>, tried: &mut Tried, now: Instant) -> Option<usize> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let found = if self.is_single() {
            let p = &self.peers[0];
            let full = p.max_conns != 0 && state[0].conns >= p.max_conns;
            (!p.down && !full && !tried.contains(0)).then_some(0)
        } else {
            self.balancer.pick(self, &mut state, 0..self.peers.len(), cx, tried, now).or_else(|| {
                let backup = self.peers.len()..self.peer_count();
                match backup.is_empty() {
                    true => None,
                    false if self.balancer.allows_backup() => {
                        self.balancer.pick(self, &mut state, backup, cx, tried, now)
                    }
                    false => RoundRobin.pick(self, &mut state, backup, cx, tried, now),
                }
            })
        }?;
        tried.insert(found);
        let fail_timeout = self.peer(found).fail_timeout;
        let st = &mut state[found];
        st.conns += 1;
        // A pick after a quiet fail_timeout starts a new window: if this
        // was the probe of a disabled peer, others skip it until it ends,
        // and its success (accessed < checked) clears the failures.
        if st.checked.is_none_or(|c| now.saturating_duration_since(c) > fail_timeout) {
            st.checked = Some(now);
        }
        Some(found)
    }

    /// Ends a peer's use by a request: `failed` counts towards `max_fails`
    /// (and lowers its weight for a while, as nginx does). Logs nginx's
    /// warning when this failure disables the peer; a caller that knows the
    /// request uses [`UpstreamGroup::release_quiet`] and logs it with the
    /// request's context.
    pub fn release(&self, index: usize, failed: bool) {
        if self.release_quiet(index, failed) {
            sluice_core::log_error!(
                sluice_core::log::Level::Warn,
                None,
                "upstream server temporarily disabled while connecting to upstream, upstream: \"{}\"",
                self.peer(index).name
            );
        }
    }

    /// [`UpstreamGroup::release`] without the log line: true when this
    /// failure disabled the peer (nginx then logs `upstream server
    /// temporarily disabled` at `warn`).
    pub fn release_quiet(&self, index: usize, failed: bool) -> bool {
        self.release_at(index, failed, sluice_core::event::now())
    }

    /// [`UpstreamGroup::release_quiet`] at a given time.
    pub(crate) fn release_at(&self, index: usize, failed: bool, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let peer = self.peer(index);
        let st = &mut state[index];
        st.conns = st.conns.saturating_sub(1);
        if self.is_single() {
            st.fails = 0;
            return false;
        }
        if !failed {
            // The window restarted after this peer's last failure: it is live.
            if st.accessed.is_some_and(|a| st.checked.is_some_and(|c| a < c)) {
                st.fails = 0;
            }
            return false;
        }
        st.fails += 1;
        st.accessed = Some(now);
        st.checked = Some(now);
        if peer.max_fails == 0 {
            return false;
        }
        st.effective_weight = (st.effective_weight - i64::from(peer.weight / peer.max_fails)).max(0);
        st.fails >= peer.max_fails
    }

    /// True when the peer may be chosen now: not `down`, under `max_fails`
    /// in the current window (or its `fail_timeout` passed), under
    /// `max_conns`.
    pub fn available(&self, index: usize, st: &PeerState, now: Instant) -> bool {
        let p = self.peer(index);
        if p.down {
            return false;
        }
        if p.max_fails > 0 && st.fails >= p.max_fails {
            match st.checked {
                Some(c) if now.saturating_duration_since(c) <= p.fail_timeout => return false,
                _ => {}
            }
        }
        p.max_conns == 0 || st.conns < p.max_conns
    }
}

/// What a balancer may look at for a request.
#[derive(Clone, Copy, Debug)]
pub struct PickCx<'a> {
    /// The client's address (`ip_hash`).
    pub client: IpAddr,
    /// The evaluated `hash` key, when the group hashes.
    pub hash_key: Option<&'a [u8]>,
}

/// The peers a request already tried (by index): a bit set, inline up to
/// 64 peers (no allocation per request for the usual group).
#[derive(Clone, Debug, Default)]
pub struct Tried(smallvec::SmallVec<[u64; 1]>);

impl Tried {
    /// Marks a peer as tried.
    pub fn insert(&mut self, i: usize) {
        let (w, b) = (i / 64, i % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << b;
    }

    /// True when the peer was tried.
    pub fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// How many peers were tried.
    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
}

/// A reference to a group by name, filled when the `http` block is read.
#[derive(Debug)]
pub struct GroupRef {
    /// The name (`backend`, or `host:port`).
    pub name: String,
    host: String,
    port: u16,
    /// Where the referring directive is, for errors.
    pub origin: Origin,
    group: OnceLock<Arc<UpstreamGroup>>,
}

impl GroupRef {
    /// The group; filled before any request runs.
    pub fn get(&self) -> Option<&Arc<UpstreamGroup>> {
        self.group.get()
    }
}

/// The upstream groups of an `http` block.
#[derive(Debug, Default)]
pub struct UpstreamMainConf {
    /// Groups defined by `upstream` blocks.
    pub groups: Vec<Arc<UpstreamGroup>>,
    /// Groups made from `proxy_pass` URLs, one per `host:port`; a URL with
    /// variables that evaluates to the same `host:port` uses it (nginx's
    /// implicit upstreams).
    implicit: Vec<Arc<UpstreamGroup>>,
    refs: Vec<Arc<GroupRef>>,
}

impl UpstreamMainConf {
    /// A reference to the group `host` (an `upstream` block of that name,
    /// else the addresses `host:port` resolves to). `port` is the URL's, or
    /// the scheme's default.
    pub fn reference(&mut self, host: &str, port: u16, explicit_port: bool, origin: Origin) -> Arc<GroupRef> {
        let name = if explicit_port { format!("{host}:{port}") } else { host.to_string() };
        let r = Arc::new(GroupRef { name, host: host.to_string(), port, origin, group: OnceLock::new() });
        self.refs.push(r.clone());
        r
    }

    /// The group defined by an `upstream` block with this name.
    pub fn find(&self, name: &str) -> Option<&Arc<UpstreamGroup>> {
        self.groups.iter().find(|g| g.name.eq_ignore_ascii_case(name))
    }

    /// The group made for a `proxy_pass` URL naming `host:port`.
    pub fn find_implicit(&self, host: &str, port: u16) -> Option<&Arc<UpstreamGroup>> {
        let name = format!("{host}:{port}");
        self.implicit.iter().find(|g| g.name.eq_ignore_ascii_case(&name))
    }

    /// Fills every reference: a block of the same name (nginx matches the
    /// host alone when the URL has no port), else an implicit group.
    fn resolve_refs(&mut self) -> Result<(), String> {
        for r in std::mem::take(&mut self.refs) {
            let group = match self.find(&r.host) {
                // nginx: a block's name is a whole address; a URL that adds a
                // port to it is a mistake, not a different server.
                Some(_) if r.name != r.host => {
                    return Err(format!("upstream \"{}\" may not have port {} in {}", r.host, r.port, r.origin))
                }
                Some(g) => g.clone(),
                None => match self.find_implicit(&r.host, r.port) {
                    Some(g) => g.clone(),
                    None => {
                        let g = implicit_group(&r.host, r.port).map_err(|e| format!("{e} in {}", r.origin))?;
                        let g = Arc::new(g);
                        self.implicit.push(g.clone());
                        g
                    }
                },
            };
            let _ = r.group.set(group);
        }
        Ok(())
    }
}

/// A group made from `host:port`: one peer per address, round robin.
pub fn implicit_group(host: &str, port: u16) -> Result<UpstreamGroup, String> {
    let name = format!("{host}:{port}");
    let peers = if let Some(path) = host.strip_prefix("unix:") {
        vec![PeerConf::new(PeerAddr::Unix(PathBuf::from(path)), host.to_string())]
    } else {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = conf::resolve_host(bare, port).map_err(|e| format!("{e} in upstream \"{name}\""))?;
        addrs.into_iter().map(|a| PeerConf::new(PeerAddr::Inet(a), name.clone())).collect()
    };
    Ok(UpstreamGroup::new(name, peers, Box::new(RoundRobin), true))
}

/// The module's key.
pub static KEY: ConfKey<UpstreamMainConf, UpstreamSrvConf, ()> = ConfKey::new();

/// The upstream module: `upstream` blocks and the groups `proxy_pass` uses.
#[derive(Debug)]
pub struct UpstreamModule;

impl HttpModule for UpstreamModule {
    fn name(&self) -> &'static str {
        "upstream"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        conf::directives()
    }

    fn create_main_conf(&self) -> AnyConf {
        Box::new(UpstreamMainConf::default())
    }

    // Each `upstream { }` block gets a fresh one (conf::set_upstream); the
    // ones of `http` and `server` levels stay empty.
    fn create_srv_conf(&self) -> AnyConf {
        Box::new(UpstreamSrvConf::default())
    }

    fn init_main_conf(&self, conf: &mut dyn std::any::Any) -> Result<(), String> {
        sluice_http::module::downcast_mut::<UpstreamMainConf>(conf).resolve_refs()
    }
}
