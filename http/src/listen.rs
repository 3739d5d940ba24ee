//! Listening addresses: the `listen` directive, which sockets to bind and
//! which servers stand behind each.
//!
//! As nginx does, when a port has a wildcard listener (`listen 8080`), the
//! specific addresses on that port (`listen 127.0.0.1:8080`) are served
//! through the wildcard socket, unless they say `bind`; the local address
//! of each accepted connection then picks the servers (nginx's
//! `getsockname` step).

use std::net::SocketAddr;
use std::sync::Arc;

use sluice_core::conf::{SetError, Statement};
use sluice_core::net::ListenOpts;

use crate::config::{HttpConfCx, Server};
use crate::core_module::CoreSrvConf;
use crate::server_name::ServerNames;

/// One `listen` directive (one per port of a range).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenSpec {
    /// Address and port (`0.0.0.0` or `[::]` for a port alone).
    pub addr: SocketAddr,
    /// `default_server`.
    pub default_server: bool,
    /// `reuseport` (sluice always gives each worker its own socket; the
    /// flag is accepted for nginx configs).
    pub reuseport: bool,
    /// `bind`: bind this address even when a wildcard listens on its port.
    pub bind: bool,
    /// The socket's parameters: `backlog=`, `rcvbuf=`, `sndbuf=`,
    /// `so_keepalive=`, `deferred`, `ipv6only=`.
    pub opts: ListenOpts,
    /// This `listen` gave any of those: as in nginx, only one `listen` of
    /// an address may.
    pub opts_given: bool,
}

impl ListenSpec {
    /// A plain `listen addr;`.
    pub fn new(addr: SocketAddr) -> ListenSpec {
        ListenSpec {
            addr,
            default_server: false,
            reuseport: false,
            bind: false,
            opts: ListenOpts::default(),
            opts_given: false,
        }
    }
}

/// Parses `addr:port`, `port`, `addr`, `[v6]:port`, `*:port`.
pub fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    let addrs = parse_listen_addrs(s)?;
    match addrs[..] {
        [one] => Ok(one),
        _ => Err(format!("a port range in \"{s}\" of the \"listen\" directive")),
    }
}

/// As [`parse_listen_addr`], also with a range of ports, as nginx takes
/// them: `addr:8000-8003`, `8000-8003`: one address per port.
pub fn parse_listen_addrs(s: &str) -> Result<Vec<SocketAddr>, String> {
    let (host, ports) = match s.rsplit_once(':') {
        // The colons of a bare IPv6 address are not a port.
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (Some(h), p),
        _ => (None, s),
    };
    if let Some((first, last)) = ports.split_once('-') {
        let port = |p: &str| p.parse::<u16>().ok().filter(|&n| n > 0);
        let bad = |what: &str| format!("{what} in \"{s}\" of the \"listen\" directive");
        let (Some(first), Some(last)) = (port(first), port(last)) else {
            return Err(bad("invalid port"));
        };
        if first > last {
            return Err(bad("invalid port range"));
        }
        return (first..=last)
            .map(|p| parse_one_listen_addr(&host.map_or_else(|| p.to_string(), |h| format!("{h}:{p}"))))
            .collect();
    }
    parse_one_listen_addr(s).map(|a| vec![a])
}

fn parse_one_listen_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Some(port) = s.strip_prefix("*:") {
        let port = port.parse::<u16>().map_err(|_| format!("invalid port in \"{s}\" of the \"listen\" directive"))?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if s.starts_with('[') && s.ends_with(']') {
        if let Ok(ip) = s[1..s.len() - 1].parse::<std::net::Ipv6Addr>() {
            return Ok(SocketAddr::from((ip, 80)));
        }
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 80));
    }
    if let Some((host, port)) = s.rsplit_once(':') {
        if host == "localhost" {
            let port =
                port.parse::<u16>().map_err(|_| format!("invalid port in \"{s}\" of the \"listen\" directive"))?;
            return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
        }
    }
    if s == "localhost" {
        return Ok(SocketAddr::from(([127, 0, 0, 1], 80)));
    }
    if s.starts_with("unix:") {
        return Err(format!("unix domain sockets are not supported in \"{s}\" of the \"listen\" directive"));
    }
    Err(format!("host not found in \"{s}\" of the \"listen\" directive"))
}

/// A size parameter of `listen` (`rcvbuf=64k`).
fn listen_size(name: &str, v: &str) -> Result<usize, String> {
    sluice_core::conf::value::parse_size(v)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("invalid {name} \"{v}\""))
}

/// `so_keepalive=on|off|[keepidle]:[keepintvl]:[keepcnt]` (times with
/// units, as nginx takes them: `30m::10`).
fn listen_keepalive(v: &str) -> Result<sluice_core::net::KeepAlive, String> {
    let bad = || format!("invalid so_keepalive value: \"{v}\"");
    match v {
        "on" => return Ok(sluice_core::net::KeepAlive { on: true, ..Default::default() }),
        "off" => return Ok(sluice_core::net::KeepAlive { on: false, ..Default::default() }),
        _ => {}
    }
    let parts: Vec<&str> = v.split(':').collect();
    let [idle, interval, count] = parts[..] else {
        return Err(bad());
    };
    let secs = |p: &str| -> Result<Option<u32>, String> {
        if p.is_empty() {
            return Ok(None);
        }
        let d = sluice_core::conf::value::parse_time(p).ok_or_else(bad)?;
        u32::try_from(d.as_secs()).ok().filter(|&n| n > 0).map(Some).ok_or_else(bad)
    };
    let count = match count {
        "" => None,
        c => Some(c.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(bad)?),
    };
    let k = sluice_core::net::KeepAlive { on: true, idle: secs(idle)?, interval: secs(interval)?, count };
    if k.idle.is_none() && k.interval.is_none() && k.count.is_none() {
        return Err(bad());
    }
    Ok(k)
}

pub(crate) fn set_listen(_: &mut HttpConfCx, srv: &mut CoreSrvConf, stmt: &Statement) -> Result<(), SetError> {
    let addrs = parse_listen_addrs(stmt.arg(0))?;
    let mut spec = ListenSpec::new(addrs[0]);
    for a in &stmt.args[1..] {
        let a = a.as_str();
        let (name, value) = a.split_once('=').map_or((a, None), |(n, v)| (n, Some(v)));
        match (name, value) {
            ("default_server" | "default", None) => spec.default_server = true,
            ("reuseport", None) => spec.reuseport = true,
            ("bind", None) => spec.bind = true,
            ("deferred", None) => spec.opts.deferred = true,
            ("ipv6only", Some("on")) => spec.opts.ipv6only = true,
            ("ipv6only", Some("off")) => spec.opts.ipv6only = false,
            ("backlog", Some(v)) => {
                let n = v.parse::<i32>().ok().filter(|n| *n != 0);
                spec.opts.backlog = n.ok_or_else(|| format!("invalid backlog \"{v}\""))?;
            }
            ("rcvbuf", Some(v)) => spec.opts.rcvbuf = Some(listen_size("rcvbuf", v)?),
            ("sndbuf", Some(v)) => spec.opts.sndbuf = Some(listen_size("sndbuf", v)?),
            ("so_keepalive", Some(v)) => spec.opts.keepalive = Some(listen_keepalive(v)?),
            // sluice speaks HTTP/1 over plain TCP.
            ("ssl" | "http2" | "quic" | "proxy_protocol" | "fastopen" | "accept_filter" | "setfib", _) => {
                return Err(format!("the \"{a}\" parameter of the \"listen\" directive is not supported").into())
            }
            _ => return Err(format!("invalid parameter \"{a}\"").into()),
        }
        if !matches!(name, "default_server" | "default" | "reuseport") {
            spec.opts_given = true;
        }
    }
    for addr in addrs {
        if srv.listen.iter().any(|l| l.addr == addr) {
            return Err(format!("duplicate listen {addr}").into());
        }
        srv.listen.push(ListenSpec { addr, ..spec.clone() });
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen_addr("8080").unwrap(), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(parse_listen_addr("127.0.0.1:81").unwrap(), "127.0.0.1:81".parse().unwrap());
        assert_eq!(parse_listen_addr("*:82").unwrap(), "0.0.0.0:82".parse().unwrap());
        assert_eq!(parse_listen_addr("[::1]:83").unwrap(), "[::1]:83".parse().unwrap());
        assert_eq!(parse_listen_addr("127.0.0.1").unwrap(), "127.0.0.1:80".parse().unwrap());
        assert_eq!(parse_listen_addr("localhost:84").unwrap(), "127.0.0.1:84".parse().unwrap());
        assert!(parse_listen_addr("nowhere.invalid:80").is_err());
        assert_eq!(parse_listen_addr("[::1]").unwrap(), "[::1]:80".parse().unwrap());
    }

    #[test]
    fn listen_port_ranges() {
        let ports = |s: &str| parse_listen_addrs(s).map(|v| v.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        assert_eq!(ports("127.0.0.1:8182-8184").unwrap(), ["127.0.0.1:8182", "127.0.0.1:8183", "127.0.0.1:8184"]);
        assert_eq!(ports("[::1]:90-91").unwrap(), ["[::1]:90", "[::1]:91"]);
        assert_eq!(ports("90-90").unwrap(), ["0.0.0.0:90"]);
        assert_eq!(
            ports("127.0.0.1:9-3").unwrap_err(),
            "invalid port range in \"127.0.0.1:9-3\" of the \"listen\" directive"
        );
        assert_eq!(
            ports("127.0.0.1:0-3").unwrap_err(),
            "invalid port in \"127.0.0.1:0-3\" of the \"listen\" directive"
        );
        assert!(ports("127.0.0.1:1-x").is_err());
        assert!(parse_listen_addr("127.0.0.1:1-2").is_err());
    }

    #[test]
    fn listen_keepalive_values() {
        use sluice_core::net::KeepAlive;
        assert_eq!(listen_keepalive("on").unwrap(), KeepAlive { on: true, ..KeepAlive::default() });
        assert_eq!(listen_keepalive("off").unwrap(), KeepAlive::default());
        assert_eq!(
            listen_keepalive("30m::10").unwrap(),
            KeepAlive { on: true, idle: Some(1800), interval: None, count: Some(10) }
        );
        assert_eq!(
            listen_keepalive("1s:2s:3").unwrap(),
            KeepAlive { on: true, idle: Some(1), interval: Some(2), count: Some(3) }
        );
        for bad in ["::", "yes", "1:2", "x::", "::0"] {
            assert!(listen_keepalive(bad).is_err(), "{bad}");
        }
    }
}
