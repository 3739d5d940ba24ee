//! Every directive sluice reads has an entry in `docs/directives.md`.
//!
//! The names come from the code, not from a list kept by hand: the HTTP
//! modules' directive tables (the binary's module list, with the http core
//! module that `Modules::new` puts first), and the top-level table of
//! `http/src/cycle.rs` (`daemon`, `events`, `http`, ...), which is private
//! and is therefore read from its source. An entry is a `### name` heading;
//! a name that two modules share may carry a note, `### server (upstream)`.
//! Std only.

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The names of every HTTP module's directives, as the binary builds them.
fn http_directives() -> BTreeSet<&'static str> {
    let modules = sluice_http::Modules::new(sluice::modules()).expect("the module list is valid");
    modules.list().iter().flat_map(|m| m.directives()).map(|d| d.name).collect()
}

/// The names in `main_directives()` of `http/src/cycle.rs`: each row is
/// `Directive::new(` followed by the name in double quotes.
fn main_directives() -> BTreeSet<String> {
    let src = std::fs::read_to_string(root().join("http/src/cycle.rs")).expect("read http/src/cycle.rs");
    let start = src.find("fn main_directives()").expect("cycle.rs has main_directives()");
    let body = &src[start..];
    let end = body.find("\nfn ").unwrap_or(body.len());
    body[..end]
        .split("Directive::new(")
        .skip(1)
        .filter_map(|row| {
            let row = row.trim_start().strip_prefix('"')?;
            Some(row[..row.find('"')?].to_string())
        })
        .collect()
}

/// The first word of every `### ` heading of the reference.
fn documented() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(root().join("docs/directives.md")).expect("read docs/directives.md");
    doc.lines()
        .filter_map(|l| l.strip_prefix("### "))
        .filter_map(|h| h.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_http_module_directive_has_an_entry() {
    let doc = documented();
    let missing: Vec<&str> = http_directives().into_iter().filter(|n| !doc.contains(*n)).collect();
    assert!(missing.is_empty(), "directives without a \"### name\" entry in docs/directives.md: {missing:?}");
}

#[test]
fn every_top_level_directive_has_an_entry() {
    let names = main_directives();
    // The scan found the table (a change of its shape must not make this
    // test pass vacuously).
    for known in ["daemon", "events", "http", "worker_processes"] {
        assert!(names.contains(known), "main_directives() scan lost \"{known}\": {names:?}");
    }
    let doc = documented();
    let missing: Vec<&String> = names.iter().filter(|n| !doc.contains(*n)).collect();
    assert!(missing.is_empty(), "directives without a \"### name\" entry in docs/directives.md: {missing:?}");
    // `include` belongs to the syntax (the parser expands it), not a table.
    assert!(doc.contains("include"), "docs/directives.md has no \"### include\" entry");
}
