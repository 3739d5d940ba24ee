//! `ip_hash`: the same client goes to the same peer. The key is the first
//! three octets of an IPv4 address (a /24 shares a peer) or the whole IPv6
//! address. nginx's hash (`h = (h * 113 + byte) % 6271`, starting at 89)
//! picks a point in the total weight; an unusable peer makes the hash go
//! round again over the same bytes, and after 20 such turns the request
//! falls back to round robin. `backup` servers are not allowed.

use std::net::IpAddr;
use std::ops::Range;
use std::time::Instant;

use super::balancer::{by_weight, total_weight, usable, Balancer, RoundRobin, HASH_TRIES};
use super::{PeerState, PickCx, Tried, UpstreamGroup};

/// The `ip_hash` balancer.
#[derive(Clone, Copy, Debug, Default)]
pub struct IpHash;

/// The bytes of the client address that the hash reads.
fn key_bytes(client: IpAddr) -> ([u8; 16], usize) {
    let mut buf = [0u8; 16];
    match client {
        IpAddr::V4(a) => {
            buf[..3].copy_from_slice(&a.octets()[..3]);
            (buf, 3)
        }
        IpAddr::V6(a) => (a.octets(), 16),
    }
}

impl Balancer for IpHash {
    fn name(&self) -> &'static str {
        "ip_hash"
    }

    fn pick(
        &self,
        group: &UpstreamGroup,
        state: &mut [PeerState],
        candidates: Range<usize>,
        cx: &PickCx<'_>,
        tried: &Tried,
        now: Instant,
    ) -> Option<usize> {
        let total = total_weight(group, candidates.clone());
        if candidates.len() < 2 || total == 0 {
            return RoundRobin.pick(group, state, candidates, cx, tried, now);
        }
        let (buf, len) = key_bytes(cx.client);
        // The walk is recomputed from the start on every try of a request:
        // the peers it passed over are still tried or unusable, so it lands
        // where nginx's saved hash would.
        let mut hash: u64 = 89;
        for _ in 0..=HASH_TRIES {
            for &b in &buf[..len] {
                hash = (hash * 113 + u64::from(b)) % 6271;
            }
            let i = by_weight(group, candidates.clone(), hash % total);
            if usable(group, state, i, tried, now) {
                return Some(i);
            }
        }
        RoundRobin.pick(group, state, candidates, cx, tried, now)
    }

    fn allows_backup(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::test_support::{group_of, ip};

    fn pick(g: &UpstreamGroup, client: &str) -> usize {
        let cx = PickCx { client: ip(client), hash_key: None };
        let i = g.pick_at(&cx, &mut Tried::default(), Instant::now()).unwrap();
        g.release(i, false);
        i
    }

    #[test]
    fn same_client_same_peer_and_a_24_shares_it() {
        let g = group_of(&[1, 1, 1], Box::new(IpHash));
        for client in ["10.0.0.1", "192.168.7.200", "2001:db8::1"] {
            let first = pick(&g, client);
            for _ in 0..10 {
                assert_eq!(pick(&g, client), first, "{client}");
            }
        }
        assert_eq!(pick(&g, "10.1.2.3"), pick(&g, "10.1.2.250"));
        let spread: std::collections::HashSet<usize> = (0..=255).map(|n| pick(&g, &format!("10.0.{n}.1"))).collect();
        assert_eq!(spread.len(), 3, "clients spread over every peer");
    }

    #[test]
    fn known_values_match_nginx() {
        // 89 -> (89*113+10)%6271 = 3796 -> (3796*113+0)%6271 = 2520
        // -> (2520*113+0)%6271 = 2565; 2565 % 3 = 0.
        let g = group_of(&[1, 1, 1], Box::new(IpHash));
        assert_eq!(pick(&g, "10.0.0.9"), 0);
        // ... -> (2520*113+1)%6271 = 2566; 2566 % 3 = 1.
        assert_eq!(pick(&g, "10.0.1.9"), 1);
    }

    #[test]
    fn a_down_peer_moves_only_its_clients() {
        let g = group_of(&[1, 1, 1], Box::new(IpHash));
        let before: Vec<usize> = (0..=255).map(|n| pick(&g, &format!("10.0.{n}.1"))).collect();
        let mut g2 = group_of(&[1, 1, 1], Box::new(IpHash));
        g2.peers[1].down = true;
        for (n, &b) in before.iter().enumerate() {
            let after = pick(&g2, &format!("10.0.{n}.1"));
            if b != 1 {
                assert_eq!(after, b);
            } else {
                assert_ne!(after, 1);
            }
        }
    }
}
