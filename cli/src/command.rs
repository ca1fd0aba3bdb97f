//! The REPL's backslash commands.

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
}

const COMMANDS: &str = "\
Statements end with ';' and may span lines. Backslash commands:
  \\?              this help
  \\q              quit (or Ctrl-D)
  \\dz             list zones with their root URLs
  \\dt [zone]      list tables, of one zone or all
  \\d zone.table   describe a table: columns, format, location, partitions, lineage
  \\lineage table  the tables it was made from, across zones (SHOW LINEAGE)
  \\timing         turn the elapsed time in the footer on or off
  \\format FORMAT  print results as table, csv, tsv, json or ndjson
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
            (other, _) => return Err(format!("unknown command '{other}'; \\? lists the commands")),
        })
    }
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
        assert!("\\x".parse::<Command>().is_err());
    }
}
