//! Tests of peer choice and peer state: round robin, failures and their
//! window, backups, `down`, `max_conns`, the single-peer rules.

use std::time::{Duration, Instant};

use super::test_support::{group_of, ip};
use super::*;

fn cx() -> PickCx<'static> {
    PickCx { client: ip("10.0.0.1"), hash_key: None }
}

/// A finished request: pick, then release as a success.
fn serve(g: &UpstreamGroup, now: Instant) -> Option<usize> {
    let p = g.pick_at(&cx(), &mut Tried::default(), now)?;
    g.release_at(p, false, now);
    Some(p)
}

#[test]
fn smooth_round_robin_5_1_1() {
    let g = group_of(&[5, 1, 1], Box::new(RoundRobin));
    let now = Instant::now();
    let seq: String = (0..14).map(|_| (b'a' + serve(&g, now).unwrap() as u8) as char).collect();
    assert_eq!(seq, "aabacaaaabacaa");
}

#[test]
fn a_request_never_gets_the_same_peer_twice() {
    let g = group_of(&[1, 1, 1], Box::new(RoundRobin));
    let now = Instant::now();
    let mut tried = Tried::default();
    let mut got: Vec<usize> = (0..3).map(|_| g.pick_at(&cx(), &mut tried, now).unwrap()).collect();
    got.sort();
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(g.pick_at(&cx(), &mut tried, now), None);
    assert_eq!(tried.count(), 3);
}

#[test]
fn max_fails_disables_a_peer_for_fail_timeout_then_one_request_probes_it() {
    let mut g = group_of(&[1, 1], Box::new(RoundRobin));
    g.peers[0].max_fails = 2;
    let t0 = Instant::now();
    let fail = |g: &UpstreamGroup, now| {
        let mut tried = Tried::default();
        tried.insert(1);
        let p = g.pick_at(&cx(), &mut tried, now).unwrap();
        assert_eq!(p, 0);
        g.release_at(p, true, now)
    };
    assert!(!fail(&g, t0), "one failure of two allowed");
    assert!(fail(&g, t0 + Duration::from_secs(1)), "the second disables it");
    // Within fail_timeout (10s from the last failure) only peer 1 serves.
    for s in [2, 5, 11] {
        assert_eq!(serve(&g, t0 + Duration::from_secs(s)), Some(1), "at {s}s");
    }
    // After it: one request probes peer 0; while it runs, others skip it.
    let later = t0 + Duration::from_secs(12);
    let mut tried = Tried::default();
    tried.insert(1);
    assert_eq!(g.pick_at(&cx(), &mut tried, later), Some(0));
    assert_eq!(serve(&g, later), Some(1));
    assert_eq!(serve(&g, later), Some(1));
    // The probe succeeds: peer 0 is live again, failures forgotten.
    g.release_at(0, false, later);
    let both: std::collections::HashSet<usize> = (0..4).filter_map(|_| serve(&g, later)).collect();
    assert_eq!(both.len(), 2);
    assert_eq!(g.state.lock().unwrap()[0].fails, 0);
}

#[test]
fn a_success_inside_the_window_does_not_clear_failures() {
    let mut g = group_of(&[1, 1], Box::new(RoundRobin));
    g.peers[0].max_fails = 2;
    let t0 = Instant::now();
    let only_0 = |now| {
        let mut tried = Tried::default();
        tried.insert(1);
        g.pick_at(&cx(), &mut tried, now).unwrap()
    };
    let p = only_0(t0);
    assert!(!g.release_at(p, true, t0));
    let p = only_0(t0 + Duration::from_secs(3));
    assert!(!g.release_at(p, false, t0 + Duration::from_secs(3)));
    let p = only_0(t0 + Duration::from_secs(6));
    assert!(g.release_at(p, true, t0 + Duration::from_secs(6)), "two failures within 10s");
}

#[test]
fn a_failure_lowers_the_effective_weight_which_then_recovers() {
    let mut g = group_of(&[4, 4], Box::new(RoundRobin));
    g.peers[0].max_fails = 2;
    let now = Instant::now();
    // Equal current weights: the first peer wins the tie.
    assert_eq!(g.pick_at(&cx(), &mut Tried::default(), now), Some(0));
    g.release_at(0, true, now);
    // weight / max_fails = 2 taken off.
    assert_eq!(g.state.lock().unwrap()[0].effective_weight, 2);
    for _ in 0..10 {
        serve(&g, now);
    }
    assert_eq!(g.state.lock().unwrap()[0].effective_weight, 4);
}

#[test]
fn backups_serve_only_when_no_primary_is_available() {
    let mut peers: Vec<PeerConf> = group_of(&[1, 1, 1], Box::new(RoundRobin)).peers;
    peers[2].backup = true;
    let g = UpstreamGroup::new("b".into(), peers, Box::new(RoundRobin), false);
    let t0 = Instant::now();
    assert!((0..10).all(|_| serve(&g, t0) != Some(2)));
    // Both primaries fail once (max_fails=1): the backup takes over.
    for p in [0, 1] {
        let mut tried = Tried::default();
        tried.insert(1 - p);
        assert_eq!(g.pick_at(&cx(), &mut tried, t0), Some(p));
        assert!(g.release_at(p, true, t0));
    }
    assert!((0..5).all(|_| serve(&g, t0 + Duration::from_secs(1)) == Some(2)));
    // After fail_timeout the primaries are back.
    let later = t0 + Duration::from_secs(11);
    assert!((0..5).all(|_| serve(&g, later) != Some(2)));
}

#[test]
fn down_and_max_conns_peers_are_skipped() {
    let mut g = group_of(&[1, 1, 1], Box::new(RoundRobin));
    g.peers[0].down = true;
    g.peers[1].max_conns = 1;
    let now = Instant::now();
    // Hold requests open: peer 1 takes one, then only peer 2 is left.
    let held: Vec<usize> = (0..4).map(|_| g.pick_at(&cx(), &mut Tried::default(), now).unwrap()).collect();
    assert_eq!(held.iter().filter(|&&p| p == 1).count(), 1);
    assert!(!held.contains(&0));
    g.release_at(1, false, now);
    assert!((0..4).any(|_| g.pick_at(&cx(), &mut Tried::default(), now) == Some(1)));
}

#[test]
fn every_peer_unavailable_means_no_live_upstreams() {
    let g = group_of(&[1, 1], Box::new(RoundRobin));
    let now = Instant::now();
    for p in [0, 1] {
        let mut tried = Tried::default();
        tried.insert(1 - p);
        g.pick_at(&cx(), &mut tried, now).unwrap();
        g.release_at(p, true, now);
    }
    assert_eq!(g.pick_at(&cx(), &mut Tried::default(), now + Duration::from_secs(5)), None);
    // nginx does not reset the failures: the peers return after fail_timeout.
    assert!(g.pick_at(&cx(), &mut Tried::default(), now + Duration::from_secs(11)).is_some());
}

#[test]
fn a_single_peer_ignores_failures_but_not_down_or_max_conns() {
    let mut g = group_of(&[1], Box::new(RoundRobin));
    assert!(g.is_single());
    let now = Instant::now();
    for _ in 0..5 {
        let p = g.pick_at(&cx(), &mut Tried::default(), now).unwrap();
        assert!(!g.release_at(p, true, now));
    }
    let mut tried = Tried::default();
    assert_eq!(g.pick_at(&cx(), &mut tried, now), Some(0));
    assert_eq!(g.pick_at(&cx(), &mut tried, now), None, "a single peer is not retried");
    g.release_at(0, false, now);
    g.peers[0].max_conns = 1;
    assert_eq!(g.pick_at(&cx(), &mut Tried::default(), now), Some(0));
    assert_eq!(g.pick_at(&cx(), &mut Tried::default(), now), None);
    g.peers[0].down = true;
    g.release_at(0, false, now);
    assert_eq!(g.pick_at(&cx(), &mut Tried::default(), now), None);
}

#[test]
fn tried_set_grows_past_64_peers() {
    let mut t = Tried::default();
    for i in [0, 63, 64, 200] {
        t.insert(i);
    }
    assert!(t.contains(200) && t.contains(64) && !t.contains(65));
    assert_eq!(t.count(), 4);
}
