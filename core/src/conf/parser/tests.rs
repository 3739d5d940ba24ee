//! Tests of the configuration parser: trees, errors, includes.

use super::*;
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};

const NAME: &str = "/etc/sluice/sluice.conf";

fn parse(text: &str) -> Vec<Statement> {
    match parse_str(text, Path::new(NAME), Path::new("/etc/sluice")) {
        Ok(c) => c.statements,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

/// The error a user would see for `text`.
fn err(text: &str) -> String {
    match parse_str(text, Path::new(NAME), Path::new("/etc/sluice")) {
        Ok(c) => panic!("{text:?} parsed: {:?}", c.statements),
        Err(e) => e.to_string(),
    }
}

/// A compact picture of a tree: `line:name arg "quoted" ;` and blocks as
/// `{ ... }`; control characters shown escaped.
fn show(stmts: &[Statement]) -> String {
    let parts: Vec<String> = stmts.iter().map(show_one).collect();
    parts.join(" ")
}

fn show_one(s: &Statement) -> String {
    let mut out = format!("{}:{}", s.origin.line, s.name.escape_debug());
    for a in &s.args {
        if a.quoted {
            out.push_str(&format!(" \"{}\"", a.value.escape_debug()));
        } else {
            out.push_str(&format!(" {}", a.value.escape_debug()));
        }
    }
    match &s.block {
        None => out.push(';'),
        Some(b) if b.is_empty() => out.push_str(" {}"),
        Some(b) => out.push_str(&format!(" {{ {} }}", show(b))),
    }
    out
}

/// A scratch directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sluice-conf-{}-{n}-{tag}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    fn path(&self, rel: &str) -> String {
        self.0.join(rel).display().to_string()
    }

    fn parse(&self, main: &str) -> Result<ConfText, ConfError> {
        parse_file(&self.0.join(main), &self.0)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn statements_blocks_and_lines() {
    let text = "worker_processes 2;\n\nevents {\n    worker_connections 1024;\n}\nhttp {\n  server {\n    listen 80;\n    location / { }\n  }\n}\n";
    assert_eq!(
        show(&parse(text)),
        "1:worker_processes 2; 3:events { 4:worker_connections 1024; } \
         6:http { 7:server { 8:listen 80; 9:location / {} } }"
    );
}

#[test]
fn whitespace_and_empty_inputs() {
    assert!(parse("").is_empty());
    assert!(parse("  \n\t\r\n").is_empty());
    assert!(parse("# only a comment").is_empty());
    assert_eq!(show(&parse("a;b;c{}d{e;}")), "1:a; 1:b; 1:c {} 1:d { 1:e; }");
    assert_eq!(show(&parse("\tname\targ1  \t arg2\n;")), "1:name arg1 arg2;");
    // A statement's line is its name's, however many lines it spans.
    assert_eq!(show(&parse("\n\nserver_name\n a\n b;\nx;")), "3:server_name a b; 6:x;");
}

#[test]
fn comments_at_odd_places() {
    let text = "a 1; # trailing ; { }\nb # between name and args\n  2 # and before the end\n;\nc {# after the brace\n  d;#glued\n}# after the close\n#last line without newline";
    assert_eq!(show(&parse(text)), "1:a 1; 2:b 2; 5:c { 6:d; }");
    // `#` inside a word is a character.
    assert_eq!(show(&parse("add_header X a#b;")), "1:add_header X a#b;");
    assert_eq!(show(&parse("a\"#\";")), "1:a\\\"#\\\";");
}

#[test]
fn crlf_line_endings() {
    let text = "a 1;\r\nb {\r\n  c \"x\";\r\n}\r\n# note\r\nd;\r\n";
    assert_eq!(show(&parse(text)), "1:a 1; 2:b { 3:c \"x\"; } 6:d;");
    assert_eq!(err("a {\r\n b;\r\n"), format!("unexpected end of file, expecting \"}}\" in {NAME}:3"));
}

#[test]
fn quoted_words() {
    let s = parse("a \"x y\" 'p;q{r}' \"\" '';");
    assert_eq!(show(&s), "1:a \"x y\" \"p;q{r}\" \"\" \"\";");
    assert!(s[0].args.iter().all(|a| a.quoted));
    // A quoted word may span lines; the count goes on.
    assert_eq!(show(&parse("a \"one\ntwo\";\nb;")), "1:a \"one\\ntwo\"; 3:b;");
    // Quotes inside an unquoted word are characters.
    assert_eq!(show(&parse("a b\"c\"d e'f;")), "1:a b\\\"c\\\"d e\\'f;");
    // A closing quote may be followed by `;`, `{` or `)`.
    assert_eq!(show(&parse("a \"x\";b 'y'{}")), "1:a \"x\"; 1:b \"y\" {}");
    assert_eq!(show(&parse("\"quoted\" name;")), "1:quoted name;");
}

#[test]
fn escapes() {
    // Inside quotes: \" \' \\ \t \r \n translated, other pairs kept.
    let s = parse(r#"a "q\"q" 's\'s' "b\\s" "t\tr\rn\n" "re\d+\.x\$";"#);
    let values: Vec<&str> = s[0].args.iter().map(|a| a.as_str()).collect();
    assert_eq!(values, ["q\"q", "s's", "b\\s", "t\tr\rn\n", r"re\d+\.x\$"]);
    // Unquoted: the backslash keeps the next character in the word, and the
    // same translation applies afterwards.
    let s = parse(r"a x\ y z\;w \{ \\ q\'q \n \} ^/a\d;");
    let values: Vec<&str> = s[0].args.iter().map(|a| a.as_str()).collect();
    assert_eq!(values, [r"x\ y", r"z\;w", r"\{", "\\", "q'q", "\n", r"\}", r"^/a\d"]);
    assert!(s[0].args.iter().all(|a| !a.quoted));
    // An escaped newline still counts as a line.
    assert_eq!(show(&parse("a \"x\\\ny\";\nb;")), "1:a \"x\\\\\\ny\"; 3:b;");
}

#[test]
fn variables_and_parentheses() {
    assert_eq!(show(&parse("set $a ${b}c;")), "1:set $a ${b}c;");
    assert_eq!(show(&parse("return 200 \"${x}\";")), "1:return 200 \"${x}\";");
    let text = "if ($request_method = \"POST\") {\n  return 405;\n}\nif ($a){ b; }";
    assert_eq!(show(&parse(text)), "1:if ($request_method = \"POST\" ) { 2:return 405; } 4:if ($a) { 4:b; }");
    // A `{` not right after `$` ends the word and opens a block, as in nginx.
    assert_eq!(show(&parse("location ~ ^/a{ x; }")), "1:location ~ ^/a { 1:x; }");
    assert_eq!(show(&parse("location ~ \"^/a{2}$\" { x; }")), "1:location ~ \"^/a{2}$\" { 1:x; }");
    // `}` inside a word is a character.
    assert_eq!(show(&parse("s { return 200}; }")), "1:s { 1:return 200}; }");
    assert_eq!(err("s { return 200} }"), format!("unexpected \"}}\" in {NAME}:1"));
}

#[test]
fn structural_errors() {
    assert_eq!(err("}"), format!("unexpected \"}}\" in {NAME}:1"));
    assert_eq!(err("a {}\n}"), format!("unexpected \"}}\" in {NAME}:2"));
    assert_eq!(err("a b\n }"), format!("unexpected \"}}\" in {NAME}:2"));
    assert_eq!(err(";"), format!("unexpected \";\" in {NAME}:1"));
    assert_eq!(err("a;\n\n;"), format!("unexpected \";\" in {NAME}:3"));
    assert_eq!(err("{ a; }"), format!("unexpected \"{{\" in {NAME}:1"));
    assert_eq!(err("http {\n server {\n  {"), format!("unexpected \"{{\" in {NAME}:3"));
    assert_eq!(err("a b"), format!("unexpected end of file, expecting \";\" or \"}}\" in {NAME}:1"));
    assert_eq!(err("a b\n"), format!("unexpected end of file, expecting \";\" or \"}}\" in {NAME}:2"));
    assert_eq!(err("http {\n  a;\n"), format!("unexpected end of file, expecting \"}}\" in {NAME}:3"));
    assert_eq!(err("http { s { a; }"), format!("unexpected end of file, expecting \"}}\" in {NAME}:1"));
    assert_eq!(err("http { a }"), format!("unexpected \"}}\" in {NAME}:1"));
}

#[test]
fn quote_errors() {
    assert_eq!(err("a \"b\"c;"), format!("unexpected \"c\" in {NAME}:1"));
    assert_eq!(err("x {\na 'b'};"), format!("unexpected \"}}\" in {NAME}:2"));
    assert_eq!(err("a \"b\"# c\n;"), format!("unexpected \"#\" in {NAME}:1"));
    assert_eq!(err("a 'b'\"c\";"), format!("unexpected \"\"\" in {NAME}:1"));
    assert_eq!(err("a \"b\"é;"), format!("unexpected \"é\" in {NAME}:1"));
    // An unclosed quote runs to the end of the file.
    assert_eq!(err("a \"b;\n\nc;\n"), format!("unexpected end of file, expecting \";\" or \"}}\" in {NAME}:4"));
    assert_eq!(err("a \"b\""), format!("unexpected end of file, expecting \";\" or \"}}\" in {NAME}:1"));
}

#[test]
fn origins_share_the_file() {
    let s = parse("a;\nb { c; }");
    assert_eq!(s[0].origin.to_string(), format!("{NAME}:1"));
    let inner = &s[1].block.as_ref().unwrap()[0];
    assert!(Arc::ptr_eq(&s[0].origin.file, &inner.origin.file));
    assert_eq!(inner.error("bad").to_string(), format!("bad in {NAME}:2"));
}

#[test]
fn deep_nesting_is_bounded() {
    let ok = format!("{}{}", "a {".repeat(MAX_BLOCK_DEPTH), "}".repeat(MAX_BLOCK_DEPTH));
    assert_eq!(parse(&ok).len(), 1);
    let deep = format!("{}{}", "a {\n".repeat(1000), "}".repeat(1000));
    let line = MAX_BLOCK_DEPTH + 1;
    assert_eq!(err(&deep), format!("blocks nested deeper than 100 levels in {NAME}:{line}"));
}

#[test]
fn files_of_parse_str() {
    let c = parse_str("a;", Path::new("/x/y.conf"), Path::new("/x")).unwrap();
    assert_eq!(c.files, vec![(PathBuf::from("/x/y.conf"), "a;".to_string())]);
}

#[test]
fn main_file_errors() {
    let dir = TempDir::new("main");
    let missing = dir.0.join("nope.conf");
    let e = parse_file(&missing, &dir.0).unwrap_err();
    assert_eq!(e.origin, None);
    assert_eq!(e.to_string(), format!("open() \"{}\" failed (2: No such file or directory)", missing.display()));
    let e = parse_file(&dir.0, &dir.0).unwrap_err();
    assert_eq!(e.to_string(), format!("pread() \"{}\" failed (21: Is a directory)", dir.0.display()));
}

#[test]
fn invalid_utf8() {
    let dir = TempDir::new("utf8");
    // In a comment it does no harm; -T shows it replaced.
    dir.write("ok.conf", b"# caf\xe9\na b;\n");
    let c = dir.parse("ok.conf").unwrap();
    assert_eq!(show(&c.statements), "2:a b;");
    assert_eq!(c.files[0].1, "# caf\u{fffd}\na b;\n");
    dir.write("bad.conf", b"a;\nb caf\xe9;\n");
    let e = dir.parse("bad.conf").unwrap_err().to_string();
    assert_eq!(e, format!("parameter \"caf\u{fffd}\" is not valid UTF-8 in {}:2", dir.path("bad.conf")));
}

#[test]
fn include_relative_absolute_and_nested() {
    let dir = TempDir::new("nested");
    let abs = dir.write("abs/c.conf", "c 3;\n");
    let b_text = format!("# b\nb 2;\ninclude {};\n", abs.display());
    dir.write("b.conf", &b_text);
    dir.write("main.conf", "a 1;\ninclude b.conf;\nd 4;\n");
    let c = dir.parse("main.conf").unwrap();
    assert_eq!(show(&c.statements), "1:a 1; 2:b 2; 1:c 3; 3:d 4;");
    let files: Vec<String> = c.statements.iter().map(|s| s.origin.to_string()).collect();
    assert_eq!(
        files,
        [
            dir.path("main.conf") + ":1",
            dir.path("b.conf") + ":2",
            dir.path("abs/c.conf") + ":1",
            dir.path("main.conf") + ":3"
        ]
    );
    let read: Vec<(String, &str)> = c.files.iter().map(|(p, t)| (p.display().to_string(), t.as_str())).collect();
    assert_eq!(
        read,
        [
            (dir.path("main.conf"), "a 1;\ninclude b.conf;\nd 4;\n"),
            (dir.path("b.conf"), b_text.as_str()),
            (dir.path("abs/c.conf"), "c 3;\n"),
        ]
    );
}

#[test]
fn include_inside_blocks_and_types() {
    let dir = TempDir::new("types");
    dir.write("mime.types", "types {\n    text/html html htm;\n    image/png png;\n}\n");
    dir.write("more.types", "application/json json;\n");
    dir.write(
        "main.conf",
        "http {\n    include mime.types;\n    types {\n        include more.types;\n    }\n    server { include srv/*.conf; }\n}\n",
    );
    dir.write("srv/listen.conf", "listen 8080;\n");
    let c = dir.parse("main.conf").unwrap();
    assert_eq!(
        show(&c.statements),
        "1:http { 1:types { 2:text/html html htm; 3:image/png png; } 3:types { 1:application/json json; } \
         6:server { 1:listen 8080; } }"
    );
}

#[test]
fn include_globs_sorted_hidden_skipped() {
    let dir = TempDir::new("glob");
    dir.write("conf.d/b.conf", "b;");
    dir.write("conf.d/a.conf", "a;");
    dir.write("conf.d/c.txt", "c;");
    dir.write("conf.d/.hidden.conf", "hidden;");
    dir.write("conf.d/sub/d.conf", "d;");
    dir.write("main.conf", "include conf.d/*.conf;\ninclude conf.d/?.txt;\ninclude conf.d/[s]*/*.conf;\n");
    let c = dir.parse("main.conf").unwrap();
    assert_eq!(show(&c.statements), "1:a; 1:b; 1:c; 1:d;");
    assert_eq!(c.files.len(), 5);
    // An absolute glob, and a glob matching nothing.
    let pattern = dir.path("conf.d/[ab].conf");
    dir.write("abs.conf", format!("include {pattern};\ninclude none/*.conf;\nx;"));
    assert_eq!(show(&dir.parse("abs.conf").unwrap().statements), "1:a; 1:b; 3:x;");
}

#[test]
fn include_glob_under_a_prefix_with_brackets() {
    let dir = TempDir::new("br[ack]et");
    dir.write("inc/one.conf", "one;");
    dir.write("main.conf", "include inc/*.conf;");
    assert_eq!(show(&dir.parse("main.conf").unwrap().statements), "1:one;");
}

#[test]
fn include_errors() {
    let dir = TempDir::new("incerr");
    let main = dir.path("main.conf");
    dir.write("main.conf", "a;\n\ninclude missing.conf;\n");
    let missing = dir.path("missing.conf");
    assert_eq!(
        dir.parse("main.conf").unwrap_err().to_string(),
        format!("open() \"{missing}\" failed (2: No such file or directory) in {main}:3")
    );
    dir.write("main.conf", "include;");
    assert_eq!(
        dir.parse("main.conf").unwrap_err().to_string(),
        format!("invalid number of arguments in \"include\" directive in {main}:1")
    );
    dir.write("main.conf", "http {\n include a b;\n}");
    assert_eq!(
        dir.parse("main.conf").unwrap_err().to_string(),
        format!("invalid number of arguments in \"include\" directive in {main}:2")
    );
    dir.write("main.conf", "include x { }");
    assert_eq!(
        dir.parse("main.conf").unwrap_err().to_string(),
        format!("directive \"include\" is not terminated by \";\" in {main}:1")
    );
    fs::create_dir_all(dir.0.join("adir")).unwrap();
    dir.write("main.conf", "include adir;");
    assert_eq!(
        dir.parse("main.conf").unwrap_err().to_string(),
        format!("pread() \"{}\" failed (21: Is a directory) in {main}:1", dir.path("adir"))
    );
    dir.write("main.conf", "include [;");
    let e = dir.parse("main.conf").unwrap_err().to_string();
    assert!(e.starts_with("glob() \"") && e.ends_with(&format!(" in {main}:1")), "{e}");
}

#[test]
fn errors_inside_included_files_name_them() {
    let dir = TempDir::new("inner");
    dir.write("main.conf", "http {\n  include inner.conf;\n}\n");
    let inner = dir.path("inner.conf");
    dir.write("inner.conf", "a;\nb \"x\"y;\n");
    assert_eq!(dir.parse("main.conf").unwrap_err().to_string(), format!("unexpected \"y\" in {inner}:2"));
    // A block must close in the file that opened it.
    dir.write("inner.conf", "server {\n  listen 80;\n");
    assert_eq!(
        dir.parse("main.conf").unwrap_err().to_string(),
        format!("unexpected end of file, expecting \"}}\" in {inner}:3")
    );
    dir.write("inner.conf", "a;\n}\n");
    assert_eq!(dir.parse("main.conf").unwrap_err().to_string(), format!("unexpected \"}}\" in {inner}:2"));
    dir.write("inner.conf", "a b");
    assert_eq!(
        dir.parse("main.conf").unwrap_err().to_string(),
        format!("unexpected end of file, expecting \";\" or \"}}\" in {inner}:1")
    );
}

#[test]
fn include_loops_stop() {
    let dir = TempDir::new("loop");
    dir.write("main.conf", "include self.conf;\n");
    let this = dir.path("self.conf");
    dir.write("self.conf", "x;\ninclude self.conf;\n");
    let e = dir.parse("main.conf").unwrap_err().to_string();
    assert_eq!(
        e,
        format!("include of \"self.conf\" nested deeper than 32 levels (does a file include itself?) in {this}:2")
    );
    // A file included twice is read twice but listed once.
    dir.write("main.conf", "include once.conf;\ninclude once.conf;\n");
    dir.write("once.conf", "x;\n");
    let c = dir.parse("main.conf").unwrap();
    assert_eq!(show(&c.statements), "1:x; 1:x;");
    assert_eq!(c.files.len(), 2);
}

#[test]
fn relative_include_from_parse_str() {
    let dir = TempDir::new("str");
    dir.write("part.conf", "p;");
    let c = parse_str("include part.conf;\nq;", Path::new("-g"), &dir.0).unwrap();
    assert_eq!(show(&c.statements), "1:p; 2:q;");
    assert_eq!(c.files[0], (PathBuf::from("-g"), "include part.conf;\nq;".to_string()));
    assert_eq!(c.files[1].0, dir.0.join("part.conf"));
}

#[test]
fn every_prefix_parses_or_errors_without_panic() {
    let text =
        "http {\r\n  # c\n  if ($a = \"x\\\"y\") { return 200 '${b}\\n'; }\n  s\\;t x\\ y;\n  include \"a b\";\n}\n";
    for end in 0..=text.len() {
        if let Some(prefix) = text.get(..end) {
            let r = parse_str(prefix, Path::new(NAME), Path::new("/nonexistent-sluice-dir"));
            if let Err(e) = r {
                assert!(e.origin.is_some(), "{prefix:?}: {e}");
            }
        }
    }
}
