//! Regular expressions as configurations write them.
//!
//! Configurations written for nginx use PCRE syntax; sluice compiles them
//! with the `regex` crate, whose syntax covers most of what configurations
//! use (`(?P<n>…)`, `(?<n>…)`, classes, `\d`, `\w`, `\p{N}`, anchors). This
//! module translates the PCRE forms the crate lacks: `\Q…\E` literal spans.
//! Look-around and backreferences have no equivalent and are reported as
//! errors at start-up.

use regex::bytes::{Regex, RegexBuilder};

/// Rewrites PCRE-only syntax into the `regex` crate's.
pub fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(i) = rest.find("\\Q") {
        out.push_str(&rest[..i]);
        let lit = &rest[i + 2..];
        let (literal, after) = match lit.find("\\E") {
            Some(e) => (&lit[..e], &lit[e + 2..]),
            None => (lit, ""),
        };
        out.push_str(&regex::escape(literal));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Compiles a configuration regex; the error reads like nginx's.
pub fn compile(pattern: &str, caseless: bool) -> Result<Regex, String> {
    RegexBuilder::new(&translate(pattern)).case_insensitive(caseless).build().map_err(|e| {
        format!("pcre2_compile() failed: {} in \"{}\"", e.to_string().lines().last().unwrap_or("invalid"), pattern)
    })
}

/// The named groups of a compiled regex, with their indexes.
pub fn names(re: &Regex) -> Vec<(String, usize)> {
    re.capture_names().enumerate().filter_map(|(i, n)| n.map(|n| (n.to_string(), i))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_spans() {
        assert_eq!(translate(r"^(?P<n>[a-z]+)\Q.example.com\E$"), r"^(?P<n>[a-z]+)\.example\.com$");
        assert_eq!(translate(r"a\Q*+"), r"a\*\+");
        assert!(compile(r"^\Q.x\E$", false).unwrap().is_match(b".x"));
        assert!(compile("(", false).unwrap_err().starts_with("pcre2_compile() failed"));
    }
}
