//! Upstream groups: the servers a proxy talks to, how one is chosen for a
//! request (a balancer), and what is remembered about each (failures,
//! connections), shared by all workers.
//!
//! A group comes from an `upstream name { ... }` block, or is made
//! implicitly from the host and port of a `proxy_pass` URL that names no
//! block (one peer per address the name resolves to, as nginx does).
//! Directives refer to groups by name before the block may have been read:
//! [`UpstreamMainConf::reference`] hands out a [`GroupRef`] that is filled
//! once the `http` block is complete (`init_main_conf`).

pub mod balancer;

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sluice_core::conf::Origin;
use sluice_http::{AnyConf, ConfKey, HttpModule, ModuleIndex};

pub use balancer::{Balancer, RoundRobin};

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
    /// When the last failure was seen (the window starts there).
    pub checked: Option<Instant>,
    /// When the window of failures started.
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
}

impl fmt::Debug for UpstreamGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamGroup").field("name", &self.name).field("peers", &self.peers.len()).finish()
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
    /// A group of these peers, chosen by `balancer`.
    pub fn new(name: String, all: Vec<PeerConf>, balancer: Box<dyn Balancer>, implicit: bool) -> UpstreamGroup {
        let (backups, peers): (Vec<_>, Vec<_>) = all.into_iter().partition(|p| p.backup);
        let state = peers
            .iter()
            .chain(&backups)
            .map(|p| PeerState { effective_weight: p.weight as i64, ..PeerState::default() })
            .collect();
        UpstreamGroup {
            name,
            peers,
            backups,
            state: Mutex::new(state),
            balancer,
            keepalive: None,
            implicit,
            id: GROUP_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
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

    /// Chooses a peer for a request that already tried `tried`: primary
    /// peers first, backups when none of those is available. `None`: no
    /// live upstream.
    pub fn pick(&self, cx: &PickCx<'_>, tried: &mut Tried) -> Option<usize> {
        let now = sluice_core::event::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let primary = 0..self.peers.len();
        let found = self.balancer.pick(self, &mut state, primary, cx, tried, now).or_else(|| {
            let backup = self.peers.len()..self.peer_count();
            if backup.is_empty() {
                None
            } else {
                RoundRobin.pick(self, &mut state, backup, cx, tried, now)
            }
        })?;
        tried.insert(found);
        state[found].conns += 1;
        Some(found)
    }

    /// Ends a peer's use by a request: `failed` counts towards `max_fails`
    /// (and lowers its weight for a while, as nginx does).
    pub fn release(&self, index: usize, failed: bool) {
        let now = sluice_core::event::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let peer = self.peer(index).clone();
        let st = &mut state[index];
        st.conns = st.conns.saturating_sub(1);
        if failed {
            st.fails += 1;
            st.checked = Some(now);
            st.accessed = Some(now);
            if let Some(step) = peer.weight.checked_div(peer.max_fails) {
                st.effective_weight -= step.max(1) as i64;
                if st.fails >= peer.max_fails {
                    sluice_core::log_error!(
                        sluice_core::log::Level::Warn,
                        None,
                        "upstream server temporarily disabled while connecting to upstream"
                    );
                }
            }
            st.effective_weight = st.effective_weight.max(0);
        } else {
            if st.accessed.is_some_and(|a| st.checked.is_some_and(|c| c < a)) {
                st.fails = 0;
            }
            st.checked = Some(now);
            if st.effective_weight < peer.weight as i64 {
                st.effective_weight += 1;
            }
        }
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

/// The peers a request already tried (by index).
#[derive(Clone, Debug, Default)]
pub struct Tried(Vec<u64>);

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
        self.groups.iter().find(|g| g.name == name)
    }

    /// Fills every reference: a block of the same name (nginx matches the
    /// host alone when the URL has no port), else an implicit group.
    fn resolve_refs(&mut self) -> Result<(), String> {
        for r in std::mem::take(&mut self.refs) {
            let group = match self.find(&r.name).or_else(|| self.find(&r.host)) {
                Some(g) => g.clone(),
                None => Arc::new(implicit_group(&r.host, r.port).map_err(|e| format!("{e} in {}", r.origin))?),
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
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                (bare, port).to_socket_addrs().map_err(|_| format!("host not found in upstream \"{name}\""))?.collect()
            }
        };
        if addrs.is_empty() {
            return Err(format!("host not found in upstream \"{name}\""));
        }
        addrs.into_iter().map(|a| PeerConf::new(PeerAddr::Inet(a), name.clone())).collect()
    };
    Ok(UpstreamGroup::new(name, peers, Box::new(RoundRobin), true))
}

/// The module's key.
pub static KEY: ConfKey<UpstreamMainConf, (), ()> = ConfKey::new();

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

    fn create_main_conf(&self) -> AnyConf {
        Box::new(UpstreamMainConf::default())
    }

    fn init_main_conf(&self, conf: &mut dyn std::any::Any) -> Result<(), String> {
        sluice_http::module::downcast_mut::<UpstreamMainConf>(conf).resolve_refs()
    }
}
