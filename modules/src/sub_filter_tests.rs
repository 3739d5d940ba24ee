//! Unit tests of the sub module: configuration, the header filter's type
//! test, and the body filter's scanning loop (file pieces, flags).

use super::*;
use sluice_core::conf::{Arg, Origin};
use std::path::Path;

fn stmt(name: &str, args: &[&str]) -> Statement {
    Statement {
        name: name.into(),
        args: args.iter().map(|a| Arg { value: a.to_string(), quoted: false }).collect(),
        block: None,
        origin: Origin { file: Arc::from(Path::new("/t.conf")), line: 3 },
    }
}

fn pair(search: &str, replacement: &str) -> Pair {
    Pair {
        search: ComplexValue::literal(search.to_ascii_lowercase()),
        replacement: ComplexValue::literal(replacement.to_string()),
    }
}

fn conf(pairs: &[(&str, &str)]) -> SubFilterLocConf {
    SubFilterLocConf { own: pairs.iter().map(|(s, r)| pair(s, r)).collect(), ..Default::default() }
}

fn merge(parent: &SubFilterLocConf, child: &mut SubFilterLocConf) {
    SubFilterModule.merge_loc_conf(parent, child).unwrap();
}

#[test]
fn types_always_include_text_html() {
    let ct = |s: &str| Some(Bytes::from(s.to_string()));
    assert!(type_listed(None, ct("text/html; charset=utf-8").as_ref()));
    assert!(type_listed(None, ct("TEXT/HTML").as_ref()));
    assert!(!type_listed(None, ct("text/plain").as_ref()));
    assert!(!type_listed(None, None));
    let mut c = SubFilterLocConf::default();
    set_types(&mut c, &stmt("sub_filter_types", &["Text/CSS", "text/html"])).unwrap();
    assert!(type_listed(c.types.as_ref(), ct("text/css").as_ref()));
    assert!(type_listed(c.types.as_ref(), ct("text/html").as_ref()));
    assert!(!type_listed(c.types.as_ref(), ct("image/png").as_ref()));
    let e = set_types(&mut c, &stmt("sub_filter_types", &["text/xml"])).unwrap_err();
    assert_eq!(e, SetError::from(duplicate(&stmt("sub_filter_types", &[]))));
    let mut any = SubFilterLocConf::default();
    set_types(&mut any, &stmt("sub_filter_types", &["text/css", "*"])).unwrap();
    assert!(type_listed(any.types.as_ref(), ct("image/png").as_ref()));
    assert!(type_listed(any.types.as_ref(), None), "`*` takes responses with no type too");
}

#[test]
fn a_level_with_pairs_replaces_the_outer_list() {
    let http = conf(&[("foo", "bar")]);
    let mut server = SubFilterLocConf::default();
    merge(&http, &mut server);
    let inherited = server.pairs.clone().expect("inherited from http");
    assert_eq!(inherited.pairs.len(), 1);
    assert_eq!(inherited.fixed.as_ref().unwrap().len(), 1);
    let mut loc = conf(&[("a", "b"), ("c", "d")]);
    merge(&server, &mut loc);
    assert_eq!(loc.pairs.as_ref().unwrap().pairs.len(), 2, "not merged with the outer pair");
    let mut inner = SubFilterLocConf { once: Some(false), ..Default::default() };
    merge(&loc, &mut inner);
    assert!(Arc::ptr_eq(inner.pairs.as_ref().unwrap(), loc.pairs.as_ref().unwrap()), "shared, not rebuilt");
    assert_eq!(inner.once, Some(false));
    let mut none = SubFilterLocConf::default();
    merge(&SubFilterLocConf::default(), &mut none);
    assert!(none.pairs.is_none());
}

/// A context for `pairs` as the header filter would make it.
fn ctx(pairs: &[(&str, &str)], once: bool) -> SubFilterCtx {
    let set = SubPairs::new(pairs.iter().map(|(s, r)| pair(s, r)).collect());
    let pats = set.fixed.clone().unwrap();
    SubFilterCtx {
        scan: Scan::new(&pats, once),
        subs: vec![None; pats.len()],
        values: set.pairs.iter().map(|p| p.replacement.clone()).collect(),
        pats,
        out: Output::new(),
        input: Chain::new(),
        finished: false,
    }
}

/// Runs the body filter's loop over `input`; the chains it would pass on.
fn drive(c: &mut SubFilterCtx, input: Chain) -> Vec<Chain> {
    c.input.append(input);
    let eval = |v: &ComplexValue| v.as_literal().cloned().unwrap_or_default();
    let mut sent = Vec::new();
    loop {
        match c.step(&eval).unwrap() {
            Step::Idle => return sent,
            Step::Hold => {}
            Step::Send(chain) => sent.push(chain),
        }
    }
}

fn text(chains: &[Chain]) -> String {
    String::from_utf8(chains.iter().flat_map(|c| c.to_vec().unwrap()).collect()).unwrap()
}

#[test]
fn memory_bufs_go_on_at_the_end_of_each_chain() {
    let mut c = ctx(&[("foo", "bar"), ("BAZ", "qux")], false);
    let mut first = Chain::one(Buf::from_static(b"a fo"));
    first.push(Buf::from_static(b"o b"));
    let sent = drive(&mut c, first);
    assert_eq!(sent.len(), 1);
    assert_eq!(text(&sent), "a bar ", "`b` may start `baz`: held");
    let sent = drive(&mut c, Chain::one(Buf::from_static(b"az fo").with_flush()));
    assert_eq!(text(&sent), "qux ", "a flush does not give up a partial match");
    assert!(sent[0].bufs().last().unwrap().flush);
    let sent = drive(&mut c, Chain::one(Buf::last()));
    assert_eq!(text(&sent), "fo");
    assert!(sent[0].is_last());
    assert!(c.finished);
}

#[test]
fn once_replaces_each_string_once_and_the_value_is_evaluated_once() {
    let mut c = ctx(&[("a", "1"), ("b", "2")], true);
    let sent = drive(&mut c, Chain::one(Buf::from_static(b"abab").with_last()));
    assert_eq!(text(&sent), "12ab");
    assert!(c.scan.exhausted());
    assert!(c.subs.iter().all(Option::is_some));
}

#[test]
fn file_regions_are_scanned_in_bounded_pieces() {
    // A pattern straddles every piece boundary.
    let piece = READ_PIECE as usize;
    let mut data = vec![b'.'; 4 * piece + 100];
    for k in 1..=4 {
        data[k * piece - 3..k * piece + 3].copy_from_slice(b"NEEDLE");
    }
    let path = std::env::temp_dir().join(format!("sluice-sub-{}", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    let file = Arc::new(std::fs::File::open(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    let mut c = ctx(&[("needle", "pin")], false);
    let mut input = Chain::one(Buf::from_static(b"needle|"));
    input.push(Buf::file(file, 0, data.len() as u64));
    input.push(Buf::last());
    let sent = drive(&mut c, input);
    assert_eq!(sent.len(), 6, "one chain per file piece, then the end");
    for chain in &sent {
        assert!(chain.len() <= READ_PIECE + 16, "{} bytes in one chain", chain.len());
    }
    assert!(sent.last().unwrap().is_last());
    let want = format!("pin|{}", String::from_utf8(data).unwrap().replace("NEEDLE", "pin"));
    assert_eq!(text(&sent), want);
}

#[test]
fn search_strings_with_no_variables_are_compiled_once() {
    let set = SubPairs::new(vec![pair("FOO", "x"), pair("bar", "y")]);
    let fixed = set.fixed.as_ref().unwrap();
    assert_eq!(fixed.len(), 2);
    assert_eq!(fixed.max_len(), 3);
}
