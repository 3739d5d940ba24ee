//! Helpers for the upstream tests: groups built in code, and configurations
//! read through the real directive machinery.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sluice_core::conf::{Args, Directive};
use sluice_http::{ConfKey, HttpConfCx, HttpModule, ModuleIndex, PostConf};

use super::{balancer_directive, Balancer, PeerAddr, PeerConf, UpstreamGroup, UpstreamModule, KEY};

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A peer named `name` with `weight`, listening on a loopback port.
pub(crate) fn peer(name: &str, weight: u32, port: u16) -> PeerConf {
    let mut p = PeerConf::new(PeerAddr::Inet(SocketAddr::new(ip("127.0.0.1"), port)), name.to_string());
    p.weight = weight;
    p
}

/// Peers `127.0.0.1:8001`, `:8002`, ... with these weights.
pub(crate) fn group_of(weights: &[u32], balancer: Box<dyn Balancer>) -> UpstreamGroup {
    let names: Vec<String> = (1..=weights.len()).map(|n| format!("127.0.0.1:{}", 8000 + n)).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    group_named(&refs, weights, balancer)
}

/// Peers with these names (as written in `server`) and weights.
pub(crate) fn group_named(names: &[&str], weights: &[u32], balancer: Box<dyn Balancer>) -> UpstreamGroup {
    let peers = names.iter().zip(weights).enumerate().map(|(i, (n, &w))| peer(n, w, 8001 + i as u16)).collect();
    UpstreamGroup::new("test".into(), peers, balancer, false)
}

thread_local! {
    static GROUPS: RefCell<Vec<Arc<UpstreamGroup>>> = const { RefCell::new(Vec::new()) };
}

static CAPTURE_KEY: ConfKey<(), (), ()> = ConfKey::new();

/// Takes the groups after the `http` block was read, and adds a balancer
/// directive the way a third-party module would (`first`).
struct CaptureModule;

/// Always the first usable peer.
struct First;

impl Balancer for First {
    fn name(&self) -> &'static str {
        "first"
    }

    fn pick(
        &self,
        group: &UpstreamGroup,
        state: &mut [super::PeerState],
        candidates: std::ops::Range<usize>,
        _cx: &super::PickCx<'_>,
        tried: &super::Tried,
        now: std::time::Instant,
    ) -> Option<usize> {
        candidates.into_iter().find(|&i| !tried.contains(i) && group.available(i, &state[i], now))
    }
}

impl HttpModule for CaptureModule {
    fn name(&self) -> &'static str {
        "upstream_test_capture"
    }

    fn index(&self) -> &'static ModuleIndex {
        CAPTURE_KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        vec![balancer_directive("first", Args::NOARGS, |_, _| Ok(Box::new(First)))]
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        let groups = cf.main_conf(&KEY).groups.clone();
        GROUPS.with(|g| *g.borrow_mut() = groups);
        Ok(())
    }
}

/// Reads `http { <body> }` (file name `t.conf`) with the upstream module
/// and the capture module; the groups of the `upstream` blocks, or the
/// error as nginx words it (`... in t.conf:N`).
pub(crate) fn load(body: &str) -> Result<Vec<Arc<UpstreamGroup>>, String> {
    let text = format!("http {{\n{body}\n}}\n");
    let conf = sluice_core::conf::parse_str(&text, "t.conf".as_ref(), "/".as_ref()).map_err(|e| e.to_string())?;
    // Always the same list, so the modules' static indexes agree between
    // tests that run at the same time.
    let modules = sluice_http::Modules::new(vec![Arc::new(UpstreamModule), Arc::new(CaptureModule)]).unwrap();
    sluice_http::config::load_http(&modules, &conf.statements[0], "/".as_ref()).map_err(|e| e.to_string())?;
    Ok(GROUPS.with(|g| std::mem::take(&mut *g.borrow_mut())))
}
