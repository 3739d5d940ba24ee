//! A configuration cycle: the main context (`daemon`, `worker_processes`,
//! `pid`, `error_log`, `events { }`, ...) and the `http` block, read from
//! the files. A reload builds a new cycle; a bad one leaves the old serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_core::conf::directive::{self, custom, Args, Contexts as C, Directive, Level};
use sluice_core::conf::{parse_file, parse_str, value, ConfError, ConfFiles, Contexts, SetError, Statement};
use sluice_core::log::{Level as LogLevel, Target};

use crate::config::{load_http, HttpConfig, Modules};

/// The main-context settings.
#[derive(Debug, Default)]
pub struct CoreConf {
    /// `daemon` (on).
    pub daemon: Option<bool>,
    /// `master_process` (on): sluice has one process; the flag is checked
    /// and has no further effect.
    pub master_process: Option<bool>,
    /// `worker_processes` (1; `auto` = number of CPUs): worker threads.
    pub worker_processes: Option<usize>,
    /// `pid` (logs/sluice.pid).
    pub pid: Option<PathBuf>,
    /// `error_log` targets.
    pub error_log: Vec<(Target, LogLevel)>,
    /// `user` (none: the process keeps the identity it was started with).
    pub user: Option<(String, Option<String>)>,
    /// `worker_rlimit_nofile`.
    pub worker_rlimit_nofile: Option<u64>,
    /// `worker_connections` (512).
    pub worker_connections: Option<u64>,
    /// `worker_shutdown_timeout` (none): how long a graceful stop waits
    /// for open connections before closing them.
    pub worker_shutdown_timeout: Option<std::time::Duration>,
    events_seen: bool,
}

/// A loaded configuration.
#[derive(Debug)]
pub struct Cycle {
    /// Main context.
    pub core: CoreConf,
    /// The `http` block, if any.
    pub http: Option<Arc<HttpConfig>>,
    /// The files read (for `-T`).
    pub files: ConfFiles,
    /// The prefix.
    pub prefix: PathBuf,
    /// The main configuration file.
    pub conf_path: PathBuf,
}

/// What the main-context setters get.
#[derive(Debug)]
pub struct MainCx {
    prefix: PathBuf,
    modules: Arc<Modules>,
    http: Option<Arc<HttpConfig>>,
}

fn path_in(prefix: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        prefix.join(p)
    }
}

fn main_directives() -> Vec<Directive<MainCx>> {
    use Level::Main;
    vec![
        Directive::new("daemon", C::MAIN, Args::FLAG, Main, directive::flag(|c: &mut CoreConf| &mut c.daemon)),
        Directive::new(
            "master_process",
            C::MAIN,
            Args::FLAG,
            Main,
            directive::flag(|c: &mut CoreConf| &mut c.master_process),
        ),
        Directive::new(
            "worker_processes",
            C::MAIN,
            Args::TAKE1,
            Main,
            custom(|_, c: &mut CoreConf, s: &Statement| {
                if c.worker_processes.is_some() {
                    return Err(directive::duplicate(s).into());
                }
                let n = if s.arg(0) == "auto" {
                    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
                } else {
                    value::parse_number(s.arg(0))
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("invalid value \"{}\" in \"{}\" directive", s.arg(0), s.name))?
                        as usize
                };
                c.worker_processes = Some(n);
                Ok(())
            }),
        ),
        Directive::new(
            "pid",
            C::MAIN,
            Args::TAKE1,
            Main,
            custom(|cx: &mut MainCx, c: &mut CoreConf, s: &Statement| {
                if c.pid.is_some() {
                    return Err(directive::duplicate(s).into());
                }
                c.pid = Some(path_in(&cx.prefix, s.arg(0)));
                Ok(())
            }),
        ),
        Directive::new(
            "error_log",
            C::MAIN,
            Args::TAKE12,
            Main,
            custom(|cx: &mut MainCx, c: &mut CoreConf, s: &Statement| {
                let target =
                    if s.arg(0) == "stderr" { Target::Stderr } else { Target::File(path_in(&cx.prefix, s.arg(0))) };
                let level = match s.args.get(1) {
                    Some(l) => {
                        LogLevel::parse(l.as_str()).ok_or_else(|| format!("invalid log level \"{}\"", l.as_str()))?
                    }
                    None => LogLevel::Error,
                };
                c.error_log.push((target, level));
                Ok(())
            }),
        ),
        Directive::new(
            "user",
            C::MAIN,
            Args::TAKE12,
            Main,
            custom(|_, c: &mut CoreConf, s: &Statement| {
                if c.user.is_some() {
                    return Err(directive::duplicate(s).into());
                }
                c.user = Some((s.arg(0).to_string(), s.args.get(1).map(|a| a.value.clone())));
                Ok(())
            }),
        ),
        Directive::new(
            "worker_rlimit_nofile",
            C::MAIN,
            Args::TAKE1,
            Main,
            directive::number(|c: &mut CoreConf| &mut c.worker_rlimit_nofile),
        ),
        Directive::new(
            "worker_shutdown_timeout",
            C::MAIN,
            Args::TAKE1,
            Main,
            directive::time(|c: &mut CoreConf| &mut c.worker_shutdown_timeout),
        ),
        Directive::new(
            "events",
            C::MAIN,
            Args::BLOCK | Args::NOARGS,
            Main,
            custom(|cx: &mut MainCx, c: &mut CoreConf, s: &Statement| {
                if c.events_seen {
                    return Err(directive::duplicate(s).into());
                }
                c.events_seen = true;
                dispatch(cx, c, s.block.as_deref().unwrap_or(&[]), C::EVENTS).map_err(SetError::Located)
            }),
        ),
        Directive::new(
            "worker_connections",
            C::EVENTS,
            Args::TAKE1,
            Main,
            directive::number(|c: &mut CoreConf| &mut c.worker_connections),
        ),
        Directive::new(
            "multi_accept",
            C::EVENTS,
            Args::FLAG,
            Main,
            custom(|_, _: &mut CoreConf, s: &Statement| {
                // Workers always accept until the listen queue is empty.
                value::parse_flag(s.arg(0)).map(|_| ()).ok_or_else(|| {
                    format!("invalid value \"{}\" in \"{}\" directive, it must be \"on\" or \"off\"", s.arg(0), s.name)
                        .into()
                })
            }),
        ),
        Directive::new(
            "http",
            C::MAIN,
            Args::BLOCK | Args::NOARGS,
            Main,
            custom(|cx: &mut MainCx, _: &mut CoreConf, s: &Statement| {
                if cx.http.is_some() {
                    return Err(directive::duplicate(s).into());
                }
                cx.http = Some(Arc::new(load_http(&cx.modules, s, &cx.prefix)?));
                Ok(())
            }),
        ),
    ]
}

fn dispatch(cx: &mut MainCx, conf: &mut CoreConf, stmts: &[Statement], ctx: Contexts) -> Result<(), ConfError> {
    let table = main_directives();
    for stmt in stmts {
        let Some(row) = table.iter().find(|d| d.name == stmt.name) else {
            let msg = if cx.modules.knows(&stmt.name) {
                format!("\"{}\" directive is not allowed here", stmt.name)
            } else {
                format!("unknown directive \"{}\"", stmt.name)
            };
            return Err(stmt.error(msg));
        };
        if !row.contexts.contains(ctx) {
            return Err(stmt.error(format!("\"{}\" directive is not allowed here", stmt.name)));
        }
        row.check_shape(stmt).map_err(|e| stmt.error(e))?;
        (row.set)(cx, conf, stmt).map_err(|e| e.locate(stmt))?;
    }
    Ok(())
}

impl Cycle {
    /// Reads the configuration: the main file, then `-g` directives.
    pub fn load(
        modules: &Arc<Modules>,
        conf_path: &Path,
        prefix: &Path,
        globals: Option<&str>,
        embedded: Option<&str>,
    ) -> Result<Cycle, ConfError> {
        let conf_dir = conf_path.parent().map(Path::to_path_buf).unwrap_or_else(|| prefix.to_path_buf());
        let mut text = match embedded {
            Some(t) => parse_str(t, conf_path, &conf_dir)?,
            None => parse_file(conf_path, &conf_dir)?,
        };
        if let Some(g) = globals {
            let extra = parse_str(g, Path::new(sluice_core::conf::COMMAND_LINE), &conf_dir)?;
            if extra.statements.iter().any(|s| s.block.is_some()) {
                return Err(ConfError::new("block directives are not supported in -g option"));
            }
            text.statements.extend(extra.statements);
        }
        let mut cx = MainCx { prefix: prefix.to_path_buf(), modules: modules.clone(), http: None };
        let mut core = CoreConf::default();
        dispatch(&mut cx, &mut core, &text.statements, C::MAIN)?;
        Ok(Cycle {
            core,
            http: cx.http,
            files: text.files,
            prefix: prefix.to_path_buf(),
            conf_path: conf_path.to_path_buf(),
        })
    }

    /// The pid file.
    pub fn pid_path(&self) -> PathBuf {
        self.core.pid.clone().unwrap_or_else(|| self.prefix.join("logs/sluice.pid"))
    }

    /// Worker threads.
    pub fn workers(&self) -> usize {
        self.core.worker_processes.unwrap_or(1)
    }
}
