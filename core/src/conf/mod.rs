//! The configuration language: nginx's syntax and the directive machinery.
//!
//! Reading a configuration is two steps:
//!
//! 1. [`parser`] turns text into a tree of [`Statement`]s: `name arg ...;` or
//!    `name arg ... { ... }`, with quotes, backslash escapes, `#` comments and
//!    `include` (globs allowed) already expanded. Every statement remembers the
//!    file and line it came from, so every later error can name them.
//! 2. The owner of a context (the core for the main context, sluice-http for
//!    `http`, `server`, `location`, ...) walks its statements and hands each
//!    one to the [`Directive`] row of the module that declared that name; the
//!    row checks the context and the argument count, and its setter stores
//!    the value in the module's conf struct (see [`directive`]).
//!
//! Errors read like nginx's: `unknown directive "gzipp" in /etc/sluice/sluice.conf:12`.

pub mod directive;
pub mod parser;
pub mod value;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use directive::{Args, Contexts, Directive, Level, SetError, SetFn};
pub use parser::{parse_file, parse_str, ConfText};

/// One argument of a directive, after quotes and escapes were processed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    /// The text of the argument.
    pub value: String,
    /// True when the argument was written in single or double quotes
    /// (`if ($x = "")` needs to tell `""` from nothing).
    pub quoted: bool,
}

impl Arg {
    /// The argument's text.
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

/// Where a statement was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file (as given or as found by `include`); `Arc` so that every
    /// statement of one file shares one allocation.
    pub file: Arc<Path>,
    /// 1-based line of the directive's name.
    pub line: usize,
}

/// The pseudo file name of directives given with `-g`; errors in them say
/// "in command line", without a line, as nginx's do.
pub const COMMAND_LINE: &str = "command line";

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.file.as_os_str() == COMMAND_LINE {
            return f.write_str(COMMAND_LINE);
        }
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One directive as written: `name args...;` or `name args... { block }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The directive's name (first token).
    pub name: String,
    /// The remaining tokens.
    pub args: Vec<Arg>,
    /// The statements inside `{ }`, when the directive has a block.
    pub block: Option<Vec<Statement>>,
    /// Where the name was written.
    pub origin: Origin,
}

impl Statement {
    /// The argument texts.
    pub fn arg(&self, i: usize) -> &str {
        self.args.get(i).map(|a| a.value.as_str()).unwrap_or("")
    }

    /// An error about this statement, located at its file and line.
    pub fn error(&self, message: impl Into<String>) -> ConfError {
        ConfError::at(message, &self.origin)
    }
}

/// A configuration error: the message and, when known, where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfError {
    /// nginx-worded message, without the location.
    pub message: String,
    /// File and line, when the error belongs to a place in a file.
    pub origin: Option<Origin>,
}

impl ConfError {
    /// An error at a place.
    pub fn at(message: impl Into<String>, origin: &Origin) -> ConfError {
        ConfError { message: message.into(), origin: Some(origin.clone()) }
    }

    /// An error with no place (e.g. the main file cannot be opened).
    pub fn new(message: impl Into<String>) -> ConfError {
        ConfError { message: message.into(), origin: None }
    }
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(o) => write!(f, "{} in {}", self.message, o),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfError {}

/// The text of every file read for a configuration, in reading order
/// (what `-T` prints).
pub type ConfFiles = Vec<(PathBuf, String)>;
