//! `REFRESH MATERIALIZED VIEW zone.v`: runs a materialized view's definition again, as a new
//! version of its Delta table. (`CREATE MATERIALIZED VIEW` is a CREATE TABLE … AS that
//! remembers it is one; `DROP MATERIALIZED VIEW` drops the table.)

use datafusion::sql::sqlparser::ast::ObjectName;

use crate::error::{Error, Result};
use crate::session::{Output, Session};
use crate::sql::{Statement, table_reference};

pub(crate) async fn refresh(session: &Session, name: &ObjectName) -> Result<Output> {
    let (zone, name) = session.resolve(&table_reference(name))?;
    let entry = session.catalog().snapshot().table(&zone, &name)?.clone();
    let definition = match (&entry.materialized, &entry.lineage) {
        (Some(_), Some(sql)) => sql.clone(),
        _ => {
            return Err(Error::Unsupported(format!(
                "{} is not a materialized view; REFRESH TABLE reads a table's files again",
                entry.qualified_name()
            )));
        }
    };
    let parsed = crate::sql::parse_one(&definition).ok();
    let Some(Statement::CreateTableAs(mut ctas)) = parsed.map(|p| p.statement) else {
        return Err(Error::Unsupported(format!(
            "the definition of {} no longer parses: {definition}",
            entry.qualified_name()
        )));
    };
    ctas.or_replace = true;
    ctas.if_not_exists = false;
    ctas.materialized = true;
    ctas.name = ObjectName::from(vec![
        datafusion::sql::sqlparser::ast::Ident::with_quote('"', zone),
        datafusion::sql::sqlparser::ast::Ident::with_quote('"', name),
    ]);
    match super::create_table_as::create_table_as(session, ctas, &definition).await? {
        Output::Done(message) => Ok(Output::Done(message.replacen("created", "refreshed", 1))),
        other => Ok(other),
    }
}
