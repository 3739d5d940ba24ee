//! The command line of the `sluice` binary: nginx's flags, parsed the way
//! nginx parses them, plus the `-h`, `-v` and `-V` texts.
//!
//! ```text
//! sluice [-?hvVtTq] [-s signal] [-p prefix] [-e filename] [-c filename] [-g directives]
//! ```
//!
//! Parsing rules (nginx's, kept on purpose so scripts written for nginx work):
//! every argument starts with `-`; flag letters may be grouped (`-tq`); a
//! letter that takes a value (`p e c g s`) takes the rest of its argument
//! (`-cfile`) or, when nothing is left, the whole next argument (`-c file`),
//! even if that argument itself starts with `-`. A later occurrence of an
//! option overrides an earlier one. `-` alone is accepted and does nothing.
//!
//! Nothing here touches the file system or the process: [`parse`] returns a
//! [`Cli`] or the error message, and the caller prints `sluice: <message>`
//! and exits with status 1, as nginx does.
//!
//! The `-V` text speaks nginx's dialect on purpose: nginx's own test suite
//! reads `nginx version: nginx/X.Y.Z` to compare versions and looks for
//! `--without-http_<name>_module` / `--with-http_<name>_module` in the
//! `configure arguments:` line to decide which modules exist.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The nginx version whose behaviour sluice follows; `-V` reports it so that
/// version checks in nginx's test suite compare against it.
pub const NGINX_COMPAT_VERSION: &str = "1.27.0";

/// sluice's own version (the crate version).
const SLUICE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `-e` value that sends the error log to stderr instead of a file.
const STDERR_LOG: &str = "stderr";

/// Stock nginx http modules that nginx builds unless told
/// `--without-http_<name>_module`. The last three (tunnel, least_time,
/// sticky) are newer than [`NGINX_COMPAT_VERSION`], but nginx's test suite
/// knows them, and naming them as missing lets it skip their tests.
const DEFAULT_NGINX_MODULES: &[&str] = &[
    "charset",
    "gzip",
    "ssi",
    "userid",
    "access",
    "auth_basic",
    "mirror",
    "autoindex",
    "geo",
    "map",
    "split_clients",
    "referer",
    "rewrite",
    "proxy",
    "fastcgi",
    "uwsgi",
    "scgi",
    "grpc",
    "memcached",
    "limit_conn",
    "limit_req",
    "empty_gif",
    "browser",
    "upstream_hash",
    "upstream_ip_hash",
    "upstream_least_conn",
    "upstream_random",
    "upstream_keepalive",
    "upstream_zone",
    "tunnel",
    "upstream_least_time",
    "upstream_sticky",
];

/// Stock nginx http modules that nginx builds only when told
/// `--with-http_<name>_module`; a sluice module of the same name is announced
/// that way so nginx's test suite runs its tests.
const OPTIONAL_NGINX_MODULES: &[&str] = &[
    "ssl",
    "v2",
    "v3",
    "realip",
    "addition",
    "sub",
    "dav",
    "flv",
    "mp4",
    "gunzip",
    "gzip_static",
    "auth_request",
    "random_index",
    "secure_link",
    "degradation",
    "slice",
    "stub_status",
];

/// What the command line asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cli {
    /// `-h` or `-?`: print the version line and the usage text.
    pub help: bool,
    /// `-v`: print the version line.
    pub version: bool,
    /// `-V`: print the version line and the build ("configure") lines.
    pub version_verbose: bool,
    /// `-t` (or `-T`): test the configuration and exit.
    pub test: bool,
    /// `-T`: test the configuration, dump it to stdout and exit.
    pub test_dump: bool,
    /// `-q`: suppress non-error messages while testing the configuration.
    pub quiet: bool,
    /// `-s signal`: signal the running master process instead of starting.
    pub signal: Option<Signal>,
    /// `-p prefix`: the prefix path (default: the current directory).
    pub prefix: Option<PathBuf>,
    /// `-c file`: the configuration file (default `conf/sluice.conf`).
    pub conf: Option<PathBuf>,
    /// `-e file`: the start-up error log; the value `stderr` means stderr
    /// (see [`Cli::error_log_is_stderr`]).
    pub error_log: Option<PathBuf>,
    /// `-g directives`: main-context directives added to the configuration.
    pub globals: Option<String>,
}

impl Cli {
    /// True when `-e stderr` was given: log to stderr rather than to a file
    /// named `stderr`.
    pub fn error_log_is_stderr(&self) -> bool {
        self.error_log.as_deref() == Some(std::path::Path::new(STDERR_LOG))
    }

    /// True when the command line asks for the version/help text (`-h`,
    /// `-v`, `-V`). nginx prints it, then exits 0 unless `-t`/`-T` was also
    /// given, in which case it goes on to test the configuration.
    pub fn shows_info(&self) -> bool {
        self.help || self.version || self.version_verbose
    }

    /// The text nginx prints to stderr for `-h`/`-v`/`-V`, in nginx's order:
    /// the version line, then the usage (for `-h`), then the build lines
    /// (for `-V`). `modules` are the names of sluice's compiled-in modules.
    /// Empty when [`Cli::shows_info`] is false.
    pub fn info_text(&self, modules: &[&str]) -> String {
        if !self.shows_info() {
            return String::new();
        }
        let mut text = version_line();
        if self.help {
            text.push_str(&usage());
        }
        if self.version_verbose {
            text.push_str(&build_lines(modules, &nginx_modules_missing(modules)));
        }
        text
    }
}

/// A signal sent to the running server with `-s` (the core's, which also
/// knows the OS signal each name stands for).
pub use sluice_core::process::Signal;

/// Parses the arguments after the program name. The error is the message
/// nginx would print (without the program-name prefix).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, String> {
    let args: Vec<OsString> = args.into_iter().collect();
    let mut cli = Cli::default();
    let mut next = 0;
    while next < args.len() {
        let arg = args[next].as_bytes();
        next += 1;
        let Some(letters) = arg.strip_prefix(b"-") else {
            return Err(format!("invalid option: \"{}\"", lossy(arg)));
        };
        for (pos, &letter) in letters.iter().enumerate() {
            if !takes_value(letter) {
                set_flag(&mut cli, letter, &letters[pos..])?;
                continue;
            }
            // The value is the rest of this argument, else the next one.
            let rest = &letters[pos + 1..];
            let value = if !rest.is_empty() {
                OsStr::from_bytes(rest)
            } else if let Some(arg) = args.get(next) {
                next += 1;
                arg.as_os_str()
            } else {
                return Err(missing_value(letter));
            };
            set_value(&mut cli, letter, value)?;
            break;
        }
    }
    Ok(cli)
}

/// Whether an option letter takes a value.
fn takes_value(letter: u8) -> bool {
    matches!(letter, b'p' | b'e' | b'c' | b'g' | b's')
}

/// Applies a flag letter; `from` is the argument from that letter on, used
/// only to name an unknown letter in the error (it may be a multi-byte char).
fn set_flag(cli: &mut Cli, letter: u8, from: &[u8]) -> Result<(), String> {
    match letter {
        b'?' | b'h' => cli.help = true,
        b'v' => cli.version = true,
        b'V' => cli.version_verbose = true,
        b't' => cli.test = true,
        b'T' => {
            cli.test = true;
            cli.test_dump = true;
        }
        b'q' => cli.quiet = true,
        _ => {
            let shown = lossy(from).chars().next().unwrap_or('?');
            return Err(format!("invalid option: \"{shown}\""));
        }
    }
    Ok(())
}

/// Stores the value of a value-taking option letter.
fn set_value(cli: &mut Cli, letter: u8, value: &OsStr) -> Result<(), String> {
    match letter {
        b'p' => cli.prefix = Some(PathBuf::from(value)),
        b'e' => cli.error_log = Some(PathBuf::from(value)),
        b'c' => cli.conf = Some(PathBuf::from(value)),
        b'g' => {
            // Directives go through the (UTF-8) config parser, so refuse
            // bytes it could not read rather than altering them silently.
            let Some(text) = value.to_str() else {
                return Err("option \"-g\" parameter is not valid UTF-8".to_string());
            };
            cli.globals = Some(text.to_string());
        }
        _ => {
            let Some(signal) = std::str::from_utf8(value.as_bytes()).ok().and_then(Signal::from_name) else {
                return Err(format!("invalid option: \"-s {}\"", lossy(value.as_bytes())));
            };
            cli.signal = Some(signal);
        }
    }
    Ok(())
}

/// nginx's message for an option whose value is missing.
fn missing_value(letter: u8) -> String {
    let what = match letter {
        b'p' => "directory name",
        b'e' | b'c' => "file name",
        _ => "parameter",
    };
    format!("option \"-{}\" requires {what}", char::from(letter))
}

/// Bytes as text for messages (invalid UTF-8 shown as U+FFFD).
fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The usage text shown by `-h` (after the version line; see
/// [`Cli::info_text`], which prints both in nginx's order).
pub fn usage() -> String {
    [
        "Usage: sluice [-?hvVtTq] [-s signal] [-p prefix]",
        "              [-e filename] [-c filename] [-g directives]",
        "",
        "Options:",
        "  -?,-h         : show this help",
        "  -v            : show the version and exit",
        "  -V            : show the version and build options, then exit",
        "  -t            : test the configuration and exit",
        "  -T            : test the configuration, dump it and exit",
        "  -q            : only print errors while testing the configuration",
        "  -s signal     : signal the master process: stop, quit, reopen, reload",
        "  -p prefix     : set the prefix path (default: ./)",
        "  -e filename   : set the error log file, or \"stderr\" (default: logs/error.log)",
        "  -c filename   : set the configuration file (default: conf/sluice.conf)",
        "  -g directives : set global directives outside the configuration file",
        "",
        "",
    ]
    .join("\n")
}

/// The `-v` line, or the `-v`/`-V` text when `verbose`. `modules` are the
/// names of sluice's compiled-in modules; `missing_nginx_modules` are stock
/// nginx module names sluice lacks (see [`nginx_modules_missing`]).
pub fn version_text(verbose: bool, modules: &[&str], missing_nginx_modules: &[&str]) -> String {
    let mut text = version_line();
    if verbose {
        text.push_str(&build_lines(modules, missing_nginx_modules));
    }
    text
}

/// `nginx version: nginx/<compat> (sluice/<version>)`, newline-terminated;
/// the `nginx/` part is what nginx's test suite parses.
fn version_line() -> String {
    format!("nginx version: nginx/{NGINX_COMPAT_VERSION} (sluice/{SLUICE_VERSION})\n")
}

/// The `-V` lines after the version line.
fn build_lines(modules: &[&str], missing_nginx_modules: &[&str]) -> String {
    let mut configure = String::from("configure arguments:");
    for name in nginx_modules_present_optional(modules) {
        configure.push_str(&format!(" --with-http_{name}_module"));
    }
    for name in missing_nginx_modules {
        configure.push_str(&format!(" --without-http_{name}_module"));
    }
    format!("built with sluice's own Rust modules: {}\n{configure}\n", modules.join(", "))
}

/// The stock nginx http modules (built by default in nginx) whose names are
/// not among `present`. A present name may be given bare (`rewrite`) or in
/// nginx's spelling (`ngx_http_rewrite_module`, `http_rewrite`).
pub fn nginx_modules_missing(present: &[&str]) -> Vec<&'static str> {
    DEFAULT_NGINX_MODULES.iter().copied().filter(|name| !is_present(name, present)).collect()
}

/// Optional nginx modules (`--with-http_X_module`) that sluice has.
fn nginx_modules_present_optional(present: &[&str]) -> Vec<&'static str> {
    OPTIONAL_NGINX_MODULES.iter().copied().filter(|name| is_present(name, present)).collect()
}

/// nginx modules whose work a sluice module of another name does: the
/// upstream module holds the balancers and the keep-alive pool that nginx
/// builds as separate modules.
const PROVIDED_BY: &[(&str, &[&str])] = &[(
    "upstream",
    &["upstream_hash", "upstream_ip_hash", "upstream_least_conn", "upstream_random", "upstream_keepalive"],
)];

/// Whether the nginx module `name` is among `present`.
fn is_present(name: &str, present: &[&str]) -> bool {
    present.iter().any(|p| {
        let p = bare_module_name(p);
        p == name || PROVIDED_BY.iter().any(|(m, provides)| *m == p && provides.contains(&name))
    })
}

/// `ngx_http_rewrite_module` → `rewrite`; bare names pass unchanged.
fn bare_module_name(name: &str) -> &str {
    let name = name.strip_prefix("ngx_").unwrap_or(name);
    let name = name.strip_prefix("http_").unwrap_or(name);
    name.strip_suffix("_module").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Cli, String> {
        parse(args.iter().map(OsString::from))
    }

    fn ok(args: &[&str]) -> Cli {
        parse_strs(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn err(args: &[&str]) -> String {
        parse_strs(args).expect_err("should be rejected")
    }

    #[test]
    fn no_arguments_is_all_defaults() {
        assert_eq!(ok(&[]), Cli::default());
    }

    #[test]
    fn each_flag_alone() {
        assert!(ok(&["-h"]).help);
        assert!(ok(&["-?"]).help);
        assert!(ok(&["-v"]).version);
        let v = ok(&["-V"]);
        assert!(v.version_verbose && !v.version);
        let t = ok(&["-t"]);
        assert!(t.test && !t.test_dump);
        assert!(ok(&["-q"]).quiet);
    }

    #[test]
    fn big_t_implies_test() {
        let cli = ok(&["-T"]);
        assert!(cli.test && cli.test_dump);
    }

    #[test]
    fn combined_flags_in_any_order() {
        let expected = Cli { test: true, quiet: true, ..Cli::default() };
        assert_eq!(ok(&["-tq"]), expected);
        assert_eq!(ok(&["-qt"]), expected);
        assert_eq!(ok(&["-q", "-t"]), expected);
        let all = ok(&["-hvVtTq"]);
        assert!(all.help && all.version && all.version_verbose);
        assert!(all.test && all.test_dump && all.quiet);
    }

    #[test]
    fn values_attached_or_separate() {
        let attached = ok(&["-p/srv/", "-cfile.conf", "-elogs/e.log", "-gdaemon off;", "-sreload"]);
        let separate = ok(&["-p", "/srv/", "-c", "file.conf", "-e", "logs/e.log", "-g", "daemon off;", "-s", "reload"]);
        assert_eq!(attached, separate);
        assert_eq!(attached.prefix, Some(PathBuf::from("/srv/")));
        assert_eq!(attached.conf, Some(PathBuf::from("file.conf")));
        assert_eq!(attached.error_log, Some(PathBuf::from("logs/e.log")));
        assert_eq!(attached.globals.as_deref(), Some("daemon off;"));
        assert_eq!(attached.signal, Some(Signal::Reload));
    }

    #[test]
    fn flags_before_a_value_letter_in_one_argument() {
        let cli = ok(&["-tqc", "x.conf"]);
        assert!(cli.test && cli.quiet);
        assert_eq!(cli.conf, Some(PathBuf::from("x.conf")));
        // Everything after the value letter is the value, even flag letters.
        let cli = ok(&["-tcq"]);
        assert!(cli.test && !cli.quiet);
        assert_eq!(cli.conf, Some(PathBuf::from("q")));
    }

    #[test]
    fn separate_value_may_start_with_a_dash() {
        let cli = ok(&["-c", "-t"]);
        assert!(!cli.test);
        assert_eq!(cli.conf, Some(PathBuf::from("-t")));
    }

    #[test]
    fn nginx_test_suite_command_line() {
        let cli = ok(&[
            "-p",
            "/tmp/t/",
            "-c",
            "nginx.conf",
            "-e",
            "error.log",
            "-g",
            "pid /tmp/t/nginx.pid; error_log /tmp/t/error.log debug;",
        ]);
        assert_eq!(cli.prefix, Some(PathBuf::from("/tmp/t/")));
        assert_eq!(cli.conf, Some(PathBuf::from("nginx.conf")));
        assert_eq!(cli.error_log, Some(PathBuf::from("error.log")));
        assert!(!cli.error_log_is_stderr());
        assert_eq!(cli.globals.as_deref(), Some("pid /tmp/t/nginx.pid; error_log /tmp/t/error.log debug;"));
        let dump = ok(&["-T", "-p", "/tmp/t/", "-c", "nginx.conf", "-e", "error.log"]);
        assert!(dump.test && dump.test_dump);
    }

    #[test]
    fn argument_order_does_not_matter_and_last_value_wins() {
        assert_eq!(ok(&["-t", "-c", "a"]), ok(&["-c", "a", "-t"]));
        assert_eq!(ok(&["-c", "a", "-c", "b"]).conf, Some(PathBuf::from("b")));
        assert_eq!(ok(&["-s", "stop", "-squit"]).signal, Some(Signal::Quit));
    }

    #[test]
    fn every_signal_name() {
        for signal in [Signal::Stop, Signal::Quit, Signal::Reopen, Signal::Reload] {
            assert_eq!(ok(&["-s", signal.name()]).signal, Some(signal));
        }
        assert_eq!(Signal::Reopen.name(), "reopen");
    }

    #[test]
    fn error_log_stderr() {
        assert!(ok(&["-e", "stderr"]).error_log_is_stderr());
        assert!(ok(&["-estderr"]).error_log_is_stderr());
        assert!(!ok(&[]).error_log_is_stderr());
    }

    #[test]
    fn missing_values() {
        assert_eq!(err(&["-c"]), "option \"-c\" requires file name");
        assert_eq!(err(&["-e"]), "option \"-e\" requires file name");
        assert_eq!(err(&["-p"]), "option \"-p\" requires directory name");
        assert_eq!(err(&["-g"]), "option \"-g\" requires parameter");
        assert_eq!(err(&["-s"]), "option \"-s\" requires parameter");
        assert_eq!(err(&["-t", "-c"]), "option \"-c\" requires file name");
        assert_eq!(err(&["-tc"]), "option \"-c\" requires file name");
    }

    #[test]
    fn unknown_signal() {
        assert_eq!(err(&["-s", "foo"]), "invalid option: \"-s foo\"");
        assert_eq!(err(&["-sRELOAD"]), "invalid option: \"-s RELOAD\"");
        assert_eq!(err(&["-s", ""]), "invalid option: \"-s \"");
    }

    #[test]
    fn unknown_flag_names_the_letter() {
        assert_eq!(err(&["-x"]), "invalid option: \"x\"");
        assert_eq!(err(&["-tx"]), "invalid option: \"x\"");
        assert_eq!(err(&["--help"]), "invalid option: \"-\"");
        assert_eq!(err(&["-é"]), "invalid option: \"é\"");
    }

    #[test]
    fn argument_without_dash() {
        assert_eq!(err(&["x"]), "invalid option: \"x\"");
        assert_eq!(err(&["-t", "stop"]), "invalid option: \"stop\"");
        assert_eq!(err(&[""]), "invalid option: \"\"");
    }

    #[test]
    fn lone_dash_is_accepted() {
        assert_eq!(ok(&["-"]), Cli::default());
    }

    #[test]
    fn non_utf8_paths_are_kept_byte_for_byte() {
        let raw = OsStr::from_bytes(b"conf/\xff.conf");
        let cli = parse([OsString::from("-c"), raw.to_owned()]).unwrap();
        assert_eq!(cli.conf.unwrap().as_os_str(), raw);
        let bad = parse([OsString::from("-g"), raw.to_owned()]).unwrap_err();
        assert_eq!(bad, "option \"-g\" parameter is not valid UTF-8");
    }

    #[test]
    fn usage_lists_every_option_and_the_defaults() {
        let text = usage();
        assert!(text.starts_with("Usage: sluice [-?hvVtTq] [-s signal] [-p prefix]\n"));
        for opt in ["-?,-h", "-v ", "-V ", "-t ", "-T ", "-q ", "-s signal", "-p prefix"] {
            assert!(text.contains(&format!("\n  {opt}")), "{opt} missing");
        }
        for opt in ["-e filename", "-c filename", "-g directives"] {
            assert!(text.contains(&format!("\n  {opt}")), "{opt} missing");
        }
        assert!(text.contains("stop, quit, reopen, reload"));
        assert!(text.contains("(default: ./)"));
        assert!(text.contains("(default: logs/error.log)"));
        assert!(text.contains("(default: conf/sluice.conf)"));
        assert!(text.ends_with("\n\n"));
    }

    #[test]
    fn short_version_is_one_line() {
        let text = version_text(false, &["rewrite"], &["gzip"]);
        assert_eq!(text, format!("nginx version: nginx/1.27.0 (sluice/{SLUICE_VERSION})\n"));
    }

    #[test]
    fn verbose_version_as_nginx_test_suite_reads_it() {
        let missing = nginx_modules_missing(&["rewrite", "proxy", "return"]);
        let text = version_text(true, &["rewrite", "proxy", "return"], &missing);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        // has_version(): m!nginx version: nginx/([0-9.]+)!
        let version = lines[0].strip_prefix("nginx version: nginx/").unwrap();
        let digits: String = version.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        assert_eq!(digits, NGINX_COMPAT_VERSION);
        assert_eq!(lines[1], "built with sluice's own Rust modules: rewrite, proxy, return");
        assert!(lines[2].starts_with("configure arguments: --without-http_charset_module"));
        assert!(lines[2].contains(" --without-http_gzip_module"));
        assert!(lines[2].contains(" --without-http_upstream_keepalive_module"));
        assert!(!lines[2].contains("rewrite"));
        assert!(!lines[2].contains("proxy"));
        assert!(!lines[2].contains("--with-"));
    }

    #[test]
    fn verbose_version_announces_optional_modules_sluice_has() {
        let text = version_text(true, &["sub", "realip", "return"], &[]);
        assert!(text.ends_with("configure arguments: --with-http_realip_module --with-http_sub_module\n"));
    }

    #[test]
    fn verbose_version_with_nothing_missing() {
        let text = version_text(true, &[], &[]);
        assert!(text.ends_with("\nconfigure arguments:\n"));
    }

    #[test]
    fn missing_modules() {
        let all = nginx_modules_missing(&[]);
        assert_eq!(all.len(), DEFAULT_NGINX_MODULES.len());
        assert!(all.contains(&"upstream_zone") && all.contains(&"split_clients"));
        let some = nginx_modules_missing(&["rewrite", "ngx_http_proxy_module", "http_gzip", "index"]);
        assert!(!some.contains(&"rewrite"));
        assert!(!some.contains(&"proxy"));
        assert!(!some.contains(&"gzip"));
        assert_eq!(some.len(), all.len() - 3);
        // A prefix of a name is not that module...
        assert!(nginx_modules_missing(&["upstream_zone"]).contains(&"upstream_hash"));
        // ... but the upstream module does the balancers' work.
        let with_upstream = nginx_modules_missing(&["upstream"]);
        assert!(!with_upstream.contains(&"upstream_hash") && !with_upstream.contains(&"upstream_keepalive"));
        assert!(with_upstream.contains(&"upstream_zone"));
    }

    #[test]
    fn info_text_follows_nginx_order() {
        let line = format!("nginx version: nginx/1.27.0 (sluice/{SLUICE_VERSION})\n");
        assert_eq!(ok(&["-t"]).info_text(&[]), "");
        assert_eq!(ok(&["-v"]).info_text(&[]), line);
        let help = ok(&["-h"]).info_text(&[]);
        assert_eq!(help, format!("{line}{}", usage()));
        let all = ok(&["-hV"]).info_text(&["gzip"]);
        assert!(all.starts_with(&format!("{line}{}built with", usage())));
        assert!(!all.contains("--without-http_gzip_module"));
        assert!(all.contains("--without-http_rewrite_module"));
    }
}
