//! Reading `upstream name { ... }`: the block's own conf, its directive
//! table, the `server` line's grammar and address resolution.
//!
//! As in nginx, every `upstream` block gets fresh server-level confs of
//! every module ([`HttpConfCx::read_srv_block`]); the directives inside are
//! ordinary rows of context `HTTP_UPS` whose setters fill this module's
//! [`UpstreamSrvConf`] for the block. When the block ends the conf becomes
//! an [`UpstreamGroup`].

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::conf::directive::{self, custom, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{value, SetError, Statement};
use sluice_core::log::Level as LogLevel;
use sluice_http::variables::ComplexValue;
use sluice_http::HttpConfCx;

use super::balancer::{Balancer, RoundRobin};
use super::hash::{ConsistentHash, Hash};
use super::ip_hash::IpHash;
use super::least_conn::LeastConn;
use super::random::Random;
use super::{KeepaliveConf, PeerAddr, PeerConf, UpstreamGroup, UpstreamMainConf, KEY};

/// What an `upstream { }` block says, while it is read. Other modules'
/// balancer directives fill it through [`balancer_directive`].
#[derive(Default)]
pub struct UpstreamSrvConf {
    /// The peers of the `server` lines so far (a name that resolves to
    /// several addresses gives several).
    pub servers: Vec<PeerConf>,
    /// The balancer chosen by a directive; round robin when none.
    balancer: Option<Box<dyn Balancer>>,
    /// `hash`'s key.
    pub hash_key: Option<ComplexValue>,
    keepalive: Option<usize>,
    keepalive_requests: Option<u64>,
    keepalive_time: Option<Duration>,
    keepalive_timeout: Option<Duration>,
}

impl std::fmt::Debug for UpstreamSrvConf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSrvConf")
            .field("servers", &self.servers.len())
            .field("balancer", &self.balancer.as_ref().map(|b| b.name()))
            .finish()
    }
}

impl UpstreamSrvConf {
    /// Makes `balancer` the block's; a second balancer directive replaces
    /// the first with nginx's warning "load balancing method redefined".
    pub fn set_balancer(&mut self, balancer: Box<dyn Balancer>, stmt: &Statement) {
        if self.balancer.is_some() {
            sluice_core::log_error!(LogLevel::Warn, None, "load balancing method redefined in {}", stmt.origin);
        }
        self.balancer = Some(balancer);
    }

    /// The group the block describes.
    fn into_group(self, name: &str) -> UpstreamGroup {
        let balancer = self.balancer.unwrap_or_else(|| Box::new(RoundRobin));
        let mut group = UpstreamGroup::new(name.to_string(), self.servers, balancer, false);
        group.hash_key = self.hash_key;
        group.keepalive = self.keepalive.filter(|&n| n > 0).map(|max_idle| KeepaliveConf {
            max_idle,
            requests: self.keepalive_requests.unwrap_or(1000),
            time: self.keepalive_time.unwrap_or(Duration::from_secs(3600)),
            timeout: self.keepalive_timeout.unwrap_or(Duration::from_secs(60)),
        });
        group
    }
}

/// How a balancer directive builds its balancer from its statement.
pub type MakeBalancer = dyn Fn(&mut HttpConfCx, &Statement) -> Result<Box<dyn Balancer>, SetError> + Send + Sync;

/// A directive row, for any module's table, that selects a balancer in an
/// `upstream { }` block: context `upstream`, the given arity, and a setter
/// that builds the balancer with `make` and hands it to the block
/// ([`UpstreamSrvConf::set_balancer`]). The row writes no conf of its own
/// module.
pub fn balancer_directive(
    name: &'static str,
    args: Args,
    make: impl Fn(&mut HttpConfCx, &Statement) -> Result<Box<dyn Balancer>, SetError> + Send + Sync + 'static,
) -> Directive<HttpConfCx> {
    let make: Box<MakeBalancer> = Box::new(make);
    let set = Box::new(move |cx: &mut HttpConfCx, conf: &mut dyn std::any::Any, stmt: &Statement| {
        let balancer = make(cx, stmt)?;
        // The upstream module's own rows are handed its conf; another
        // module's row reaches it through the parse context.
        match conf.downcast_mut::<UpstreamSrvConf>() {
            Some(ups) => ups.set_balancer(balancer, stmt),
            None => cx.with_srv_conf(&KEY, |ups| ups.set_balancer(balancer, stmt)),
        }
        Ok(())
    });
    Directive::new(name, C::HTTP_UPS, args, Level::Srv, set)
}

/// The module's directive table.
pub(crate) fn directives() -> Vec<Directive<HttpConfCx>> {
    let ups = C::HTTP_UPS;
    vec![
        Directive::new("upstream", C::HTTP_MAIN, Args::BLOCK | Args::TAKE1, Level::Main, custom(set_upstream)),
        Directive::new("server", ups, Args::MORE1, Level::Srv, custom(set_server)),
        Directive::new("keepalive", ups, Args::TAKE12, Level::Srv, custom(set_keepalive)),
        Directive::new(
            "keepalive_requests",
            ups,
            Args::TAKE1,
            Level::Srv,
            directive::number(|c: &mut UpstreamSrvConf| &mut c.keepalive_requests),
        ),
        Directive::new("keepalive_time", ups, Args::TAKE1, Level::Srv, custom(set_keepalive_time)),
        Directive::new("keepalive_timeout", ups, Args::TAKE1, Level::Srv, custom(set_keepalive_time)),
        Directive::new("hash", ups, Args::TAKE12, Level::Srv, custom(set_hash)),
        balancer_directive("ip_hash", Args::NOARGS, |_, _| Ok(Box::new(IpHash))),
        balancer_directive("least_conn", Args::NOARGS, |_, _| Ok(Box::new(LeastConn))),
        balancer_directive("random", Args::NOARGS | Args::TAKE12, make_random),
    ]
}

/// `upstream name { ... }`.
fn set_upstream(cx: &mut HttpConfCx, main: &mut UpstreamMainConf, stmt: &Statement) -> Result<(), SetError> {
    let name = stmt.arg(0);
    if main.groups.iter().any(|g| g.name.eq_ignore_ascii_case(name)) {
        return Err(format!("duplicate upstream \"{name}\"").into());
    }
    let mut confs = cx.read_srv_block(stmt.block.as_deref().unwrap_or(&[]), C::HTTP_UPS)?;
    let conf = sluice_http::module::downcast_mut::<UpstreamSrvConf>(confs[KEY.index().get()].as_mut());
    let conf = std::mem::take(conf);
    if conf.servers.is_empty() {
        return Err("no servers are inside upstream".into());
    }
    main.groups.push(Arc::new(conf.into_group(name)));
    Ok(())
}

/// `server address [weight=N] [max_fails=N] [fail_timeout=T] [max_conns=N]
/// [backup] [down];`
fn set_server(_: &mut HttpConfCx, ups: &mut UpstreamSrvConf, stmt: &Statement) -> Result<(), SetError> {
    let mut proto = PeerConf::new(PeerAddr::Unix(PathBuf::new()), stmt.arg(0).to_string());
    for arg in stmt.args[1..].iter().map(|a| a.as_str()) {
        let invalid = || SetError::Msg(format!("invalid parameter \"{arg}\""));
        let count = |v: &str| value::parse_number(v).and_then(|n| u32::try_from(n).ok()).ok_or_else(invalid);
        if let Some(v) = arg.strip_prefix("weight=") {
            proto.weight = count(v).and_then(|n| if n == 0 { Err(invalid()) } else { Ok(n) })?;
        } else if let Some(v) = arg.strip_prefix("max_conns=") {
            proto.max_conns = count(v)?;
        } else if let Some(v) = arg.strip_prefix("max_fails=") {
            proto.max_fails = count(v)?;
        } else if let Some(v) = arg.strip_prefix("fail_timeout=") {
            proto.fail_timeout = Duration::from_secs(value::parse_time_sec(v).ok_or_else(invalid)?);
        } else if arg == "backup" {
            if ups.balancer.as_ref().is_some_and(|b| !b.allows_backup()) {
                return Err(format!("balancing method does not support parameter \"{arg}\"").into());
            }
            proto.backup = true;
        } else if arg == "down" {
            proto.down = true;
        } else {
            return Err(invalid());
        }
    }
    let addrs = resolve_server(stmt.arg(0), 80).map_err(|e| format!("{e} in upstream \"{}\"", stmt.arg(0)))?;
    ups.servers.extend(addrs.into_iter().map(|addr| PeerConf { addr, ..proto.clone() }));
    Ok(())
}

/// `keepalive connections [local];`
fn set_keepalive(_: &mut HttpConfCx, ups: &mut UpstreamSrvConf, stmt: &Statement) -> Result<(), SetError> {
    if ups.keepalive.is_some() {
        return Err(directive::duplicate(stmt).into());
    }
    let n = value::parse_number(stmt.arg(0))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("invalid value \"{}\" in \"{}\" directive", stmt.arg(0), stmt.name))?;
    if stmt.args.len() == 2 && stmt.arg(1) != "local" {
        return Err(format!("invalid parameter \"{}\"", stmt.arg(1)).into());
    }
    ups.keepalive = Some(n);
    Ok(())
}

/// `keepalive_time` / `keepalive_timeout` (nginx's millisecond grammar).
fn set_keepalive_time(_: &mut HttpConfCx, ups: &mut UpstreamSrvConf, stmt: &Statement) -> Result<(), SetError> {
    let slot = if stmt.name == "keepalive_time" { &mut ups.keepalive_time } else { &mut ups.keepalive_timeout };
    if slot.is_some() {
        return Err(directive::duplicate(stmt).into());
    }
    let ms = value::parse_time_ms(stmt.arg(0)).ok_or_else(|| format!("\"{}\" directive invalid value", stmt.name))?;
    *slot = Some(Duration::from_millis(ms));
    Ok(())
}

/// `hash key [consistent];`
fn set_hash(cx: &mut HttpConfCx, ups: &mut UpstreamSrvConf, stmt: &Statement) -> Result<(), SetError> {
    let key = cx.compile(stmt.arg(0))?;
    let balancer: Box<dyn Balancer> = match stmt.args.get(1).map(|a| a.as_str()) {
        None => Box::new(Hash),
        Some("consistent") => Box::new(ConsistentHash::default()),
        Some(other) => return Err(format!("invalid parameter \"{other}\"").into()),
    };
    ups.set_balancer(balancer, stmt);
    ups.hash_key = Some(key);
    Ok(())
}

/// `random [two [least_conn]];`
fn make_random(_: &mut HttpConfCx, stmt: &Statement) -> Result<Box<dyn Balancer>, SetError> {
    match (stmt.args.first().map(|a| a.as_str()), stmt.args.get(1).map(|a| a.as_str())) {
        (None, _) => Ok(Box::new(Random { two: false })),
        (Some("two"), None | Some("least_conn")) => Ok(Box::new(Random { two: true })),
        (Some("two"), Some(other)) | (Some(other), _) => Err(format!("invalid parameter \"{other}\"").into()),
    }
}

/// The addresses of a `server` (or `proxy_pass`) address: `unix:/path`,
/// `host`, `host:port`, `[v6]:port`, `ip:port`; a host name may resolve to
/// several. Errors are nginx's URL errors, without the " in upstream" part.
pub(crate) fn resolve_server(text: &str, default_port: u16) -> Result<Vec<PeerAddr>, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("no path in the unix domain socket".into());
        }
        return Ok(vec![PeerAddr::Unix(PathBuf::from(path))]);
    }
    let (host, port) = split_host_port(text)?;
    let port = match port {
        None => default_port,
        Some(p) => {
            value::parse_number(p).and_then(|n| u16::try_from(n).ok()).filter(|&n| n > 0).ok_or("invalid port")?
        }
    };
    Ok(resolve_host(host, port)?.into_iter().map(PeerAddr::Inet).collect())
}

/// `host[:port]` or `[v6][:port]`: the host (without brackets) and the port
/// text, if any.
fn split_host_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let close = rest.find(']').ok_or("invalid host")?;
        let port = match &rest[close + 1..] {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("invalid host")?),
        };
        return Ok((&rest[..close], port));
    }
    let (host, port) = match text.rfind(':') {
        Some(c) => (&text[..c], Some(&text[c + 1..])),
        None => (text, None),
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    if host.contains(['/', ':']) {
        return Err("invalid host".into());
    }
    Ok((host, port))
}

/// The socket addresses of `host` (an IP literal or a name, resolved now,
/// as nginx resolves upstream names when it reads the configuration).
pub(crate) fn resolve_host(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().map_err(|_| "host not found")?.collect();
    if addrs.is_empty() {
        return Err("host not found".into());
    }
    Ok(addrs)
}
