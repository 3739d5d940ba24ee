//! End-to-end tests of the command line (`-t -T -q -v -V -h -g -p -e`,
//! unknown options), of configuration errors as `-t` reports them, and of
//! the default configuration. Each runs the real binary in its own temp dir.

mod common;

use std::time::Duration;

use common::cli::{self, run, Run, Spawned, TempDir};
use common::parse_response;

/// `sluice -t -c DIR/test.conf -p DIR/` on `text`; returns the run and the
/// configuration file's path.
fn check(dir: &TempDir, text: &str) -> (Run, String) {
    let conf = dir.write("test.conf", text);
    let prefix = dir.prefix();
    (run(dir.path(), &["-t", "-c", &conf, "-p", &prefix]), conf)
}

/// Asserts the run failed the way nginx's `-t` fails: exit 1, stderr exactly
/// `sluice: [emerg] <msg> in <file>:<line>` and then
/// `sluice: configuration file <main> test failed`.
fn assert_emerg(r: &Run, msg: &str, file: &str, line: u32, main: &str) {
    let expected = format!(
        "sluice: [emerg] {msg} in {file}:{line}\n\
         sluice: configuration file {main} test failed\n"
    );
    assert_eq!(r.stderr, expected, "stderr of a failed test");
    assert_eq!(r.code, 1, "exit code; stderr: {}", r.stderr);
    assert_eq!(r.stdout, "", "nothing on stdout");
}

/// `text` is rejected with `msg` at `line` of the main file.
fn assert_rejected(text: &str, msg: &str, line: u32) {
    let dir = TempDir::new("conf");
    let (r, conf) = check(&dir, text);
    assert_emerg(&r, msg, &conf, line, &conf);
}

/// Sends `request` to `127.0.0.1:port`; everything until the server closes.
fn exchange(port: u16, request: &[u8]) -> Vec<u8> {
    let mut conn = common::Conn::open(port);
    conn.send(request);
    conn.read_to_end()
}

#[test]
fn unknown_directive() {
    assert_rejected("events {}\nfoo bar;\n", "unknown directive \"foo\"", 2);
}

#[test]
fn directive_not_allowed_here() {
    assert_rejected("events {}\nhttp {\n    listen 8080;\n}\n", "\"listen\" directive is not allowed here", 3);
}

#[test]
fn wrong_number_of_arguments() {
    assert_rejected("events {}\ndaemon;\n", "invalid number of arguments in \"daemon\" directive", 2);
}

#[test]
fn duplicate_directive() {
    assert_rejected(
        "events {}\nhttp {\n    sendfile on;\n    sendfile off;\n}\n",
        "\"sendfile\" directive is duplicate",
        4,
    );
}

#[test]
fn invalid_flag_value() {
    assert_rejected(
        "events {}\nhttp {\n    sendfile maybe;\n}\n",
        "invalid value \"maybe\" in \"sendfile\" directive, it must be \"on\" or \"off\"",
        3,
    );
}

#[test]
fn invalid_size_value() {
    assert_rejected(
        "events {}\nhttp {\n    client_max_body_size 1q;\n}\n",
        "\"client_max_body_size\" directive invalid value",
        3,
    );
}

#[test]
fn invalid_time_value() {
    assert_rejected(
        "events {}\nhttp {\n\n    keepalive_timeout 1x;\n}\n",
        "\"keepalive_timeout\" directive invalid value",
        4,
    );
}

#[test]
fn unexpected_closing_brace() {
    assert_rejected("events {}\n}\n", "unexpected \"}\"", 2);
}

#[test]
fn unexpected_end_of_file() {
    // No newline at the end, so the last line is the one with the `{`.
    assert_rejected("events {}\nhttp {", "unexpected end of file, expecting \"}\"", 2);
}

#[test]
fn error_in_included_file_names_that_file_and_line() {
    let dir = TempDir::new("inc");
    let extra = dir.write("extra.conf", "\n\nbogus_directive 1;\n");
    let (r, main) = check(&dir, "events {}\nhttp {\n    include extra.conf;\n}\n");
    assert_emerg(&r, "unknown directive \"bogus_directive\"", &extra, 3, &main);
}

#[test]
fn include_glob_reads_every_match_and_reports_errors_in_them() {
    let dir = TempDir::new("glob");
    let a = dir.write("sites/a.conf", "server {\n    listen 127.0.0.1:1;\n}\n");
    let b = dir.write("sites/b.conf", "server {\n    listen 127.0.0.1:2;\n    sendfile yes;\n}\n");
    // A pattern that matches nothing is not an error, as in nginx.
    let text = "events {}\nhttp {\n    include sites/*.conf;\n    include none/*.conf;\n}\n";
    let (r, main) = check(&dir, text);
    assert_emerg(&r, "invalid value \"yes\" in \"sendfile\" directive, it must be \"on\" or \"off\"", &b, 3, &main);

    dir.write("sites/b.conf", "server {\n    listen 127.0.0.1:2;\n}\n");
    let prefix = dir.prefix();
    let r = run(dir.path(), &["-T", "-c", &main, "-p", &prefix]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    for (path, text) in [(&main, text.to_string()), (&a, dir.read("sites/a.conf")), (&b, dir.read("sites/b.conf"))] {
        let dump = format!("# configuration file {path}:\n{text}");
        assert!(r.stdout.contains(&dump), "-T lacks {path}:\n{}", r.stdout);
    }
    let a_at = r.stdout.find(&a).expect("a.conf dumped");
    let b_at = r.stdout.find(&b).expect("b.conf dumped");
    assert!(a_at < b_at, "glob matches are read in name order");
}

#[test]
fn location_with_bad_regex() {
    let dir = TempDir::new("regex");
    let text = "events {}\nhttp {\n    server {\n        location ~ \"(\" { return 200; }\n    }\n}\n";
    let (r, conf) = check(&dir, text);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    // One line per message, as every nginx log line: the location comes
    // last on the `[emerg]` line, and the pattern is named.
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "two lines of stderr: {:?}", r.stderr);
    assert!(lines[0].starts_with("sluice: [emerg] "), "{:?}", lines[0]);
    assert!(lines[0].contains("\"(\""), "names the regex: {:?}", lines[0]);
    assert!(lines[0].ends_with(&format!(" in {conf}:4")), "ends with the location: {:?}", lines[0]);
    assert_eq!(lines[1], format!("sluice: configuration file {conf} test failed"));
}

const GOOD: &str =
    "events {}\nhttp {\n    server {\n        listen 127.0.0.1:1;\n        location / { return 204; }\n    }\n}\n";

#[test]
fn good_configuration_passes_the_test() {
    let dir = TempDir::new("good");
    let (r, conf) = check(&dir, GOOD);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(
        r.stderr,
        format!(
            "sluice: the configuration file {conf} syntax is ok\n\
             sluice: configuration file {conf} test is successful\n"
        )
    );
    assert_eq!(r.stdout, "");
}

#[test]
fn quiet_test_prints_errors_only() {
    let dir = TempDir::new("quiet");
    let conf = dir.write("test.conf", GOOD);
    let prefix = dir.prefix();
    let r = run(dir.path(), &["-t", "-q", "-c", &conf, "-p", &prefix]);
    assert_eq!((r.code, r.stderr.as_str(), r.stdout.as_str()), (0, "", ""));

    dir.write("test.conf", "events {}\nfoo;\n");
    let r = run(dir.path(), &["-tq", "-c", &conf, "-p", &prefix]);
    assert_emerg(&r, "unknown directive \"foo\"", &conf, 2, &conf);
}

#[test]
fn dump_prints_every_file_with_its_path() {
    let dir = TempDir::new("dump");
    let inc_text = "server {\n    listen 127.0.0.1:1;\n}\n";
    let inc = dir.write("conf.d/one.conf", inc_text);
    let main_text = "events {}\nhttp {\n    include conf.d/one.conf;\n}\n";
    let main = dir.write("main.conf", main_text);
    let prefix = dir.prefix();
    let r = run(dir.path(), &["-T", "-c", &main, "-p", &prefix]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("test is successful"), "{}", r.stderr);
    let main_dump = format!("# configuration file {main}:\n{main_text}");
    let inc_dump = format!("# configuration file {inc}:\n{inc_text}");
    assert!(r.stdout.starts_with(&main_dump), "{}", r.stdout);
    assert!(r.stdout.contains(&inc_dump), "{}", r.stdout);
    assert_eq!(r.stdout.matches("# configuration file ").count(), 2);
}

#[test]
fn version_flags_print_to_stderr() {
    let dir = TempDir::new("version");
    let r = run(dir.path(), &["-v"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("nginx version: nginx/"), "{}", r.stderr);

    let r = run(dir.path(), &["-V"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert!(r.stderr.starts_with("nginx version: nginx/"), "{}", r.stderr);
    let configure = r
        .stderr
        .lines()
        .find(|l| l.starts_with("configure arguments:"))
        .unwrap_or_else(|| panic!("no configure line in {}", r.stderr));
    // Modules sluice lacks are named as nginx would; ones it has are not.
    assert!(configure.split_whitespace().any(|a| a == "--without-http_fastcgi_module"), "{configure}");
    assert!(!configure.contains("--without-http_proxy_module"), "{configure}");
}

#[test]
fn help_lists_the_options() {
    let dir = TempDir::new("help");
    for flag in ["-h", "-?"] {
        let r = run(dir.path(), &[flag]);
        assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{flag}");
        assert!(r.stderr.starts_with("nginx version: "), "{}", r.stderr);
        for opt in [
            "-?,-h",
            "-v ",
            "-V ",
            "-t ",
            "-T ",
            "-q ",
            "-s signal",
            "-p prefix",
            "-e filename",
            "-c filename",
            "-g directives",
        ] {
            assert!(r.stderr.contains(opt), "{flag} lacks {opt:?}:\n{}", r.stderr);
        }
    }
}

#[test]
fn unknown_option_is_refused() {
    let dir = TempDir::new("badopt");
    let r = run(dir.path(), &["-x"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "sluice: invalid option: \"x\"\n"));
    let r = run(dir.path(), &["stop"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "sluice: invalid option: \"stop\"\n"));
    let r = run(dir.path(), &["-c"]);
    assert_eq!(r.code, 1, "-c without its value");
    assert!(r.stderr.starts_with("sluice: "), "{}", r.stderr);
}

#[test]
fn global_directives_from_the_command_line() {
    let dir = TempDir::new("globals");
    let conf = dir.write("test.conf", GOOD);
    let prefix = dir.prefix();
    let args = ["-t", "-c", &conf, "-p", &prefix, "-g", "worker_processes 2;"];
    let r = run(dir.path(), &args);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("syntax is ok"), "{}", r.stderr);

    // nginx names the command line, without a line number.
    dir.write("test.conf", &format!("worker_processes 1;\n{GOOD}"));
    let r = run(dir.path(), &args);
    assert_eq!(
        r.stderr,
        format!(
            "sluice: [emerg] \"worker_processes\" directive is duplicate in command line\n\
             sluice: configuration file {conf} test failed\n"
        )
    );
    assert_eq!(r.code, 1);

    let r = run(dir.path(), &["-t", "-c", &conf, "-p", &prefix, "-g", "events {}"]);
    assert_eq!(r.code, 1, "a block in -g; stderr: {}", r.stderr);
    assert!(r.stderr.starts_with("sluice: [emerg] "), "{}", r.stderr);
}

#[test]
fn global_directive_takes_effect_when_serving() {
    // No `daemon` in the file: without `-g 'daemon off;'` sluice would
    // detach; with it, the process we started is the server.
    let dir = TempDir::new("gserve");
    let port = cli::free_port();
    let conf = dir.write(
        "test.conf",
        &format!(
            "error_log {log} info;\npid {pid};\nevents {{}}\nhttp {{\n    server {{\n        \
             listen 127.0.0.1:{port};\n        location / {{ return 200 \"g\"; }}\n    }}\n}}\n",
            log = dir.join("error.log"),
            pid = dir.join("sluice.pid"),
        ),
    );
    let prefix = dir.prefix();
    let mut s = Spawned::start(dir.path(), &["-c", &conf, "-p", &prefix, "-g", "daemon off;"]);
    assert!(
        cli::wait_until(Duration::from_secs(5), || cli::accepts(port)),
        "not listening; stderr: {}",
        dir.read("stderr.log")
    );
    assert_eq!(s.exited(), None, "the started process still runs");
    assert!(cli::wait_until(Duration::from_secs(5), || !dir.read("sluice.pid").is_empty()));
    let pid = dir.read("sluice.pid");
    assert_eq!(pid.trim(), s.pid().to_string());
}

#[test]
fn prefix_resolves_relative_paths() {
    let dir = TempDir::new("prefix");
    let elsewhere = TempDir::new("cwd");
    let port = cli::free_port();
    dir.write(
        "conf/main.conf",
        "daemon off;\nerror_log logs/err.log info;\npid logs/p.pid;\nevents {}\n\
         http {\n    include sites/site.conf;\n}\n",
    );
    dir.write(
        "conf/sites/site.conf",
        &format!("server {{\n    listen 127.0.0.1:{port};\n    return 200 \"prefixed\";\n}}\n"),
    );
    std::fs::create_dir_all(dir.path().join("logs")).expect("mkdir logs");
    let prefix = dir.prefix();
    let _s = Spawned::start(elsewhere.path(), &["-p", &prefix, "-c", "conf/main.conf"]);
    assert!(
        cli::wait_until(Duration::from_secs(5), || !dir.read("logs/p.pid").is_empty()),
        "no pid file under the prefix; stderr: {}",
        elsewhere.read("stderr.log")
    );
    let bytes = exchange(port, b"GET / HTTP/1.0\r\n\r\n");
    let (resp, _) = parse_response(&bytes);
    assert_eq!((resp.status, resp.body_str()), (200, "prefixed".to_string()));
    assert!(dir.path().join("logs/err.log").exists(), "error log under the prefix");
    assert!(!elsewhere.path().join("logs").exists(), "nothing under the cwd");

    let r = run(elsewhere.path(), &["-p", &prefix, "-c", "conf/main.conf", "-s", "stop"]);
    assert_eq!(r.code, 0, "-s stop: {}", r.stderr);
    assert!(
        cli::wait_until(Duration::from_secs(5), || !dir.path().join("logs/p.pid").exists()),
        "pid file removed at exit"
    );
}

#[test]
fn error_log_option_receives_start_up_errors() {
    let dir = TempDir::new("elog");
    // Hold the port so that the start fails after the configuration is read.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let conf = dir
        .write("test.conf", &format!("daemon off;\nevents {{}}\nhttp {{ server {{ listen 127.0.0.1:{port}; }} }}\n"));
    let prefix = dir.prefix();
    let elog = dir.join("start.log");
    let r = run(dir.path(), &["-c", &conf, "-p", &prefix, "-e", &elog]);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    let wanted = format!("bind() to 127.0.0.1:{port} failed (98: Address already in use)");
    let log = dir.read("start.log");
    assert!(log.contains("[emerg]") && log.contains(&wanted), "-e file: {log:?}");
    assert!(r.stderr.contains(&wanted), "stderr: {}", r.stderr);
    // `-e` replaces the default error log (the default access log,
    // logs/access.log, is another matter).
    assert!(!dir.path().join("logs/error.log").exists(), "no default error log opened");
}

#[test]
fn embedded_default_configuration_passes_the_test() {
    // No conf/ under the prefix: the configuration built into the binary is
    // used, and it must stand on its own.
    let dir = TempDir::new("embedded");
    let prefix = dir.prefix();
    let r = run(dir.path(), &["-t", "-p", &prefix]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("syntax is ok"), "{}", r.stderr);
    assert!(r.stderr.contains("test is successful"), "{}", r.stderr);
}

#[test]
fn default_configuration_serves_the_welcome_page() {
    let root = env!("CARGO_MANIFEST_DIR");
    let conf = std::fs::read_to_string(format!("{root}/conf/sluice.conf")).expect("conf");
    let mime = std::fs::read_to_string(format!("{root}/conf/mime.types")).expect("mime.types");
    assert!(conf.contains("listen       127.0.0.1:8080;"), "the default listen");
    let port = cli::free_port();
    let dir = TempDir::new("default");
    dir.write("conf/sluice.conf", &conf.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}")));
    dir.write("conf/mime.types", &mime);
    let prefix = dir.prefix();
    let _s = Spawned::start(dir.path(), &["-p", &prefix]);
    assert!(
        cli::wait_until(Duration::from_secs(5), || cli::accepts(port)),
        "not listening; stderr: {}",
        dir.read("stderr.log")
    );
    let bytes = exchange(port, b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let (resp, _) = parse_response(&bytes);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/html"));
    assert!(resp.body_str().contains("Welcome to sluice!"), "{}", resp.body_str());
    // The pid file is written once the listeners are up, so it may lag.
    assert!(cli::wait_until(Duration::from_secs(5), || dir.path().join("logs/sluice.pid").exists()), "logs/sluice.pid");
    assert!(dir.path().join("logs/error.log").exists(), "logs/error.log");
}

#[test]
fn listen_socket_parameters_and_port_ranges() {
    // Accepted and in force: the server answers on the socket they made.
    let s = common::Server::start(
        "http { server { listen 127.0.0.1:%%PORT%%-%%PORT%% rcvbuf=64k sndbuf=32k so_keepalive=1m:10s:3 deferred backlog=64;
            location / { return 200 \"ok\"; } } }",
    );
    assert_eq!(s.get("/").body_str(), "ok");
    assert_rejected(
        "events {}\nhttp {\n    server {\n        listen 127.0.0.1:9-3;\n    }\n}\n",
        "invalid port range in \"127.0.0.1:9-3\" of the \"listen\" directive",
        4,
    );
    assert_rejected(
        "events {}\nhttp {\n    server {\n        listen 127.0.0.1:1 so_keepalive=sometimes;\n    }\n}\n",
        "invalid so_keepalive value: \"sometimes\"",
        4,
    );
    assert_rejected(
        "events {}\nhttp {\n    server {\n        listen 127.0.0.1:1 sndbuf=lots;\n    }\n}\n",
        "invalid sndbuf \"lots\"",
        4,
    );
    assert_rejected(
        "events {}\nhttp {\n    server {\n        listen 127.0.0.1:1 ssl;\n    }\n}\n",
        "the \"ssl\" parameter of the \"listen\" directive is not supported",
        4,
    );
    // Socket parameters come from one listen of an address.
    assert_rejected(
        "events {}\nhttp {\n    server { listen 127.0.0.1:1 backlog=8; }\n    server { listen 127.0.0.1:1 rcvbuf=8k; }\n}\n",
        "duplicate listen options for 127.0.0.1:1",
        2,
    );
}
