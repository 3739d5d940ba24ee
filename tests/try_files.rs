//! End-to-end: `try_files` — files, `$uri/` directories, alias, and the
//! last argument as a URI, a named location or a status.

mod common;

use common::Server;

const CONF: &str = r#"http { server { listen 127.0.0.1:%%PORT%%; server_name localhost;
    root %%DIR%%;
    error_page 418 /teapot;
    location /teapot { return 200 "teapot $uri\n"; }
    location / { try_files $uri $uri/ /fallback?from=$uri; }
    location /fallback { return 200 "fallback $uri $args\n"; }
    location /named/ { try_files $uri @named; }
    location @named { return 200 "named $uri\n"; }
    location /code/ { try_files $uri =418; }
    location /file-dir/ { try_files /found.html/ =404; }
    location /dir-dir/ { try_files /directory/ =404; }
    location /dir-file/ { try_files /directory =404; }
    location /short/ { try_files /short $uri =404; }
    location ~ /alias-re.html { alias %%DIR%%/directory; try_files $uri =404; }
    location /alias/ { alias %%DIR%%/directory/; try_files $uri =404; }
    location /alias-nested/ { alias %%DIR%%/directory/; location ~ html$ { try_files $uri =404; } }
} }"#;

fn start() -> Server {
    let s = Server::start(CONF);
    s.write_file("found.html", "SEE THIS");
    s.write_file("directory/alias-re.html", "ALIASED");
    s.write_file("directory/index.html", "DIR INDEX");
    s
}

fn text(s: &Server, path: &str) -> (u16, String) {
    let r = s.get(path);
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

#[test]
fn files_directories_and_fallback_uri() {
    let s = start();
    assert_eq!(text(&s, "/found.html"), (200, "SEE THIS".into()));
    // `$uri/` matched a directory: index serves it.
    assert_eq!(text(&s, "/directory/"), (200, "DIR INDEX".into()));
    // A directory without its slash: `$uri` is no file, `$uri/` a directory,
    // so the URI stays /directory and static redirects.
    assert_eq!(s.get("/directory").status, 301);
    // The fallback URI takes only the arguments written in it.
    assert_eq!(text(&s, "/missing?x=1"), (200, "fallback /fallback from=/missing\n".into()));
}

#[test]
fn file_and_directory_tests() {
    let s = start();
    assert_eq!(s.get("/file-dir/").status, 404);
    assert_eq!(s.get("/dir-dir/").status, 301);
    assert_eq!(s.get("/dir-file/").status, 404);
    assert_eq!(s.get("/short/long").status, 404);
}

#[test]
fn named_location_and_status() {
    let s = start();
    assert_eq!(text(&s, "/named/x"), (200, "named /named/x\n".into()));
    // `=code` goes through error_page, keeping the code's status... unless
    // the page says otherwise: here the page answers 200 text with 418.
    let r = s.get("/code/x");
    assert_eq!((r.status, String::from_utf8_lossy(&r.body).as_ref()), (418, "teapot /teapot\n"));
}

#[test]
fn alias_in_prefix_and_regex_locations() {
    let s = start();
    assert_eq!(text(&s, "/alias/index.html"), (200, "DIR INDEX".into()));
    assert_eq!(text(&s, "/alias-re.html"), (200, "ALIASED".into()));
    assert_eq!(s.get("/alias/nothing").status, 404);
    // A regex location inside a prefix location with `alias` maps names
    // as that prefix location does.
    assert_eq!(text(&s, "/alias-nested/index.html"), (200, "DIR INDEX".into()));
    assert_eq!(s.get("/alias-nested/none.html").status, 404);
}
