//! The REPL's line helper: Tab completes keywords, zones, tables, columns (also after a
//! table's alias: `s.` in `FROM curated.sales s`), function names from the session's
//! registry, and file paths inside quotes and after `\i` and `\o`. Statements spanning
//! lines are gathered by the REPL loop, which shows `…>` while one is unfinished and hands
//! the lines typed so far to the helper, so an alias set on an earlier line counts.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::execution::FunctionRegistry;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};
use strata_engine::Session;
use strata_engine::catalog::TableEntry;

use strata_engine::sql::KEYWORDS;

/// Words after a table that start the next clause rather than name an alias.
const NOT_ALIASES: &[&str] = &[
    "NATURAL",
    "LATERAL",
    "WINDOW",
    "QUALIFY",
    "TABLESAMPLE",
    "FOR",
    "INTERSECT",
    "EXCEPT",
];

/// Completion and multi-line input for the REPL.
pub struct ReplHelper {
    session: Arc<Session>,
    /// The lines of the unfinished statement typed before the current line.
    pending: String,
}

impl ReplHelper {
    pub fn new(session: Arc<Session>) -> Self {
        Self {
            session,
            pending: String::new(),
        }
    }

    /// Sets the lines of the unfinished statement, for the aliases they hold.
    pub fn set_pending(&mut self, pending: &str) {
        self.pending = pending.to_string();
    }

    /// Candidates for a word of names, `statement` being the whole text it is in.
    fn candidates(&self, word: &str, statement: &str) -> Vec<String> {
        let snapshot = self.session.catalog().snapshot();
        let lower = word.to_ascii_lowercase();
        let mut out: Vec<String> = vec![];
        if let Some((qualifier, partial)) = lower.rsplit_once('.') {
            // `zone.` lists the zone's tables.
            if !qualifier.contains('.') {
                for table in snapshot.table_names(qualifier) {
                    if table.starts_with(partial) {
                        out.push(format!("{qualifier}.{table}"));
                    }
                }
            }
            // `alias.`, `table.` and `zone.table.` list the table's columns.
            let typed_qualifier = &word[..qualifier.len()];
            if let Some((zone, table)) = self.tables_named(statement).get(qualifier)
                && let Ok(entry) = snapshot.table(zone, table)
            {
                out.extend(
                    columns(entry)
                        .filter(|c| c.to_ascii_lowercase().starts_with(partial))
                        .map(|c| format!("{typed_qualifier}.{c}")),
                );
            }
            out.sort();
            out.dedup();
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
                out.extend(columns(entry).filter(|c| c.starts_with(&lower)));
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
        // Functions, with the parenthesis that opens their arguments.
        let context = self.session.context();
        out.extend(
            context
                .udfs()
                .into_iter()
                .chain(context.udafs())
                .chain(context.udwfs())
                .filter(|f| f.to_ascii_lowercase().starts_with(&lower))
                .map(|f| format!("{f}(")),
        );
        out.sort();
        out.dedup();
        out
    }

    /// The tables a statement reads, by every name that can qualify their columns in it:
    /// `zone.table`, `table` and the alias. Names are lower case.
    fn tables_named(&self, statement: &str) -> HashMap<String, (String, String)> {
        let snapshot = self.session.catalog().snapshot();
        let current = self.session.current_zone();
        let words = name_words(statement);
        let mut named = HashMap::new();
        for (i, word) in words.iter().enumerate() {
            let word = word.to_ascii_lowercase();
            let (zone, table) = match word.split_once('.') {
                Some((zone, table)) => (zone.to_string(), table.to_string()),
                None => (current.clone(), word.clone()),
            };
            if table.contains('.') || snapshot.table(&zone, &table).is_err() {
                continue;
            }
            let found = (zone.clone(), table.clone());
            named.insert(format!("{zone}.{table}"), found.clone());
            named.entry(table).or_insert_with(|| found.clone());
            let mut next = words.get(i + 1).map(|w| w.to_ascii_lowercase());
            if next.as_deref() == Some("as") {
                next = words.get(i + 2).map(|w| w.to_ascii_lowercase());
            }
            if let Some(alias) = next {
                let upper = alias.to_ascii_uppercase();
                let clause =
                    KEYWORDS.contains(&upper.as_str()) || NOT_ALIASES.contains(&upper.as_str());
                if !clause && !alias.contains('.') {
                    named.insert(alias, found);
                }
            }
        }
        named
    }
}

/// A table's columns as the catalog records them, partition columns included.
fn columns(entry: &TableEntry) -> impl Iterator<Item = String> + '_ {
    entry
        .schema
        .as_ref()
        .and_then(|s| s.get("fields"))
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("name").and_then(|n| n.as_str()))
        .map(str::to_string)
        .chain(entry.partition_columns.iter().map(|p| p.name.clone()))
}

/// The words of a statement, in order, that may name a table or an alias; a string or an
/// operator between them is a `,`, so that it parts names.
fn name_words(text: &str) -> Vec<String> {
    fn flush(word: &mut String, words: &mut Vec<String>) {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    }
    let mut words = vec![];
    let mut chars = text.chars();
    let mut word = String::new();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_alphanumeric() || c == '_' || c == '.' => word.push(c),
            '"' => {
                // A quoted name: kept as written, without its quotes.
                for q in chars.by_ref() {
                    if q == '"' {
                        break;
                    }
                    word.push(q);
                }
            }
            '\'' => {
                flush(&mut word, &mut words);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                }
                words.push(",".into());
            }
            c if c.is_whitespace() => flush(&mut word, &mut words),
            _ => {
                flush(&mut word, &mut words);
                words.push(",".into());
            }
        }
    }
    flush(&mut word, &mut words);
    words
}

/// Where a string literal left open before the cursor starts (after its quote), if any.
fn open_quote(before: &str) -> Option<usize> {
    let mut start = None;
    for (i, c) in before.char_indices() {
        if c == '\'' {
            start = match start {
                Some(_) => None,
                None => Some(i + 1),
            };
        }
    }
    start
}

/// Files and folders whose path starts with `typed`; folders end with `/`.
fn paths(typed: &str) -> Vec<String> {
    // A URL names a store, not a local file.
    if typed.contains("://") {
        return vec![];
    }
    let (folder, partial) = match typed.rfind('/') {
        Some(i) => (&typed[..=i], &typed[i + 1..]),
        None => ("", typed),
    };
    let read = match folder.strip_prefix("~/") {
        Some(rest) => dirs::home_dir().map(|h| h.join(rest)),
        None if folder.is_empty() => Some(PathBuf::from(".")),
        None => Some(PathBuf::from(folder)),
    };
    let Some(Ok(entries)) = read.map(std::fs::read_dir) else {
        return vec![];
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            if !name.starts_with(partial) || (name.starts_with('.') && !partial.starts_with('.')) {
                return None;
            }
            let folder_mark = if e.path().is_dir() { "/" } else { "" };
            Some(format!("{folder}{name}{folder_mark}"))
        })
        .collect();
    out.sort();
    out
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let Some(before) = line.get(..pos) else {
            return Ok((pos, vec![]));
        };
        let pair = |c: String| Pair {
            display: c.clone(),
            replacement: c,
        };
        // Inside quotes, or after `\i` and `\o`: a file path.
        let command_path = ["\\i ", "\\o "]
            .iter()
            .find(|c| before.trim_start().starts_with(**c))
            .map(|c| before.len() - before.trim_start().len() + c.len());
        if let Some(start) = open_quote(before).or(command_path) {
            let pairs = paths(&before[start..]).into_iter().map(pair).collect();
            return Ok((start, pairs));
        }
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        if word.is_empty() {
            return Ok((pos, vec![]));
        }
        let statement = format!("{}\n{line}", self.pending);
        let pairs = self
            .candidates(word, &statement)
            .into_iter()
            .map(pair)
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
    fn validate(&self, _ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(ValidationResult::Valid(None))
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::{name_words, open_quote};

    #[test]
    fn words_of_a_statement_part_names() {
        assert_eq!(
            name_words("SELECT s.a, 'x y' FROM curated.sales AS s JOIN \"Raw\".t t2 ON s.a=1"),
            [
                "SELECT",
                "s.a",
                ",",
                ",",
                "FROM",
                "curated.sales",
                "AS",
                "s",
                "JOIN",
                "Raw.t",
                "t2",
                "ON",
                "s.a",
                ",",
                "1"
            ]
        );
    }

    #[test]
    fn a_quote_left_open_starts_a_path() {
        assert_eq!(open_quote("SELECT * FROM 'data/x"), Some(15));
        assert_eq!(open_quote("SELECT 'a' FROM t"), None);
        assert_eq!(open_quote("SELECT 'it''s"), Some(12));
    }
}
