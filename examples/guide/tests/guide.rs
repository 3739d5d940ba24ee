//! Keeps `docs/writing-modules.md` true: every `rust` and `toml` block in
//! it must be a verbatim excerpt of the file its label names (the line
//! before the block: ``From [`src/quote.rs`](../examples/guide/src/quote.rs):``),
//! so every snippet the guide shows is code that compiles and is tested
//! here. Other blocks must say `text` (config and output samples).

use std::path::{Path, PathBuf};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn guide_path() -> PathBuf {
    crate_dir().join("../../docs/writing-modules.md")
}

fn guide() -> String {
    std::fs::read_to_string(guide_path()).expect("docs/writing-modules.md")
}

/// A fenced block: its language, its text, the line of its opening fence
/// (1-based) and the label line before it.
struct Block {
    lang: String,
    text: String,
    line: usize,
    label: String,
}

fn blocks(md: &str) -> Vec<Block> {
    let lines: Vec<&str> = md.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let end = (i + 1..lines.len())
            .find(|&k| lines[k] == "```")
            .unwrap_or_else(|| panic!("line {}: unclosed code block", i + 1));
        let label = lines[..i].iter().rev().find(|l| !l.trim().is_empty()).copied().unwrap_or_default();
        out.push(Block {
            lang: lang.to_string(),
            text: lines[i + 1..end].join("\n"),
            line: i + 1,
            label: label.into(),
        });
        i = end + 1;
    }
    out
}

/// The crate-relative path named by a label, checking that the link
/// points at the same file.
fn labelled_path(label: &str) -> Option<String> {
    let rest = label.strip_prefix("From [`")?;
    let (path, rest) = rest.split_once("`](")?;
    let link = rest.strip_suffix("):")?;
    (link == format!("../examples/guide/{path}")).then(|| path.to_string())
}

/// Checks every block of `md`; the number of checked (rust and toml)
/// blocks, or what is wrong.
fn check(md: &str) -> Result<usize, String> {
    let mut checked = 0;
    for b in blocks(md) {
        match b.lang.as_str() {
            "rust" | "toml" => {}
            "text" => continue,
            other => {
                return Err(format!("line {}: block language {other:?}: use rust, toml (checked) or text", b.line))
            }
        }
        let path = labelled_path(&b.label).ok_or_else(|| {
            format!(
                "line {}: a {} block needs the label ``From [`path`](../examples/guide/path):``, not {:?}",
                b.line, b.lang, b.label
            )
        })?;
        let source = std::fs::read_to_string(crate_dir().join(&path)).map_err(|e| format!("{path}: {e}"))?;
        // Whole lines only: the excerpt starts and ends at line breaks.
        if !format!("\n{source}").contains(&format!("\n{}\n", b.text)) {
            return Err(format!("line {}: this block is not (or no longer) in {path} verbatim:\n{}", b.line, b.text));
        }
        checked += 1;
    }
    Ok(checked)
}

#[test]
fn every_code_block_is_a_verbatim_excerpt_of_the_crate() {
    let checked = check(&guide()).unwrap_or_else(|e| panic!("docs/writing-modules.md: {e}"));
    assert!(checked >= 20, "only {checked} checked blocks: did the block syntax change?");
}

#[test]
fn relative_links_point_at_files_that_exist() {
    let md = guide();
    let docs = guide_path().parent().expect("docs dir").to_path_buf();
    let mut seen = 0;
    for (at, _) in md.match_indices("](") {
        let target = &md[at + 2..];
        let target = &target[..target.find(')').expect("closing parenthesis")];
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        assert!(docs.join(target).exists(), "broken link {target}");
        seen += 1;
    }
    assert!(seen >= 20, "only {seen} links checked");
}

#[test]
fn the_checker_rejects_drift_missing_labels_and_unknown_languages() {
    let good = guide();
    let drifted = good.replacen(
        "pub fn modules() -> Vec<Arc<dyn HttpModule>> {",
        "pub fn modules() -> Vec<Box<dyn HttpModule>> {",
        1,
    );
    assert_ne!(good, drifted, "the guide quotes modules()");
    assert!(check(&drifted).is_err_and(|e| e.contains("no longer")));
    let unlabelled = "Some prose.\n\n```rust\nfn main() {}\n```\n";
    assert!(check(unlabelled).is_err_and(|e| e.contains("needs the label")));
    assert!(check("```rs\nfn main() {}\n```\n").is_err_and(|e| e.contains("block language")));
    let mismatched = "From [`src/lib.rs`](../examples/guide/src/main.rs):\n\n```rust\nfn main() {\n```\n";
    assert!(check(mismatched).is_err_and(|e| e.contains("needs the label")), "label and link disagree");
}
