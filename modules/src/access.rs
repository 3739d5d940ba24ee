//! The access module: `allow`, `deny` and `satisfy`.
//!
//! ```text
//! location /admin/ {
//!     deny  192.168.1.1;
//!     allow 192.168.1.0/24;
//!     allow 2001:db8::/32;
//!     deny  all;
//! }
//! location /private/ {
//!     satisfy any;            # a listed address OR a valid password
//!     allow 127.0.0.1;
//!     deny  all;
//!     auth_basic "closed";
//!     auth_basic_user_file conf/htpasswd;
//! }
//! ```
//!
//! An access-phase handler, the first of the phase (as nginx runs it before
//! auth_basic). The rules are checked in order and the first that matches
//! the client's address decides: `allow` passes, `deny` answers 403 and logs
//! `access forbidden by rule`. No rule matching, or no rules, lets the
//! request go on. A level with its own `allow`/`deny` lines does not inherit
//! the outer level's. An IPv4-mapped IPv6 client (`::ffff:a.b.c.d`) is
//! checked against the IPv4 rules when there are any. `unix:` rules match
//! clients on UNIX-domain sockets, which sluice does not listen on yet, so
//! they never match.
//!
//! `satisfy all | any` (nginx keeps it in its core module; here the access
//! module owns it and registers it with the phase engine): with `any`, one
//! access handler that lets the request pass is enough, and a 401 or 403 is
//! answered only when none does. No per-request state.

use std::net::IpAddr;
use std::sync::Arc;

use sluice_core::conf::directive::{custom, enumeration, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{SetError, Statement};
use sluice_core::log::Level as LogLevel;
use sluice_http::module::{downcast, downcast_mut};
use sluice_http::phase::Satisfy;
use sluice_http::{AnyConf, ConfKey, Flow, HttpConfCx, HttpModule, ModuleIndex, Phase, PostConf, Request};

/// What a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Matcher {
    /// `all`: every client.
    All,
    /// An IPv4 network (address already masked).
    V4 { addr: u32, mask: u32 },
    /// An IPv6 network (address already masked).
    V6 { addr: u128, mask: u128 },
    /// `unix:`: clients on UNIX-domain sockets.
    Unix,
}

/// One `allow` or `deny` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rule {
    matcher: Matcher,
    deny: bool,
}

/// Location conf.
#[derive(Default)]
pub struct AccessLocConf {
    rules: Option<Arc<[Rule]>>,
    satisfy: Option<Satisfy>,
}

/// The module's key.
pub static KEY: ConfKey<(), (), AccessLocConf> = ConfKey::new();

/// The access module.
#[derive(Debug)]
pub struct AccessModule;

/// The `satisfy` mode of the request's location (the default is `all`).
pub fn satisfy(r: &Request) -> Satisfy {
    r.loc_conf(&KEY).satisfy.unwrap_or(Satisfy::All)
}

/// Parses `addr` or `addr/len` as nginx's `ngx_ptocidr` does: the matcher
/// and whether host bits beyond the prefix were set (and dropped).
fn parse_cidr(text: &str) -> Option<(Matcher, bool)> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let len = match len {
        Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => Some(l.parse::<u32>().ok()?),
        Some(_) => return None,
        None => None,
    };
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => {
            let len = len.unwrap_or(32);
            if len > 32 {
                return None;
            }
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            let a = u32::from(a);
            Some((Matcher::V4 { addr: a & mask, mask }, a & !mask != 0))
        }
        IpAddr::V6(a) => {
            let len = len.unwrap_or(128);
            if len > 128 {
                return None;
            }
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            let a = u128::from(a);
            Some((Matcher::V6 { addr: a & mask, mask }, a & !mask != 0))
        }
    }
}

/// The `allow` / `deny` setter.
fn set_rule(c: &mut AccessLocConf, stmt: &Statement) -> Result<(), SetError> {
    let value = stmt.arg(0);
    let matcher = match value {
        "all" => Matcher::All,
        "unix:" => Matcher::Unix,
        _ => {
            let (m, low_bits) = parse_cidr(value).ok_or_else(|| format!("invalid parameter \"{value}\""))?;
            if low_bits {
                sluice_core::log_error!(
                    LogLevel::Warn,
                    None,
                    "low address bits of {} are meaningless in {}",
                    value,
                    stmt.origin
                );
            }
            m
        }
    };
    let rule = Rule { matcher, deny: stmt.name == "deny" };
    let mut rules = c.rules.as_deref().map(<[Rule]>::to_vec).unwrap_or_default();
    rules.push(rule);
    c.rules = Some(rules.into());
    Ok(())
}

/// The client's address as the rules see it: an IPv4-mapped IPv6 address
/// counts as IPv4 when there are IPv4 rules (as in nginx).
fn effective_addr(rules: &[Rule], ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if rules.iter().any(|r| matches!(r.matcher, Matcher::V4 { .. } | Matcher::All)) => IpAddr::V4(v4),
            _ => ip,
        },
        v4 => v4,
    }
}

/// The first rule matching `ip`: `Some(deny)`, or `None` when none does.
fn check(rules: &[Rule], ip: IpAddr) -> Option<bool> {
    let ip = effective_addr(rules, ip);
    rules
        .iter()
        .find(|rule| match (rule.matcher, ip) {
            (Matcher::All, _) => true,
            (Matcher::V4 { addr, mask }, IpAddr::V4(a)) => u32::from(a) & mask == addr,
            (Matcher::V6 { addr, mask }, IpAddr::V6(a)) => u128::from(a) & mask == addr,
            _ => false,
        })
        .map(|rule| rule.deny)
}

/// Without `allow`/`deny` here the handler has nothing to check.
fn has_rules(loc: &sluice_http::location::Location) -> bool {
    loc.conf(&KEY).rules.is_some()
}

/// The access-phase handler.
fn access_handler(r: &mut Request) -> Flow {
    let conf = r.loc_conf(&KEY);
    let Some(rules) = conf.rules.as_deref() else {
        return Flow::Declined;
    };
    match check(rules, r.conn.peer.ip()) {
        None => Flow::Declined,
        Some(false) => Flow::Ok,
        Some(true) => {
            // Under `satisfy any` the engine logs it, only if nothing else
            // lets the request pass.
            if satisfy(r) == Satisfy::All {
                sluice_core::log_error!(LogLevel::Error, r.log_id(), "access forbidden by rule");
            }
            Flow::Status(403)
        }
    }
}

impl HttpModule for AccessModule {
    fn name(&self) -> &'static str {
        "access"
    }

    fn index(&self) -> &'static ModuleIndex {
        KEY.index()
    }

    fn directives(&self) -> Vec<Directive<HttpConfCx>> {
        let ctx = C::HTTP_ANY | C::HTTP_LMT;
        vec![
            Directive::new("allow", ctx, Args::TAKE1, Level::Loc, custom(|_, c, s| set_rule(c, s))),
            Directive::new("deny", ctx, Args::TAKE1, Level::Loc, custom(|_, c, s| set_rule(c, s))),
            Directive::new(
                "satisfy",
                C::HTTP_ANY,
                Args::TAKE1,
                Level::Loc,
                enumeration(&[("all", Satisfy::All), ("any", Satisfy::Any)], |c: &mut AccessLocConf| &mut c.satisfy),
            ),
        ]
    }

    fn create_loc_conf(&self) -> AnyConf {
        Box::new(AccessLocConf::default())
    }

    fn merge_loc_conf(&self, parent: &dyn std::any::Any, child: &mut dyn std::any::Any) -> Result<(), String> {
        let p: &AccessLocConf = downcast(parent);
        let c: &mut AccessLocConf = downcast_mut(child);
        if c.rules.is_none() {
            c.rules.clone_from(&p.rules);
        }
        if c.satisfy.is_none() {
            c.satisfy = p.satisfy;
        }
        Ok(())
    }

    fn postconfiguration(&self, cf: &mut PostConf) -> Result<(), String> {
        cf.add_phase_handler(
            Phase::Access,
            Arc::new(sluice_http::Gated { handler: access_handler, wanted_in: has_rules }),
        );
        cf.set_access_satisfy(satisfy);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
    }

    fn rule(text: &str, deny: bool) -> Rule {
        let matcher = match text {
            "all" => Matcher::All,
            "unix:" => Matcher::Unix,
            _ => parse_cidr(text).unwrap().0,
        };
        Rule { matcher, deny }
    }

    #[test]
    fn cidr_forms() {
        assert_eq!(parse_cidr("192.168.1.0/24"), Some((Matcher::V4 { addr: 0xc0a8_0100, mask: 0xffff_ff00 }, false)));
        assert_eq!(parse_cidr("10.1.2.3"), Some((Matcher::V4 { addr: 0x0a01_0203, mask: u32::MAX }, false)));
        assert_eq!(parse_cidr("0.0.0.0/0"), Some((Matcher::V4 { addr: 0, mask: 0 }, false)));
        // Host bits beyond the prefix are dropped, with a warning.
        assert_eq!(parse_cidr("192.168.1.7/24"), Some((Matcher::V4 { addr: 0xc0a8_0100, mask: 0xffff_ff00 }, true)));
        let (m, low) = parse_cidr("2001:db8::/32").unwrap();
        assert!(!low);
        assert_eq!(m, Matcher::V6 { addr: 0x2001_0db8 << 96, mask: u128::MAX << 96 });
        for bad in ["192.168.1.0/33", "::/129", "1.2.3", "1.2.3.4/", "1.2.3.4/x", "host", "1.2.3.4/-1"] {
            assert_eq!(parse_cidr(bad), None, "{bad}");
        }
    }

    #[test]
    fn first_match_wins() {
        let rules =
            [rule("192.168.1.1", true), rule("192.168.1.0/24", false), rule("2001:db8::/32", false), rule("all", true)];
        assert_eq!(check(&rules, v4("192.168.1.1")), Some(true));
        assert_eq!(check(&rules, v4("192.168.1.2")), Some(false));
        assert_eq!(check(&rules, v4("10.0.0.1")), Some(true));
        assert_eq!(check(&rules, v6("2001:db8::1")), Some(false));
        assert_eq!(check(&rules, v6("2001:db9::1")), Some(true));
        // A mapped IPv4 client is checked as IPv4.
        assert_eq!(check(&rules, v6("::ffff:192.168.1.2")), Some(false));
    }

    #[test]
    fn no_match_declines_and_families_stay_apart() {
        let rules = [rule("127.0.0.1", false), rule("::1", true)];
        assert_eq!(check(&rules, v4("127.0.0.2")), None);
        assert_eq!(check(&rules, v6("::1")), Some(true));
        assert_eq!(check(&rules, v6("::2")), None);
        // unix: rules never match an inet client.
        assert_eq!(check(&[rule("unix:", true)], v4("127.0.0.1")), None);
        // With only IPv6 rules a mapped address is checked as IPv6 (nginx).
        let only6 = [rule("::ffff:0:0/96", true)];
        assert_eq!(check(&only6, v6("::ffff:1.2.3.4")), Some(true));
    }
}
