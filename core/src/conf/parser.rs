//! nginx's configuration syntax: text into a tree of [`Statement`]s.
//!
//! The lexical rules are those of nginx's `ngx_conf_read_token`:
//!
//! - spaces, tabs, CR and LF separate words; `;` ends a statement, `{` opens
//!   a block and `}` closes one;
//! - `#` at the start of a word comments out the rest of the line (inside a
//!   word it is an ordinary character, as are `}`, quotes and parentheses);
//! - `"..."` and `'...'` make one word that may hold any character; the
//!   closing quote must be followed by a space, `;`, `{` or `)`;
//! - a backslash makes the next character ordinary (`\;`, `\ `, `\"`); then,
//!   in every word, `\"`, `\'` and `\\` become the character and `\t`, `\r`,
//!   `\n` the control character, while any other `\x` stays as written (so
//!   regexes keep their `\d`);
//! - `{` right after `$` belongs to the word, so `${name}` opens no block.
//!
//! `include PATTERN;` is expanded where it stands, in any block: a relative
//! pattern is taken from the prefix (the main file's directory), a pattern
//! with `*`, `?` or `[` is a glob whose matches are read in sorted order (no
//! match includes nothing), and a plain path must exist. A block must close
//! in the file that opened it, as in nginx.
//!
//! Errors carry nginx's wording and the file and line of the offending
//! character; statements carry the line of their name.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Arg, ConfError, ConfFiles, Origin, Statement};

/// How deep `include`s may nest; more is almost surely a file including
/// itself (nginx has no limit and fails when it runs out of descriptors).
const MAX_INCLUDE_DEPTH: usize = 32;

/// How deep blocks may nest, counted across files. Real configurations use a
/// handful of levels; the bound keeps the recursive parser's stack small.
const MAX_BLOCK_DEPTH: usize = 100;

/// A parsed configuration: the statements of the main file with includes
/// expanded, and the text of every file read.
#[derive(Debug, Default)]
pub struct ConfText {
    /// Top-level statements.
    pub statements: Vec<Statement>,
    /// Every file read, once each, in the order first read (for `-T`).
    pub files: ConfFiles,
}

/// Parses the file `path`; relative `include` patterns resolve against
/// `prefix`. An unreadable main file is an error with no location.
pub fn parse_file(path: &Path, prefix: &Path) -> Result<ConfText, ConfError> {
    let bytes = read_conf_file(path).map_err(ConfError::new)?;
    parse_bytes(&bytes, path, prefix)
}

/// Parses `text` as if it were the contents of the file `name`.
pub fn parse_str(text: &str, name: &Path, prefix: &Path) -> Result<ConfText, ConfError> {
    parse_bytes(text.as_bytes(), name, prefix)
}

fn parse_bytes(bytes: &[u8], name: &Path, prefix: &Path) -> Result<ConfText, ConfError> {
    let mut reader = Reader { prefix: prefix.to_path_buf(), files: Vec::new(), includes: 0, blocks: 0 };
    let mut statements = Vec::new();
    reader.parse_text(bytes, name, &mut statements)?;
    Ok(ConfText { statements, files: reader.files })
}

/// Reads a whole file; the error is nginx's message for the failing call.
fn read_conf_file(path: &Path) -> Result<Vec<u8>, String> {
    let mut file = File::open(path).map_err(|e| os_failure("open()", path, &e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| os_failure("pread()", path, &e))?;
    Ok(bytes)
}

/// `open() "/etc/x.conf" failed (2: No such file or directory)`.
fn os_failure(call: &str, path: &Path, err: &io::Error) -> String {
    let reason = match err.raw_os_error() {
        Some(code) => format!("{code}: {}", nix::errno::Errno::from_raw(code).desc()),
        None => err.to_string(),
    };
    format!("{call} \"{}\" failed ({reason})", path.display())
}

// ---------------------------------------------------------------------------
// The lexer.

/// One lexical token.
#[derive(Debug)]
enum Token {
    Word(Arg),
    Semicolon,
    Open,
    Close,
    Eof,
}

/// Splits one file's bytes into tokens, counting lines as it goes.
struct Lexer<'a> {
    text: &'a [u8],
    pos: usize,
    /// The current line (1-based): where the next unread byte is.
    line: usize,
    file: Arc<Path>,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a [u8], file: Arc<Path>) -> Self {
        Lexer { text, pos: 0, line: 1, file }
    }

    fn origin(&self, line: usize) -> Origin {
        Origin { file: Arc::clone(&self.file), line }
    }

    /// An error at the current line (where nginx reports lexical errors).
    fn error(&self, message: impl Into<String>) -> ConfError {
        ConfError::at(message, &self.origin(self.line))
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    /// Consumes one byte, counting the line it ends.
    fn bump(&mut self) {
        if self.peek() == Some(b'\n') {
            self.line += 1;
        }
        self.pos += 1;
    }

    /// The next token and the line it starts on.
    fn next(&mut self) -> Result<(Token, usize), ConfError> {
        self.skip_blanks_and_comments();
        let line = self.line;
        let token = match self.peek() {
            None => Token::Eof,
            Some(b';') => Token::Semicolon,
            Some(b'{') => Token::Open,
            Some(b'}') => Token::Close,
            Some(q @ (b'"' | b'\'')) => return Ok((Token::Word(self.quoted(q)?), line)),
            Some(_) => return Ok((Token::Word(self.bare()?), line)),
        };
        if !matches!(token, Token::Eof) {
            self.pos += 1;
        }
        Ok((token, line))
    }

    fn skip_blanks_and_comments(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.bump(),
                // The newline ending the comment is left to count the line.
                b'#' => match memchr::memchr(b'\n', &self.text[self.pos..]) {
                    Some(n) => self.pos += n,
                    None => self.pos = self.text.len(),
                },
                _ => break,
            }
        }
    }

    /// A quoted word; `self.pos` is at the opening quote.
    fn quoted(&mut self, quote: u8) -> Result<Arg, ConfError> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek() {
                None => return Err(self.error(EOF_IN_STATEMENT)),
                Some(b'\\') => {
                    self.bump();
                    if self.peek().is_some() {
                        self.bump();
                    }
                }
                Some(b) if b == quote => break,
                Some(_) => self.bump(),
            }
        }
        let raw = &self.text[start..self.pos];
        self.pos += 1;
        match self.peek() {
            None | Some(b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b')') => {}
            Some(_) => return Err(self.error(format!("unexpected \"{}\"", self.char_at_pos()))),
        }
        self.word(raw, true)
    }

    /// An unquoted word: runs to a blank, `;` or `{` (but not the `{` of
    /// `${`); a backslash carries the next character into the word.
    fn bare(&mut self) -> Result<Arg, ConfError> {
        let start = self.pos;
        let mut after_dollar = false;
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' | b';' => break,
                // nginx keeps the `$` state through `{`, so `${{` stays too.
                b'{' if !after_dollar => break,
                b'{' => {}
                b'\\' => {
                    after_dollar = false;
                    self.bump();
                    if self.peek().is_none() {
                        break;
                    }
                }
                b'$' => after_dollar = true,
                _ => after_dollar = false,
            }
            self.bump();
        }
        self.word(&self.text[start..self.pos], false)
    }

    fn word(&self, raw: &[u8], quoted: bool) -> Result<Arg, ConfError> {
        match String::from_utf8(unescape(raw)) {
            Ok(value) => Ok(Arg { value, quoted }),
            Err(e) => {
                Err(self.error(format!("parameter \"{}\" is not valid UTF-8", String::from_utf8_lossy(e.as_bytes()))))
            }
        }
    }

    /// The character at the current position, for "unexpected" messages.
    fn char_at_pos(&self) -> char {
        let rest = &self.text[self.pos..];
        (1..=rest.len().min(4))
            .find_map(|n| std::str::from_utf8(&rest[..n]).ok())
            .and_then(|s| s.chars().next())
            .unwrap_or(char::REPLACEMENT_CHARACTER)
    }
}

const EOF_IN_STATEMENT: &str = "unexpected end of file, expecting \";\" or \"}\"";

/// Applies the escapes every word gets: `\"`, `\'`, `\\` → the character;
/// `\t`, `\r`, `\n` → the control character; any other pair kept as is.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            let translated = match raw.get(i + 1) {
                Some(&c @ (b'"' | b'\'' | b'\\')) => Some(c),
                Some(b't') => Some(b'\t'),
                Some(b'r') => Some(b'\r'),
                Some(b'n') => Some(b'\n'),
                _ => None,
            };
            if let Some(c) = translated {
                out.push(c);
                i += 2;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------
// The parser.

/// How a statement ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Semicolon,
    Block,
}

/// What the next step of a block produced.
enum Item {
    /// `args... ;` or `args... {`; the line is the first word's.
    Statement(Vec<Arg>, usize, End),
    /// A `}` with no words before it.
    Close,
    /// The end of the file with no words pending.
    Eof,
}

/// Reads the next statement head (or the end of a block or file).
fn next_item(lx: &mut Lexer) -> Result<Item, ConfError> {
    let mut args: Vec<Arg> = Vec::new();
    let mut first_line = 0;
    loop {
        let (token, line) = lx.next()?;
        let end = match token {
            Token::Word(arg) => {
                if args.is_empty() {
                    first_line = line;
                }
                args.push(arg);
                continue;
            }
            Token::Semicolon => End::Semicolon,
            Token::Open => End::Block,
            Token::Close if args.is_empty() => return Ok(Item::Close),
            Token::Close => return Err(lx.error("unexpected \"}\"")),
            Token::Eof if args.is_empty() => return Ok(Item::Eof),
            Token::Eof => return Err(lx.error(EOF_IN_STATEMENT)),
        };
        if args.is_empty() {
            let c = if end == End::Block { '{' } else { ';' };
            return Err(lx.error(format!("unexpected \"{c}\"")));
        }
        return Ok(Item::Statement(args, first_line, end));
    }
}

/// The state shared by every file of one configuration.
struct Reader {
    prefix: PathBuf,
    files: ConfFiles,
    /// Current include nesting.
    includes: usize,
    /// Current block nesting, across files.
    blocks: usize,
}

impl Reader {
    /// Parses one file's text, appending its statements to `out`.
    fn parse_text(&mut self, bytes: &[u8], name: &Path, out: &mut Vec<Statement>) -> Result<(), ConfError> {
        // nginx's -T shows each file once, however often it is included.
        if !self.files.iter().any(|(p, _)| p == name) {
            let text = String::from_utf8_lossy(bytes).into_owned();
            self.files.push((name.to_path_buf(), text));
        }
        let mut lx = Lexer::new(bytes, Arc::from(name));
        self.parse_block(&mut lx, false, out)
    }

    /// Parses statements until the end of the block (`inside`) or file.
    fn parse_block(&mut self, lx: &mut Lexer, inside: bool, out: &mut Vec<Statement>) -> Result<(), ConfError> {
        loop {
            let (mut args, line, end) = match next_item(lx)? {
                Item::Statement(args, line, end) => (args, line, end),
                Item::Close if inside => return Ok(()),
                Item::Close => return Err(lx.error("unexpected \"}\"")),
                Item::Eof if inside => return Err(lx.error("unexpected end of file, expecting \"}\"")),
                Item::Eof => return Ok(()),
            };
            let origin = lx.origin(line);
            let name = args.remove(0).value;
            if name == "include" {
                self.include(&args, end, &origin, out)?;
                continue;
            }
            let block = match end {
                End::Semicolon => None,
                End::Block => Some(self.nested_block(lx, &origin)?),
            };
            out.push(Statement { name, args, block, origin });
        }
    }

    fn nested_block(&mut self, lx: &mut Lexer, origin: &Origin) -> Result<Vec<Statement>, ConfError> {
        if self.blocks >= MAX_BLOCK_DEPTH {
            return Err(ConfError::at(format!("blocks nested deeper than {MAX_BLOCK_DEPTH} levels"), origin));
        }
        self.blocks += 1;
        let mut block = Vec::new();
        let result = self.parse_block(lx, true, &mut block);
        self.blocks -= 1;
        result.map(|()| block)
    }

    /// Expands `include PATTERN;` into `out`.
    fn include(&mut self, args: &[Arg], end: End, at: &Origin, out: &mut Vec<Statement>) -> Result<(), ConfError> {
        if end == End::Block {
            return Err(ConfError::at("directive \"include\" is not terminated by \";\"", at));
        }
        let [pattern] = args else {
            return Err(ConfError::at("invalid number of arguments in \"include\" directive", at));
        };
        if self.includes >= MAX_INCLUDE_DEPTH {
            return Err(ConfError::at(
                format!(
                    "include of \"{}\" nested deeper than {MAX_INCLUDE_DEPTH} levels (does a file include itself?)",
                    pattern.value
                ),
                at,
            ));
        }
        let paths = self.include_paths(&pattern.value, at)?;
        self.includes += 1;
        let result = paths.iter().try_for_each(|path| {
            let bytes = read_conf_file(path).map_err(|m| ConfError::at(m, at))?;
            self.parse_text(&bytes, path, out)
        });
        self.includes -= 1;
        result
    }

    /// The files an include pattern names: the one path, or the sorted glob
    /// matches.
    fn include_paths(&self, pattern: &str, at: &Origin) -> Result<Vec<PathBuf>, ConfError> {
        let is_glob = pattern.contains(['*', '?', '[']);
        if !is_glob {
            return Ok(vec![self.prefix.join(pattern)]);
        }
        // The prefix is a literal path: escape it so that a `[` in a
        // directory name is not read as a class.
        let full = if Path::new(pattern).is_absolute() {
            pattern.to_string()
        } else {
            let prefix = self.prefix.to_string_lossy();
            let sep = if prefix.is_empty() || prefix.ends_with('/') { "" } else { "/" };
            format!("{}{sep}{pattern}", glob::Pattern::escape(&prefix))
        };
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            // As glob(3): `*` does not match hidden files.
            require_literal_leading_dot: true,
        };
        let matches = glob::glob_with(&full, options)
            .map_err(|e| ConfError::at(format!("glob() \"{full}\" failed ({e})"), at))?;
        // Unreadable directories are skipped, as glob(3) does without GLOB_ERR.
        Ok(matches.filter_map(Result::ok).collect())
    }
}

#[cfg(test)]
mod tests;
