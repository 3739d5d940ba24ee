//! placeholder: the configuration parser (being written).
use std::path::Path;

use super::{ConfError, ConfFiles, Statement};

/// A parsed configuration: the statements of the main file with includes
/// expanded, and the text of every file read.
#[derive(Debug, Default)]
pub struct ConfText {
    /// Top-level statements.
    pub statements: Vec<Statement>,
    /// Every file read, in order (for `-T`).
    pub files: ConfFiles,
}

/// Parses a file; `include` paths that are relative resolve against `prefix`.
pub fn parse_file(path: &Path, prefix: &Path) -> Result<ConfText, ConfError> {
    let _ = (path, prefix);
    Err(ConfError::new("parser not written yet"))
}

/// Parses text as if it were the file `name`.
pub fn parse_str(text: &str, name: &Path, prefix: &Path) -> Result<ConfText, ConfError> {
    let _ = (text, name, prefix);
    Err(ConfError::new("parser not written yet"))
}
