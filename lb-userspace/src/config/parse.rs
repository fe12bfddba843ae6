//! YAML text to [`RawConfig`], with parse errors placed by line and field.
//!
//! # Why serde-saphyr
//!
//! `serde_yaml` is unmaintained (RUSTSEC-2024-0320). Of its maintained
//! successors, `serde_norway` (a drop-in fork) names the field path and line
//! of a parse error (`vips[1].port: invalid value ... at line 6 column 11`)
//! but keeps no positions once parsing succeeds, so a semantic error such
//! as a non-prime table size could not name its line. serde-saphyr gives
//! the line and column of parse errors and, through [`serde_saphyr::Spanned`],
//! of every value it parsed, which validation needs. It does not track the
//! field path itself; `serde_path_to_error` wrapped around its deserializer
//! supplies it. Together they name file, line, column and field for both
//! kinds of error.

use std::fmt::Write;

use serde_path_to_error::Segment;
use serde_saphyr::{Location, MessageFormatter, UserMessageFormatter};

use super::error::Issue;
use super::raw::RawConfig;

/// Parses `text` into the raw schema.
///
/// # Errors
///
/// An [`Issue`] naming the place and field when the text is not YAML or
/// does not fit the schema (unknown key, wrong type, unknown enum value).
pub(super) fn parse(text: &str, origin: &str) -> Result<RawConfig, Issue> {
    let mut path = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|err| {
            path = field_path(err.path());
            err.into_inner()
        })
    });

    parsed.map_err(|err| {
        let at = err.location().unwrap_or(Location::UNKNOWN);
        let message = UserMessageFormatter.format_message(&err).into_owned();
        Issue::new(origin, at, &path, message)
    })
}

/// Renders a serde path as `vips[1].table_size`.
///
/// `Spanned` reads its value as a field named `value`; those segments are
/// dropped. Limitation: a label key that is itself named `value` is
/// dropped too, which only shortens the path of an error inside `labels`.
fn field_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => {
                let _ = write!(out, "[{index}]");
            }
            Segment::Map { key } if key == "value" => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}
