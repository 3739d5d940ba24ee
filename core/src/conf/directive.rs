//! Directive tables: the rows a module declares, and the generic setters.
//!
//! A module declares each directive as one row — name, the contexts it may
//! appear in, how many arguments it takes, which of the module's conf structs
//! it writes (main, server or location), and a setter. Generic setters cover
//! flags, strings, numbers, sizes, times and enums; a module writes its own
//! setter only for directives with a grammar of their own (`listen`,
//! `error_page`, ...).
//!
//! ```
//! use sluice_core::conf::directive::{self, Args, Contexts, Directive, Level};
//! #[derive(Default)]
//! struct GzipConf { enable: Option<bool>, min_length: Option<u64> }
//! fn directives<Cx: 'static>() -> Vec<Directive<Cx>> {
//!     vec![
//!         Directive::new("gzip", Contexts::HTTP_ANY | Contexts::HTTP_LIF, Args::FLAG, Level::Loc,
//!             directive::flag(|c: &mut GzipConf| &mut c.enable)),
//!         Directive::new("gzip_min_length", Contexts::HTTP_ANY, Args::TAKE1, Level::Loc,
//!             directive::size(|c: &mut GzipConf| &mut c.min_length)),
//!     ]
//! }
//! # assert_eq!(directives::<()>().len(), 2);
//! ```

use std::any::Any;
use std::ops::BitOr;
use std::time::Duration;

use super::{value, ConfError, Statement};

/// The contexts a directive may appear in (a bit set, as nginx's
/// `NGX_MAIN_CONF | NGX_HTTP_SRV_CONF | ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contexts(pub u32);

impl Contexts {
    /// The top level of the main file.
    pub const MAIN: Contexts = Contexts(1);
    /// Inside `events { }`.
    pub const EVENTS: Contexts = Contexts(1 << 1);
    /// Inside `http { }`.
    pub const HTTP_MAIN: Contexts = Contexts(1 << 2);
    /// Inside `server { }`.
    pub const HTTP_SRV: Contexts = Contexts(1 << 3);
    /// Inside `location { }`.
    pub const HTTP_LOC: Contexts = Contexts(1 << 4);
    /// Inside `upstream { }`.
    pub const HTTP_UPS: Contexts = Contexts(1 << 5);
    /// Inside `if { }` in a server.
    pub const HTTP_SIF: Contexts = Contexts(1 << 6);
    /// Inside `if { }` in a location.
    pub const HTTP_LIF: Contexts = Contexts(1 << 7);
    /// Inside `limit_except { }`.
    pub const HTTP_LMT: Contexts = Contexts(1 << 8);
    /// http, server and location: the usual "any http level".
    pub const HTTP_ANY: Contexts = Contexts(Self::HTTP_MAIN.0 | Self::HTTP_SRV.0 | Self::HTTP_LOC.0);

    /// True when `self` and `other` share a context.
    pub fn contains(self, other: Contexts) -> bool {
        self.0 & other.0 != 0
    }
}

impl BitOr for Contexts {
    type Output = Contexts;
    fn bitor(self, rhs: Contexts) -> Contexts {
        Contexts(self.0 | rhs.0)
    }
}

/// How many arguments a directive takes, and whether it opens a block.
/// Bit `n` (0..=8) set means "n arguments are allowed"; bit 15 means a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Args(pub u16);

impl Args {
    /// No arguments.
    pub const NOARGS: Args = Args(1);
    /// Exactly one.
    pub const TAKE1: Args = Args(1 << 1);
    /// Exactly two.
    pub const TAKE2: Args = Args(1 << 2);
    /// Exactly three.
    pub const TAKE3: Args = Args(1 << 3);
    /// One or two.
    pub const TAKE12: Args = Args(1 << 1 | 1 << 2);
    /// One or three.
    pub const TAKE13: Args = Args(1 << 1 | 1 << 3);
    /// Two or three.
    pub const TAKE23: Args = Args(1 << 2 | 1 << 3);
    /// One to three.
    pub const TAKE123: Args = Args(1 << 1 | 1 << 2 | 1 << 3);
    /// One to four.
    pub const TAKE1234: Args = Args(1 << 1 | 1 << 2 | 1 << 3 | 1 << 4);
    /// One or more.
    pub const MORE1: Args = Args(0x7ffe);
    /// Two or more.
    pub const MORE2: Args = Args(0x7ffc);
    /// Any number, zero included.
    pub const ANY: Args = Args(0x7fff);
    /// `on` or `off`.
    pub const FLAG: Args = Args::TAKE1;
    /// Opens a block: combine with a count, e.g. `Args::BLOCK | Args::NOARGS`.
    pub const BLOCK: Args = Args(1 << 15);

    /// True when the directive opens a block.
    pub fn is_block(self) -> bool {
        self.0 & Self::BLOCK.0 != 0
    }

    /// True when `n` arguments are allowed.
    pub fn allows(self, n: usize) -> bool {
        if n >= 15 {
            return self.0 & (1 << 14) != 0;
        }
        self.0 & (1 << n) != 0
    }
}

impl BitOr for Args {
    type Output = Args;
    fn bitor(self, rhs: Args) -> Args {
        Args(self.0 | rhs.0)
    }
}

/// Which of its module's conf structs a directive writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// The module's main conf (one per `http` block, or the core conf).
    Main,
    /// The module's server conf.
    Srv,
    /// The module's location conf.
    Loc,
}

/// A setter's failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetError {
    /// An nginx-worded message about this statement; the caller adds
    /// " in file:line".
    Msg(String),
    /// An error already located elsewhere (inside a block this setter read).
    Located(ConfError),
}

impl From<String> for SetError {
    fn from(m: String) -> Self {
        SetError::Msg(m)
    }
}

impl From<&str> for SetError {
    fn from(m: &str) -> Self {
        SetError::Msg(m.to_string())
    }
}

impl From<ConfError> for SetError {
    fn from(e: ConfError) -> Self {
        SetError::Located(e)
    }
}

impl SetError {
    /// Locates the error at `stmt` unless it already has a place.
    pub fn locate(self, stmt: &Statement) -> ConfError {
        match self {
            SetError::Msg(m) => stmt.error(m),
            SetError::Located(e) => e,
        }
    }
}

/// A setter: gets the parsing context `Cx` of the context's owner, the conf
/// struct chosen by the row's [`Level`], and the statement.
pub type SetFn<Cx> = Box<dyn Fn(&mut Cx, &mut dyn Any, &Statement) -> Result<(), SetError> + Send + Sync>;

/// One row of a module's directive table.
pub struct Directive<Cx> {
    /// The name, as users write it.
    pub name: &'static str,
    /// Where it may appear.
    pub contexts: Contexts,
    /// Its arity (and whether it opens a block).
    pub args: Args,
    /// Which conf struct the setter receives.
    pub level: Level,
    /// The setter.
    pub set: SetFn<Cx>,
}

impl<Cx> std::fmt::Debug for Directive<Cx> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directive").field("name", &self.name).finish()
    }
}

impl<Cx> Directive<Cx> {
    /// A row.
    pub fn new(name: &'static str, contexts: Contexts, args: Args, level: Level, set: SetFn<Cx>) -> Self {
        Directive { name, contexts, args, level, set }
    }

    /// Checks the statement's shape against the row: the argument count and
    /// the presence of a block. Returns nginx's message on mismatch.
    pub fn check_shape(&self, stmt: &Statement) -> Result<(), String> {
        if self.args.is_block() && stmt.block.is_none() {
            return Err(format!("directive \"{}\" has no opening \"{{\"", self.name));
        }
        if !self.args.is_block() && stmt.block.is_some() {
            return Err(format!("directive \"{}\" is not terminated by \";\"", self.name));
        }
        if !self.args.allows(stmt.args.len()) {
            return Err(format!("invalid number of arguments in \"{}\" directive", self.name));
        }
        Ok(())
    }
}

/// Turns the type-erased conf back into the module's type. A mismatch is a
/// bug in a module's table (a row's `level` naming the wrong struct), found
/// the first time the directive is used in a test.
pub fn conf_mut<C: 'static>(conf: &mut dyn Any) -> &mut C {
    match conf.downcast_mut::<C>() {
        Some(c) => c,
        None => panic!("directive table names the wrong conf struct ({})", std::any::type_name::<C>()),
    }
}

/// nginx's "is duplicate" message.
pub fn duplicate(stmt: &Statement) -> String {
    format!("\"{}\" directive is duplicate", stmt.name)
}

fn store<T>(slot: &mut Option<T>, value: T, stmt: &Statement) -> Result<(), SetError> {
    if slot.is_some() {
        return Err(duplicate(stmt).into());
    }
    *slot = Some(value);
    Ok(())
}

/// `on` | `off`.
pub fn flag<Cx, C: 'static>(field: fn(&mut C) -> &mut Option<bool>) -> SetFn<Cx> {
    Box::new(move |_, conf, stmt| {
        let v = value::parse_flag(stmt.arg(0)).ok_or_else(|| {
            SetError::Msg(format!(
                "invalid value \"{}\" in \"{}\" directive, it must be \"on\" or \"off\"",
                stmt.arg(0),
                stmt.name
            ))
        })?;
        store(field(conf_mut(conf)), v, stmt)
    })
}

/// Any string (the first argument).
pub fn string<Cx, C: 'static>(field: fn(&mut C) -> &mut Option<String>) -> SetFn<Cx> {
    Box::new(move |_, conf, stmt| store(field(conf_mut(conf)), stmt.arg(0).to_string(), stmt))
}

/// A non-negative integer.
pub fn number<Cx, C: 'static>(field: fn(&mut C) -> &mut Option<u64>) -> SetFn<Cx> {
    Box::new(move |_, conf, stmt| {
        let v = value::parse_number(stmt.arg(0))
            .ok_or_else(|| SetError::Msg(format!("\"{}\" directive invalid number", stmt.name)))?;
        store(field(conf_mut(conf)), v, stmt)
    })
}

/// A size: `1024`, `8k`, `1m`.
pub fn size<Cx, C: 'static>(field: fn(&mut C) -> &mut Option<u64>) -> SetFn<Cx> {
    Box::new(move |_, conf, stmt| {
        let v = value::parse_size(stmt.arg(0))
            .ok_or_else(|| SetError::Msg(format!("\"{}\" directive invalid value", stmt.name)))?;
        store(field(conf_mut(conf)), v, stmt)
    })
}

/// An offset: a size that may also say `g`.
pub fn offset<Cx, C: 'static>(field: fn(&mut C) -> &mut Option<u64>) -> SetFn<Cx> {
    Box::new(move |_, conf, stmt| {
        let v = value::parse_offset(stmt.arg(0))
            .ok_or_else(|| SetError::Msg(format!("\"{}\" directive invalid value", stmt.name)))?;
        store(field(conf_mut(conf)), v, stmt)
    })
}

/// A time: `500ms`, `30s`, `1h 30m`; a bare number means seconds.
pub fn time<Cx, C: 'static>(field: fn(&mut C) -> &mut Option<Duration>) -> SetFn<Cx> {
    Box::new(move |_, conf, stmt| {
        let v = value::parse_time(stmt.arg(0))
            .ok_or_else(|| SetError::Msg(format!("\"{}\" directive invalid value", stmt.name)))?;
        store(field(conf_mut(conf)), v, stmt)
    })
}

/// One of a fixed set of words.
pub fn enumeration<Cx, C: 'static, T: Copy + Send + Sync + 'static>(
    values: &'static [(&'static str, T)],
    field: fn(&mut C) -> &mut Option<T>,
) -> SetFn<Cx> {
    Box::new(move |_, conf, stmt| {
        let word = stmt.arg(0);
        let v = values.iter().find(|(name, _)| name.eq_ignore_ascii_case(word)).map(|(_, v)| *v).ok_or_else(|| {
            let names: Vec<String> = values.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            SetError::Msg(format!(
                "invalid value \"{}\" in \"{}\" directive, it must be {}",
                word,
                stmt.name,
                names.join(" or ")
            ))
        })?;
        store(field(conf_mut(conf)), v, stmt)
    })
}

/// A setter followed by a post-check on the value it stored (nginx's
/// `post` handlers: bounds, alignment, ...). The check sees the stored value
/// and returns a message for the user.
pub fn checked<Cx: 'static, C: 'static, T: 'static>(
    set: SetFn<Cx>,
    field: fn(&mut C) -> &mut Option<T>,
    check: fn(&T) -> Result<(), String>,
) -> SetFn<Cx> {
    Box::new(move |cx, conf, stmt| {
        set(cx, conf, stmt)?;
        match field(conf_mut(conf)) {
            Some(v) => check(v).map_err(|m| format!("\"{}\" directive {}", stmt.name, m).into()),
            None => Ok(()),
        }
    })
}

/// A module's own setter, typed on its conf struct.
pub fn custom<Cx: 'static, C: 'static>(
    f: impl Fn(&mut Cx, &mut C, &Statement) -> Result<(), SetError> + Send + Sync + 'static,
) -> SetFn<Cx> {
    Box::new(move |cx, conf, stmt| f(cx, conf_mut(conf), stmt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conf::{Arg, Origin};
    use std::path::Path;
    use std::sync::Arc;

    #[derive(Default)]
    struct Conf {
        on: Option<bool>,
        n: Option<u64>,
        t: Option<Duration>,
        mode: Option<u8>,
    }

    fn stmt(name: &str, args: &[&str]) -> Statement {
        Statement {
            name: name.into(),
            args: args.iter().map(|a| Arg { value: a.to_string(), quoted: false }).collect(),
            block: None,
            origin: Origin { file: Arc::from(Path::new("/t.conf")), line: 3 },
        }
    }

    #[test]
    fn flag_duplicate_and_invalid() {
        let set: SetFn<()> = flag(|c: &mut Conf| &mut c.on);
        let mut c = Conf::default();
        set(&mut (), &mut c, &stmt("sendfile", &["on"])).unwrap();
        assert_eq!(c.on, Some(true));
        let e = set(&mut (), &mut c, &stmt("sendfile", &["off"])).unwrap_err();
        assert_eq!(e, "\"sendfile\" directive is duplicate".into());
        let mut c = Conf::default();
        let e = set(&mut (), &mut c, &stmt("sendfile", &["yes"])).unwrap_err();
        assert_eq!(e, "invalid value \"yes\" in \"sendfile\" directive, it must be \"on\" or \"off\"".into());
    }

    #[test]
    fn sizes_times_enums_and_checks() {
        let mut c = Conf::default();
        let set: SetFn<()> = checked(
            size(|c: &mut Conf| &mut c.n),
            |c: &mut Conf| &mut c.n,
            |v| {
                if *v >= 1024 {
                    Ok(())
                } else {
                    Err("must be at least 1k".into())
                }
            },
        );
        assert_eq!(
            set(&mut (), &mut c, &stmt("buf", &["1"])).unwrap_err(),
            "\"buf\" directive must be at least 1k".into()
        );
        let mut c = Conf::default();
        set(&mut (), &mut c, &stmt("buf", &["8k"])).unwrap();
        assert_eq!(c.n, Some(8192));
        let set: SetFn<()> = time(|c: &mut Conf| &mut c.t);
        set(&mut (), &mut c, &stmt("t", &["500ms"])).unwrap();
        assert_eq!(c.t, Some(Duration::from_millis(500)));
        static MODES: &[(&str, u8)] = &[("off", 0), ("exact", 1), ("before", 2)];
        let set: SetFn<()> = enumeration(MODES, |c: &mut Conf| &mut c.mode);
        set(&mut (), &mut c, &stmt("ims", &["before"])).unwrap();
        assert_eq!(c.mode, Some(2));
        let mut c = Conf::default();
        let e = set(&mut (), &mut c, &stmt("ims", &["x"])).unwrap_err();
        assert_eq!(e, "invalid value \"x\" in \"ims\" directive, it must be \"off\" or \"exact\" or \"before\"".into());
    }

    #[test]
    fn shapes() {
        let d: Directive<()> =
            Directive::new("listen", Contexts::HTTP_SRV, Args::MORE1, Level::Srv, custom(|_, _: &mut Conf, _| Ok(())));
        assert!(d.check_shape(&stmt("listen", &["80"])).is_ok());
        assert_eq!(
            d.check_shape(&stmt("listen", &[])).unwrap_err(),
            "invalid number of arguments in \"listen\" directive"
        );
        let b: Directive<()> = Directive::new(
            "http",
            Contexts::MAIN,
            Args::BLOCK | Args::NOARGS,
            Level::Main,
            custom(|_, _: &mut Conf, _| Ok(())),
        );
        assert_eq!(b.check_shape(&stmt("http", &[])).unwrap_err(), "directive \"http\" has no opening \"{\"");
    }
}
