//! Pipelines: a script of statements run in order, with `${name}` variables, stopping at the
//! first failure (naming the statement's line).
//!
//! Write-audit-publish: the `CHECK`s that directly follow a write audit it. When the written
//! table is a Delta table (or a new table), readers keep seeing the version before the write
//! while the checks run on the new one: the catalog entry holds the old version until every
//! check passes, and a failed check rolls the table back (RESTORE, or removing a table that
//! was never published) before the error is reported. An INSERT or INSERT OVERWRITE into a
//! strata-written Parquet table is staged in a folder of its own: the checks read the table
//! as the write will leave it, and the files are swapped in only when they all pass.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use strata_catalog::{Action, TableFormat};

use crate::error::{Error, Result};
use crate::session::{Output, Session};
use crate::sql::split::{StatementText, split_statements};
use crate::sql::{Parsed, Statement};

/// What a pipeline reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// A statement is about to run.
    Started {
        step: usize,
        steps: usize,
        line: usize,
        sql: &'a str,
    },
    /// A statement finished: its message (or rows written, or rows returned).
    Finished {
        step: usize,
        line: usize,
        summary: String,
        elapsed: Duration,
    },
    /// Something the user should know that is not an error.
    Warning(String),
}

/// A failed pipeline: where, and why.
#[derive(Debug)]
pub struct PipelineError {
    pub line: usize,
    pub statement: String,
    pub error: Box<Error>,
}

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: {}\n  {}",
            self.line,
            one_line(&self.statement, 100),
            self.error
        )
    }
}

impl std::error::Error for PipelineError {}

fn one_line(sql: &str, max: usize) -> String {
    let s = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

/// Replaces `${name}` with the variables' values; an unknown name is an error naming its
/// line.
pub fn substitute(
    text: &str,
    vars: &BTreeMap<String, String>,
) -> std::result::Result<String, PipelineError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = after[..end].trim();
        match vars.get(name) {
            Some(value) => out.push_str(value),
            None => {
                let offset = text.len() - rest.len() + start;
                let line = text[..offset].matches('\n').count() + 1;
                let statement = text.lines().nth(line - 1).unwrap_or_default().to_string();
                let known = if vars.is_empty() {
                    "none are set".to_string()
                } else {
                    format!(
                        "set: {}",
                        vars.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                };
                return Err(PipelineError {
                    line,
                    statement,
                    error: Box::new(Error::Unsupported(format!(
                        "unknown variable ${{{name}}} ({known}); pass it with --var {name}=value"
                    ))),
                });
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Runs a pipeline's text (variables already substituted). Returns the number of
/// statements run.
pub async fn run(
    session: &Session,
    text: &str,
    mut on_event: impl FnMut(Event<'_>),
) -> std::result::Result<usize, PipelineError> {
    // Each statement is parsed once, here; one that does not parse fails when its turn
    // comes, after the statements before it have run.
    let statements: Vec<Step> = split_statements(text)
        .into_iter()
        .map(|text| Step {
            parsed: crate::sql::parse_one(&text.sql).ok(),
            text,
        })
        .collect();
    let steps = statements.len();
    let mut i = 0;
    while i < steps {
        let write = &statements[i];
        let mut j = i + 1;
        while j < steps
            && statements[j]
                .parsed
                .as_ref()
                .is_some_and(|p| matches!(p.statement, Statement::Check(_)))
        {
            j += 1;
        }
        let checks = &statements[i + 1..j];
        let target = if checks.is_empty() {
            None
        } else {
            write
                .parsed
                .as_ref()
                .and_then(|p| write_target(session, &p.statement))
        };
        match target {
            Some(target) => {
                audited(session, i, steps, write, &target, checks, &mut on_event).await?;
                i = j;
            }
            None => {
                step(session, i, steps, write, &mut on_event).await?;
                i += 1;
            }
        }
    }
    Ok(steps)
}

/// One statement of a pipeline: its text, and what it parsed into.
struct Step {
    text: StatementText,
    parsed: Option<Parsed>,
}

async fn step(
    session: &Session,
    index: usize,
    steps: usize,
    step: &Step,
    on_event: &mut impl FnMut(Event<'_>),
) -> std::result::Result<(), PipelineError> {
    let statement = &step.text;
    on_event(Event::Started {
        step: index + 1,
        steps,
        line: statement.line,
        sql: &statement.sql,
    });
    let start = Instant::now();
    let summary = execute(session, step)
        .await
        .map_err(|error| PipelineError {
            line: statement.line,
            statement: statement.sql.clone(),
            error: Box::new(error),
        })?;
    on_event(Event::Finished {
        step: index + 1,
        line: statement.line,
        summary,
        elapsed: start.elapsed(),
    });
    Ok(())
}

/// Runs one statement to the end and says what it did.
async fn execute(session: &Session, step: &Step) -> Result<String> {
    let output = match &step.parsed {
        Some(parsed) => session.run(parsed.clone()).await?,
        // Parsed again for its syntax error.
        None => session.execute(&step.text.sql).await?,
    };
    match output {
        Output::Done(message) => Ok(message),
        Output::Rows(stream) => {
            let schema = stream.schema();
            let batches: Vec<arrow::array::RecordBatch> = stream.try_collect().await?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            // Writes answer with one `count` row: the rows they wrote.
            if schema.fields().len() == 1 && schema.field(0).name() == "count" && rows == 1 {
                let n = batches
                    .iter()
                    .find(|b| b.num_rows() > 0)
                    .and_then(|b| {
                        arrow::util::display::ArrayFormatter::try_new(
                            b.column(0).as_ref(),
                            &Default::default(),
                        )
                        .ok()
                        .map(|f| f.value(0).to_string())
                    })
                    .unwrap_or_default();
                return Ok(format!("{n} rows written"));
            }
            if schema.fields().len() == 3 && schema.field(0).name() == "check" {
                return Ok("passed".into());
            }
            Ok(format!("{rows} row{}", if rows == 1 { "" } else { "s" }))
        }
    }
}

/// A write and the checks after it, published only when they all pass.
async fn audited(
    session: &Session,
    index: usize,
    steps: usize,
    write: &Step,
    (zone, name): &(String, String),
    checks: &[Step],
    on_event: &mut impl FnMut(Event<'_>),
) -> std::result::Result<(), PipelineError> {
    let fail = |statement: &Step, error: Error| PipelineError {
        line: statement.text.line,
        statement: statement.text.sql.clone(),
        error: Box::new(error),
    };
    let existing = session.catalog().snapshot().table(zone, name).ok().cloned();
    let held = match &existing {
        Some(e) if e.format == TableFormat::Delta => {
            let table = session.latest_delta(e).await.map_err(|e| fail(write, e))?;
            Some(table.version().map_or(-1, |v| v as i64))
        }
        // Writes to a Parquet table are staged until the checks pass.
        Some(e) if e.format == TableFormat::Parquet => None,
        Some(e) => {
            on_event(Event::Warning(format!(
                "{} is a {} table: its checks run after the write is visible (writes to Delta and Parquet tables are checked before readers see them)",
                e.qualified_name(),
                e.format
            )));
            None
        }
        None => None,
    };
    if let Some(version) = held {
        set_hold(session, zone, name, Some(version))
            .await
            .map_err(|e| fail(write, e))?;
    }
    session.set_auditing(zone, name, true);
    let mut outcome = step(session, index, steps, write, on_event).await;
    if outcome.is_ok() {
        for (k, check) in checks.iter().enumerate() {
            outcome = step(session, index + 1 + k, steps, check, on_event).await;
            if outcome.is_err() {
                break;
            }
        }
    }
    let staged = session.take_staged(zone, name);
    session.set_auditing(zone, name, false);
    let published = session.catalog().snapshot().table(zone, name).ok().cloned();
    match outcome {
        Ok(()) => {
            if let Some(staged) = staged {
                staged
                    .publish(session.catalog())
                    .await
                    .map_err(|e| fail(write, e))?;
                session.stores().invalidate_listings();
            }
            if published.is_some_and(|e| e.held_version.is_some()) {
                set_hold(session, zone, name, None)
                    .await
                    .map_err(|e| fail(write, e))?;
            }
            Ok(())
        }
        Err(failure) => {
            if let Some(staged) = staged {
                staged.discard().await;
            }
            // Roll back, so that what readers see after the hold is what they saw before.
            let rollback = async {
                match (held, published) {
                    (Some(version), Some(now)) if version >= 0 => {
                        let latest = session
                            .latest_delta(&now)
                            .await?
                            .version()
                            .map_or(-1, |v| v as i64);
                        if latest > version {
                            session
                                .sql(&format!(
                                    "RESTORE TABLE {zone}.{name} TO VERSION AS OF {version}"
                                ))
                                .await?;
                        }
                        set_hold(session, zone, name, None).await
                    }
                    (_, Some(now)) if existing.is_none() => unpublish(session, &now).await,
                    (Some(_), Some(_)) => set_hold(session, zone, name, None).await,
                    _ => Ok(()),
                }
            };
            if let Err(e) = rollback.await {
                on_event(Event::Warning(format!(
                    "could not roll back {zone}.{name} after the failed check: {e}"
                )));
            }
            Err(failure)
        }
    }
}

/// `RELEASE HOLD zone.t`: ends the hold a `strata run` that died while auditing a write
/// left on a table, the way a failed check would: the unchecked write is undone (a Delta
/// table is restored to the version readers were held at; a table the write created is
/// removed) and readers read the table again. Run it only when that pipeline is no longer
/// running. Parquet writes under audit stay staged until their checks pass, so a dead
/// pipeline leaves them no hold, only a staging folder, which the next write removes.
pub(crate) async fn release_hold(
    session: &Session,
    zone: &str,
    name: &str,
) -> Result<crate::session::Output> {
    use crate::session::Output;
    let entry = session
        .catalog()
        .refresh()
        .await?
        .table(zone, name)?
        .clone();
    let qualified = entry.qualified_name();
    match entry.held_version {
        None => Ok(Output::Done(format!("{qualified} has no hold"))),
        Some(v) if v < 0 => {
            unpublish(session, &entry).await?;
            Ok(Output::Done(format!(
                "removed {qualified}: it was created under audit and never published"
            )))
        }
        Some(version) => {
            let latest = session
                .latest_delta(&entry)
                .await?
                .version()
                .map_or(-1, |v| v as i64);
            if latest > version {
                session
                    .sql(&format!(
                        "RESTORE TABLE {qualified} TO VERSION AS OF {version}"
                    ))
                    .await?;
            }
            set_hold(session, zone, name, None).await?;
            Ok(Output::Done(format!(
                "released the hold on {qualified}: readers read version {version} again, as before the unchecked write"
            )))
        }
    }
}

/// Sets or clears the version readers are held at.
async fn set_hold(session: &Session, zone: &str, name: &str, hold: Option<i64>) -> Result<()> {
    let operation = match hold {
        Some(v) => format!("HOLD {zone}.{name} AT VERSION {v}"),
        None => format!("PUBLISH {zone}.{name}"),
    };
    session
        .catalog()
        .commit(&operation, |state| {
            let mut entry = state.table(zone, name)?.clone();
            if entry.held_version == hold {
                return Ok(vec![]);
            }
            entry.held_version = hold;
            Ok(vec![Action::PutTable(Box::new(entry))])
        })
        .await?;
    Ok(())
}

/// Removes a table that was written under audit and never published: its entry and files.
async fn unpublish(session: &Session, entry: &strata_catalog::TableEntry) -> Result<()> {
    let zone = entry.zone.clone();
    let name = entry.name.clone();
    session
        .catalog()
        .commit(&format!("DROP UNPUBLISHED {zone}.{name}"), |state| {
            Ok(match state.table(&zone, &name) {
                Ok(_) => vec![Action::DropTable {
                    zone: zone.clone(),
                    name: name.clone(),
                }],
                Err(_) => vec![],
            })
        })
        .await?;
    let url = url::Url::parse(&entry.location)
        .map_err(|e| Error::Unsupported(format!("bad location {}: {e}", entry.location)))?;
    let store = session.store_for(&url)?;
    let prefix = crate::providers::stores::url_path(&url)?;
    let files: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::DataFusion(e.into()))?;
    for f in files {
        store
            .delete(&f.location)
            .await
            .map_err(|e| Error::DataFusion(e.into()))?;
    }
    Ok(())
}

/// The zone and name of the table a write statement writes.
fn write_target(session: &Session, statement: &Statement) -> Option<(String, String)> {
    let name = statement.write_target()?;
    session.resolve(&crate::sql::table_reference(&name)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_substituted_or_named() {
        let vars = BTreeMap::from([("day".to_string(), "2024-03-01".to_string())]);
        assert_eq!(
            substitute("SELECT '${day}';", &vars).expect("substituted"),
            "SELECT '2024-03-01';"
        );
        let e = substitute("SELECT 1;\nSELECT ${month};", &vars).expect_err("unknown");
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("--var month=value"), "{e}");
    }

    /// A hold a dead pipeline left: readers are held at the version before an unchecked
    /// write; RELEASE HOLD undoes that write and lets readers go.
    #[tokio::test]
    async fn release_hold_undoes_the_unchecked_write() {
        let (_dir, session) = crate::test_support::scratch_session().await;
        async fn count(session: &Session) -> String {
            crate::test_support::pretty(
                &session
                    .sql("SELECT count(*) AS n FROM curated.h")
                    .await
                    .expect("count"),
            )
        }
        session
            .sql("CREATE TABLE curated.h AS SELECT value AS id FROM generate_series(1, 10)")
            .await
            .expect("create");
        set_hold(&session, "curated", "h", Some(0))
            .await
            .expect("hold");
        session
            .sql("INSERT INTO curated.h SELECT value AS id FROM generate_series(11, 15)")
            .await
            .expect("unchecked write");
        assert!(count(&session).await.contains("| 10 |"));
        let out = session
            .execute("RELEASE HOLD curated.h")
            .await
            .expect("release");
        let crate::session::Output::Done(message) = out else {
            panic!("no message");
        };
        assert!(
            message.contains("released the hold on curated.h"),
            "{message}"
        );
        assert!(count(&session).await.contains("| 10 |"));
        let entry = session
            .catalog()
            .snapshot()
            .table("curated", "h")
            .expect("entry")
            .clone();
        assert_eq!(entry.held_version, None);
        // Writes go on from there.
        session
            .sql("INSERT INTO curated.h SELECT value AS id FROM generate_series(11, 12)")
            .await
            .expect("write");
        assert!(count(&session).await.contains("| 12 |"));
        let out = session
            .execute("RELEASE HOLD curated.h")
            .await
            .expect("no hold");
        assert!(matches!(out, crate::session::Output::Done(m) if m.contains("has no hold")));
    }

    #[test]
    fn one_line_shortens() {
        assert_eq!(one_line("a\n  b", 10), "a b");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
