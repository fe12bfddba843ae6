//! What a rejected config reports: file, line, column, field and reason.

use std::fmt;
use std::path::PathBuf;

use serde_saphyr::Location;

/// One finding about a config: an error that rejects it, or a warning
/// that lets it through.
///
/// Displays as `FILE:LINE:COLUMN: FIELD: MESSAGE`, for example
/// `configs/x.yaml:12:7: vips[1].table_size: 65536 is not prime`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// The file name, or whatever name the text was given.
    pub origin: String,
    /// 1-based line; 0 when the place is unknown.
    pub line: u64,
    /// 1-based column; 0 when the place is unknown.
    pub column: u64,
    /// Path of the field, as in `pools.web.backends[0].weight`; empty for
    /// the file as a whole.
    pub field: String,
    /// What is wrong, lowercase.
    pub message: String,
}

impl Issue {
    /// An issue at `at` in `origin`.
    pub fn new(origin: &str, at: Location, field: &str, message: impl Into<String>) -> Self {
        Self {
            origin: origin.to_owned(),
            line: at.line(),
            column: at.column(),
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.origin, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a config was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    // The cause is the error's source, printed by `{:#}` after this line.
    #[error("cannot read config {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The text is not valid YAML, does not fit the schema, or fails
    /// validation; one issue per line, sorted by position.
    #[error("{}", display_lines(issues))]
    Invalid {
        /// Every problem found, at least one.
        issues: Vec<Issue>,
    },
}

impl ConfigError {
    /// The issues of an invalid config; empty for a read error.
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { issues } => issues,
        }
    }
}

fn display_lines(issues: &[Issue]) -> String {
    let lines: Vec<String> = issues.iter().map(Issue::to_string).collect();
    lines.join("\n")
}
