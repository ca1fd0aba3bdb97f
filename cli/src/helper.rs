//! The REPL's line helper: a statement continues until `;`, and Tab completes keywords,
//! zones, tables and columns from the catalog.

use std::borrow::Cow;
use std::sync::Arc;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};
use strata_engine::catalog::Catalog;

use strata_engine::sql::KEYWORDS;

/// Completion and multi-line input for the REPL.
pub struct ReplHelper {
    catalog: Arc<Catalog>,
}

impl ReplHelper {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog }
    }

    fn candidates(&self, word: &str) -> Vec<String> {
        let snapshot = self.catalog.snapshot();
        let lower = word.to_ascii_lowercase();
        let mut out: Vec<String> = vec![];
        if let Some((zone, partial)) = lower.split_once('.') {
            for table in snapshot.table_names(zone) {
                if table.starts_with(partial) {
                    out.push(format!("{zone}.{table}"));
                }
            }
            return out;
        }
        for zone in snapshot.zone_names() {
            if zone.starts_with(&lower) {
                out.push(zone.clone());
            }
            for (name, entry) in snapshot.tables.get(&zone).into_iter().flatten() {
                if name.starts_with(&lower) {
                    out.push(name.clone());
                }
                let columns = entry
                    .schema
                    .as_ref()
                    .and_then(|s| s.get("fields"))
                    .and_then(|f| f.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.get("name").and_then(|n| n.as_str()))
                    .map(str::to_string)
                    .chain(entry.partition_columns.iter().map(|p| p.name.clone()));
                out.extend(columns.filter(|c| c.starts_with(&lower)));
            }
        }
        let upper = word.to_ascii_uppercase();
        let lower_case_input = word.chars().any(|c| c.is_ascii_lowercase());
        out.extend(KEYWORDS.iter().filter(|k| k.starts_with(&upper)).map(|k| {
            if lower_case_input {
                k.to_ascii_lowercase()
            } else {
                k.to_string()
            }
        }));
        out.sort();
        out.dedup();
        out
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        if word.is_empty() {
            return Ok((pos, vec![]));
        }
        let pairs = self
            .candidates(word)
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        if strata_engine::sql::split::is_complete(ctx.input()) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Helper for ReplHelper {}
