//! The REPL's backslash commands.

use std::path::PathBuf;
use std::str::FromStr;

use crate::print_format::PrintFormat;

/// One backslash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Quit,
    ListZones,
    ListTables(Option<String>),
    Describe(String),
    Lineage(String),
    Timing,
    Format(PrintFormat),
    /// Rows a table shows at most; 0 shows all.
    MaxRows(usize),
    /// The text NULL values show as in tables.
    Null(String),
    /// Expanded display on or off.
    Expanded,
    /// Run the statements of a file.
    Include(PathBuf),
    /// Results to a file, or back to stdout.
    Output(Option<PathBuf>),
    /// Edit the last statement (or the unfinished one) in `$EDITOR`, then run it.
    Edit,
    /// The pager for tall tables on or off; alone, it turns it over.
    Pager(Option<bool>),
}

const COMMANDS: &str = "\
Statements end with ';' and may span lines. Backslash commands:
  \\?              this help
  \\q              quit (or quit, exit, Ctrl-D)
  \\dz             list zones with their root URLs
  \\dt [zone]      list tables, of one zone or all
  \\d zone.table   describe a table: columns, format, location, partitions, lineage
  \\lineage table  the tables it was made from, across zones (SHOW LINEAGE)
  \\timing         turn the elapsed time in the footer on or off
  \\format FORMAT  print results as table, csv, tsv, json or ndjson
  \\maxrows N      rows a table shows at most, its first and last ones (0: all)
  \\null TEXT      how tables show NULL (default NULL)
  \\x              expanded display: a block per row, a line per column
  \\i FILE         run the statements of a file
  \\o [FILE]       results to a file; alone, back to stdout
  \\e              edit the last statement in $EDITOR (else $VISUAL, vi), then run it
  \\pager [on|off] tables taller than the terminal go through $PAGER (else less -FRX)
Ctrl-C cancels the running query. Strata statements besides SQL:";

/// The REPL's help: its commands, then strata's statements as the parser knows them.
pub fn help() -> String {
    let mut text = COMMANDS.to_string();
    for statement in strata_engine::sql::STRATA_STATEMENTS {
        text.push_str("\n  ");
        text.push_str(statement);
    }
    text
}

impl FromStr for Command {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().trim_end_matches(';');
        let mut words = s.split_whitespace();
        let name = words.next().unwrap_or_default();
        // The rest of the line, spaces kept: a file name or NULL text may hold some.
        let rest = s[name.len()..].trim();
        let arg = words.next().map(str::to_string);
        Ok(match (name, arg) {
            ("\\?" | "\\h" | "\\help", _) => Command::Help,
            ("\\q" | "\\quit", _) => Command::Quit,
            ("\\dz", _) => Command::ListZones,
            ("\\dt", zone) => Command::ListTables(zone),
            ("\\d", Some(table)) => Command::Describe(table),
            ("\\d", None) => Command::ListTables(None),
            ("\\lineage", Some(table)) => Command::Lineage(table),
            ("\\lineage", None) => {
                return Err("\\lineage needs a table: \\lineage zone.table".into());
            }
            ("\\timing", _) => Command::Timing,
            ("\\format", Some(f)) => Command::Format(f.parse()?),
            ("\\format", None) => {
                return Err("\\format needs one of: table, csv, tsv, json, ndjson".into());
            }
            ("\\maxrows", Some(n)) => {
                Command::MaxRows(n.parse().map_err(|_| {
                    format!("\\maxrows needs a number of rows (0 for all), not '{n}'")
                })?)
            }
            ("\\maxrows", None) => {
                return Err("\\maxrows needs a number of rows (0 for all)".into());
            }
            ("\\null", Some(_)) => Command::Null(unquote(rest)),
            ("\\null", None) => Command::Null("NULL".into()),
            ("\\x", _) => Command::Expanded,
            ("\\i", Some(_)) => Command::Include(unquote(rest).into()),
            ("\\i", None) => return Err("\\i needs a file: \\i script.sql".into()),
            ("\\o", Some(_)) => Command::Output(Some(unquote(rest).into())),
            ("\\o", None) => Command::Output(None),
            ("\\e" | "\\edit", _) => Command::Edit,
            ("\\pager", None) => Command::Pager(None),
            ("\\pager", Some(on)) => Command::Pager(Some(match on.to_ascii_lowercase().as_str() {
                "on" => true,
                "off" => false,
                _ => return Err(format!("\\pager takes on or off, not '{on}'")),
            })),
            (other, _) => return Err(format!("unknown command '{other}'; \\? lists the commands")),
        })
    }
}

/// A value as typed, without the quotes around it if it has some.
fn unquote(text: &str) -> String {
    for quote in ['\'', '"'] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner.to_string();
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(
            "\\dt raw".parse(),
            Ok(Command::ListTables(Some("raw".into())))
        );
        assert_eq!(
            "\\d raw.sales".parse(),
            Ok(Command::Describe("raw.sales".into()))
        );
        assert_eq!(
            "\\format csv".parse(),
            Ok(Command::Format(PrintFormat::Csv))
        );
        assert!("\\format xml".parse::<Command>().is_err());
        assert!("\\y".parse::<Command>().is_err());
        assert_eq!("\\maxrows 0".parse(), Ok(Command::MaxRows(0)));
        assert!("\\maxrows many".parse::<Command>().is_err());
        assert_eq!("\\null ''".parse(), Ok(Command::Null(String::new())));
        assert_eq!("\\null (none)".parse(), Ok(Command::Null("(none)".into())));
        assert_eq!(
            "\\o my results.txt".parse(),
            Ok(Command::Output(Some("my results.txt".into())))
        );
        assert_eq!("\\o".parse(), Ok(Command::Output(None)));
        assert_eq!("\\x".parse(), Ok(Command::Expanded));
        assert_eq!("\\e".parse(), Ok(Command::Edit));
        assert_eq!("\\pager off".parse(), Ok(Command::Pager(Some(false))));
        assert_eq!("\\pager".parse(), Ok(Command::Pager(None)));
        assert!("\\pager maybe".parse::<Command>().is_err());
    }
}
