//! `hash key [consistent]`: the peer is chosen by a key with variables
//! (`hash $request_uri;`), evaluated by the proxy for each request and
//! passed in [`PickCx::hash_key`].
//!
//! * Plain: nginx's Cache::Memcached-compatible scheme. The first choice is
//!   `(crc32(key) >> 16) & 0x7fff` modulo the total weight; when that peer
//!   is unusable, `crc32(N key)` (N = 1, 2, ...) is added to the previous
//!   value and the walk starts again; after 20 such turns, round robin.
//!   Adding or removing a peer remaps most keys.
//! * `consistent`: ketama. Each peer puts `160 × weight` points on a ring
//!   of `u32`, hashed from its server as written (`host` and `port` split at
//!   the last colon, joined by a NUL, then each point's hash chained from the
//!   previous one, as nginx and Cache::Memcached::Fast do); the key's crc32
//!   goes to the first point at or after it. Adding a peer moves only about
//!   1/N of the keys. An unusable peer moves the key to the next point.
//!
//! An empty key, or a group with fewer than two peers, uses round robin.
//! `backup` servers are not allowed.

use std::ops::Range;
use std::time::Instant;

use super::balancer::{by_weight, smooth_wrr, total_weight, usable, Balancer, RoundRobin, HASH_TRIES};
use super::{PeerConf, PeerState, PickCx, Tried, UpstreamGroup};

/// The CRC-32 nginx uses (IEEE, reflected), fed in pieces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

impl Crc32 {
    pub(crate) fn new() -> Crc32 {
        Crc32(0xffff_ffff)
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = CRC_TABLE[((self.0 ^ u32::from(b)) & 0xff) as usize] ^ (self.0 >> 8);
        }
    }

    pub(crate) fn finish(self) -> u32 {
        self.0 ^ 0xffff_ffff
    }

    pub(crate) fn of(data: &[u8]) -> u32 {
        let mut c = Crc32::new();
        c.update(data);
        c.finish()
    }
}

/// The plain `hash key` balancer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hash;

impl Balancer for Hash {
    fn name(&self) -> &'static str {
        "hash"
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
        let key = cx.hash_key.unwrap_or_default();
        let total = total_weight(group, candidates.clone());
        if candidates.len() < 2 || key.is_empty() || total == 0 {
            return RoundRobin.pick(group, state, candidates, cx, tried, now);
        }
        let mut acc: u32 = 0;
        for rehash in 0..=HASH_TRIES {
            let mut crc = Crc32::new();
            if rehash > 0 {
                crc.update(rehash.to_string().as_bytes());
            }
            crc.update(key);
            acc = acc.wrapping_add((crc.finish() >> 16) & 0x7fff);
            let i = by_weight(group, candidates.clone(), u64::from(acc) % total);
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

/// The `hash key consistent` balancer: a ketama ring built by
/// [`Balancer::init`].
#[derive(Clone, Debug, Default)]
pub struct ConsistentHash {
    /// (point, server number), sorted by point, one per distinct point.
    points: Vec<(u32, usize)>,
    /// Per server as written, the indexes of its peers (a name that
    /// resolved to several addresses has several).
    servers: Vec<(String, Vec<usize>)>,
}

/// The server text split as nginx does for the ring: `unix:` paths have no
/// port; else the digits after the last colon are the port.
fn host_port(server: &str) -> (&str, &str) {
    if server.len() >= 5 && server[..5].eq_ignore_ascii_case("unix:") {
        return (&server[5..], "");
    }
    match server.rfind(':') {
        Some(c) if server[c + 1..].bytes().all(|b| b.is_ascii_digit()) => (&server[..c], &server[c + 1..]),
        _ => (server, ""),
    }
}

impl ConsistentHash {
    fn add_points(&mut self, server: usize, weight: u32) {
        let (host, port) = host_port(&self.servers[server].0);
        let mut base = Crc32::new();
        base.update(host.as_bytes());
        base.update(b"\0");
        base.update(port.as_bytes());
        let mut prev: u32 = 0;
        for _ in 0..weight * 160 {
            let mut c = base;
            c.update(&prev.to_le_bytes());
            prev = c.finish();
            self.points.push((prev, server));
        }
    }

    /// The first point at or after `hash` (may be one past the end: the
    /// caller wraps around).
    fn find(&self, hash: u32) -> usize {
        self.points.partition_point(|&(p, _)| p < hash)
    }
}

impl Balancer for ConsistentHash {
    fn name(&self) -> &'static str {
        "hash consistent"
    }

    fn init(&mut self, peers: &[PeerConf]) {
        self.points.clear();
        self.servers.clear();
        for (i, p) in peers.iter().enumerate() {
            match self.servers.iter_mut().find(|(s, _)| *s == p.name) {
                Some((_, idx)) => idx.push(i),
                None => {
                    self.servers.push((p.name.clone(), vec![i]));
                    self.add_points(self.servers.len() - 1, p.weight);
                }
            }
        }
        self.points.sort_by_key(|&(p, _)| p);
        self.points.dedup_by_key(|&mut (p, _)| p);
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
        let key = cx.hash_key.unwrap_or_default();
        if key.is_empty() || candidates.start != 0 {
            return RoundRobin.pick(group, state, candidates, cx, tried, now);
        }
        if self.points.is_empty() {
            return None;
        }
        let start = self.find(Crc32::of(key));
        for at in start..=start + HASH_TRIES {
            let (_, server) = self.points[at % self.points.len()];
            let peers = &self.servers[server].1;
            let keep = |i: usize, st: &[PeerState]| peers.contains(&i) && usable(group, st, i, tried, now);
            if let Some(i) = smooth_wrr(group, state, candidates.clone(), keep) {
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
    use crate::upstream::test_support::{group_named, group_of, ip};

    fn pick(g: &UpstreamGroup, key: &str) -> usize {
        let cx = PickCx { client: ip("127.0.0.1"), hash_key: Some(key.as_bytes()) };
        let i = g.pick_at(&cx, &mut Tried::default(), Instant::now()).unwrap();
        g.release(i, false);
        i
    }

    #[test]
    fn crc32_is_ieee() {
        assert_eq!(Crc32::of(b"123456789"), 0xcbf4_3926);
        assert_eq!(Crc32::of(b""), 0);
    }

    #[test]
    fn plain_hash_matches_nginx_and_is_stable() {
        let g = group_of(&[1, 1, 1], Box::new(Hash));
        // (crc32("/a") >> 16) & 0x7fff modulo 3.
        let expect = ((Crc32::of(b"/a") >> 16) & 0x7fff) % 3;
        assert_eq!(pick(&g, "/a"), expect as usize);
        for key in ["/a", "/b", "/x/y?z"] {
            let first = pick(&g, key);
            assert!((0..5).all(|_| pick(&g, key) == first));
        }
    }

    #[test]
    fn plain_hash_rehashes_past_a_down_peer() {
        let mut g = group_of(&[1, 1], Box::new(Hash));
        let keys: Vec<String> = (0..200).map(|n| format!("/k{n}")).collect();
        let on_0: Vec<&String> = keys.iter().filter(|k| pick(&g, k) == 0).collect();
        assert!(!on_0.is_empty());
        g.peers[0].down = true;
        assert!(on_0.iter().all(|k| pick(&g, k) == 1));
    }

    #[test]
    fn host_port_split_like_nginx() {
        assert_eq!(host_port("10.0.0.1:8080"), ("10.0.0.1", "8080"));
        assert_eq!(host_port("backend"), ("backend", ""));
        assert_eq!(host_port("unix:/tmp/s"), ("/tmp/s", ""));
        assert_eq!(host_port("[::1]:81"), ("[::1]", "81"));
        assert_eq!(host_port("a:b"), ("a:b", ""));
    }

    #[test]
    fn ring_has_160_points_per_weight() {
        let g = group_named(&["a:80", "b:80", "c:80"], &[1, 2, 1], Box::new(ConsistentHash::default()));
        let mut ring = ConsistentHash::default();
        ring.init(&g.peers);
        assert_eq!(ring.points.len(), 4 * 160);
        assert!(ring.points.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn consistent_hash_moves_about_one_nth_of_the_keys() {
        let names: Vec<String> = (1..=4).map(|n| format!("10.0.0.{n}:80")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let g4 = group_named(&refs, &[1; 4], Box::new(ConsistentHash::default()));
        let five: Vec<&str> = refs.iter().copied().chain(["10.0.0.5:80"]).collect();
        let g5 = group_named(&five, &[1; 5], Box::new(ConsistentHash::default()));
        let keys: Vec<String> = (0..4000).map(|n| format!("/obj/{n}")).collect();
        let mut moved = 0;
        for k in &keys {
            let (a, b) = (pick(&g4, k), pick(&g5, k));
            if a != b {
                // A key that moves goes to the new peer, never between old ones.
                assert_eq!(b, 4, "{k}");
                moved += 1;
            }
        }
        // Ideally 1/5 of the keys: allow the ring's unevenness.
        assert!((400..=1200).contains(&moved), "moved {moved} of 4000");
    }

    #[test]
    fn consistent_hash_skips_an_unusable_peer_to_the_next_point() {
        let mut g = group_named(&["a:80", "b:80", "c:80"], &[1, 1, 1], Box::new(ConsistentHash::default()));
        let keys: Vec<String> = (0..300).map(|n| format!("k{n}")).collect();
        let before: Vec<usize> = keys.iter().map(|k| pick(&g, k)).collect();
        g.peers[2].down = true;
        for (k, &b) in keys.iter().zip(&before) {
            let after = pick(&g, k);
            if b == 2 {
                assert_ne!(after, 2);
            } else {
                assert_eq!(after, b);
            }
        }
    }
}
