//! Listening addresses: which sockets to bind and which servers stand
//! behind each.
//!
//! As nginx does, when a port has a wildcard listener (`listen 8080`), the
//! specific addresses on that port (`listen 127.0.0.1:8080`) are served
//! through the wildcard socket, unless they say `bind`; the local address
//! of each accepted connection then picks the servers (nginx's
//! `getsockname` step).

use std::net::SocketAddr;
use std::sync::Arc;

use sluice_core::net::ListenOpts;

use crate::config::Server;
use crate::server_name::ServerNames;

/// One socket to bind, with the servers behind it.
#[derive(Debug)]
pub struct ListenSite {
    /// The address to bind.
    pub addr: SocketAddr,
    /// Socket options.
    pub opts: ListenOpts,
    /// Specific addresses served through this socket, most specific first;
    /// the last entry is the socket's own address.
    groups: Vec<(SocketAddr, ServerNames)>,
}

impl ListenSite {
    /// The servers for a connection accepted with local address `local`.
    pub fn names_for(&self, local: SocketAddr) -> &ServerNames {
        self.groups
            .iter()
            .find(|(a, _)| *a == local)
            .or_else(|| self.groups.last())
            .map(|(_, n)| n)
            .expect("a listen site has at least its own group")
    }
}

fn is_wildcard(a: &SocketAddr) -> bool {
    a.ip().is_unspecified()
}

/// Groups the servers' `listen` directives into sockets.
/// One distinct listening address while grouping.
#[derive(Clone)]
struct AddrEntry {
    addr: SocketAddr,
    servers: Vec<Arc<Server>>,
    default: Option<usize>,
    opts: ListenOpts,
    opts_given: bool,
    bind: bool,
}

/// Groups the servers' `listen` directives into sockets.
pub fn group(servers: &[Arc<Server>]) -> Result<Vec<ListenSite>, String> {
    let mut addrs: Vec<AddrEntry> = Vec::new();
    for s in servers {
        for l in &s.core().listen {
            let pos = match addrs.iter().position(|a| a.addr == l.addr) {
                Some(p) => p,
                None => {
                    let opts = ListenOpts { reuseport: true, ..l.opts };
                    addrs.push(AddrEntry {
                        addr: l.addr,
                        servers: Vec::new(),
                        default: None,
                        opts,
                        opts_given: false,
                        bind: false,
                    });
                    addrs.len() - 1
                }
            };
            let entry = &mut addrs[pos];
            if l.opts_given {
                // One `listen` of an address sets its socket up, as nginx.
                if entry.opts_given {
                    return Err(format!("duplicate listen options for {}", l.addr));
                }
                entry.opts = ListenOpts { reuseport: true, ..l.opts };
                entry.opts_given = true;
            }
            if l.default_server {
                if entry.default.is_some() {
                    return Err(format!("a duplicate default server for {}", l.addr));
                }
                entry.default = Some(entry.servers.len());
            }
            entry.bind |= l.bind;
            if !entry.servers.iter().any(|x| Arc::ptr_eq(x, s)) {
                entry.servers.push(s.clone());
            }
        }
    }
    let mut sites: Vec<ListenSite> = Vec::new();
    let mut folded: Vec<(SocketAddr, ServerNames)> = Vec::new();
    for AddrEntry { addr, servers: list, default, opts, bind, .. } in addrs.iter().cloned() {
        let names = ServerNames::build(list, default.unwrap_or(0))?;
        let covered = !is_wildcard(&addr)
            && !bind
            && addrs
                .iter()
                .any(|w| is_wildcard(&w.addr) && w.addr.port() == addr.port() && w.addr.is_ipv4() == addr.is_ipv4());
        if covered {
            folded.push((addr, names));
        } else {
            sites.push(ListenSite { addr, opts, groups: vec![(addr, names)] });
        }
    }
    for (addr, names) in folded {
        let site = sites
            .iter_mut()
            .find(|s| is_wildcard(&s.addr) && s.addr.port() == addr.port() && s.addr.is_ipv4() == addr.is_ipv4())
            .expect("a covering wildcard exists");
        site.groups.insert(0, (addr, names));
    }
    Ok(sites)
}
