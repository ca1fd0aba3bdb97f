//! The statements strata runs: DataFusion's, and strata's own on top.

use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    self, Ident, ObjectName, Query, SetExpr, Statement as SqlStatement,
};

/// One statement of strata's SQL.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Statement {
    /// A statement DataFusion plans: queries, EXPLAIN, CREATE EXTERNAL TABLE, CREATE VIEW,
    /// COPY, SET, SHOW, DESCRIBE, DROP TABLE.
    DataFusion(Box<DFStatement>),
    /// `CREATE [OR REPLACE] TABLE … [STORED AS f] [PARTITIONED BY (…)] AS query`, and
    /// `CREATE MATERIALIZED VIEW … AS query`.
    CreateTableAs(CreateTableAs),
    /// `INSERT INTO | INSERT OVERWRITE [TABLE] t …`.
    Insert(Box<ast::Insert>),
    /// `UPDATE t SET … [WHERE …]` (Delta tables).
    Update(Box<ast::Update>),
    /// `DELETE FROM t [WHERE …]` (Delta tables).
    Delete(Box<ast::Delete>),
    /// `MERGE INTO t USING s ON … WHEN …` (Delta tables).
    Merge(Box<ast::Merge>),
    /// `CHECK 'name' EXPECT expression`: a data-quality check.
    Check(Check),
    /// `OPTIMIZE t [WHERE p = v [AND …]] [ZORDER BY (cols)]` (Delta tables).
    Optimize(Optimize),
    /// `VACUUM t [RETAIN n HOURS] [DRY RUN] [FORCE]` (Delta tables).
    Vacuum(Vacuum),
    /// `RESTORE TABLE t TO VERSION AS OF n | TIMESTAMP AS OF 'ts'` (Delta tables).
    Restore(Restore),
    /// `DESCRIBE HISTORY t`: a Delta table's versions.
    DescribeHistory(ObjectName),
    /// `SHOW ZONES`.
    ShowZones,
    /// `SHOW LINEAGE t`: what a table was made from, recursively.
    ShowLineage(ObjectName),
    /// `REFRESH ZONE z`: registers the folders of a zone root as tables.
    RefreshZone(Ident),
    /// `REFRESH TABLE t`: reads a table's files (and schema) again.
    RefreshTable(ObjectName),
    /// `REFRESH MATERIALIZED VIEW v`: runs its definition again.
    RefreshMaterializedView(ObjectName),
    /// `DROP MATERIALIZED VIEW [IF EXISTS] v`.
    DropMaterializedView { name: ObjectName, if_exists: bool },
    /// `USE [ZONE] z`: where unqualified names resolve.
    Use(Ident),
    /// `RELEASE HOLD t`: ends the hold a pipeline that died under audit left on a table.
    ReleaseHold(ObjectName),
    /// `SUMMARIZE t` or `SUMMARIZE SELECT …`: figures for each column (as the query
    /// `SELECT * FROM t` for a table).
    Summarize(Box<Query>),
}

/// A parsed `CREATE TABLE … AS` or `CREATE MATERIALIZED VIEW … AS`.
#[derive(Debug, Clone)]
pub struct CreateTableAs {
    pub or_replace: bool,
    pub if_not_exists: bool,
    pub name: ObjectName,
    /// `STORED AS`, upper-cased.
    pub format: Option<String>,
    /// `PARTITIONED BY`, as SQL resolves the names.
    pub partition_by: Vec<String>,
    /// The query after `AS`; for `CREATE TABLE t (col type, …)`, an empty query with those
    /// columns.
    pub query: Box<Query>,
    /// `CREATE MATERIALIZED VIEW`: a Delta table that remembers its definition.
    pub materialized: bool,
}

/// A parsed data-quality check.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    /// The query whose value is checked, when the expression starts with one.
    pub subject: Option<Box<Query>>,
    /// What must hold, as written: of the subject (`= 0`, `BETWEEN 1 AND 9`), or the whole
    /// expression.
    pub expectation: String,
}

/// A parsed `OPTIMIZE`.
#[derive(Debug, Clone)]
pub struct Optimize {
    pub table: ObjectName,
    /// `WHERE column = value` on partition columns.
    pub filters: Vec<(String, String)>,
    pub zorder: Vec<String>,
}

/// A parsed `VACUUM`.
#[derive(Debug, Clone)]
pub struct Vacuum {
    pub table: ObjectName,
    pub retain_hours: Option<i64>,
    pub dry_run: bool,
    pub force: bool,
}

/// A parsed `RESTORE TABLE`.
#[derive(Debug, Clone)]
pub struct Restore {
    pub table: ObjectName,
    pub to: AsOfClause,
}

/// The version a `… AS OF` clause names, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsOfClause {
    Version(u64),
    Timestamp(String),
}

/// What running a statement does, for front ends that must tell reads from writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A query DataFusion plans and streams.
    Query,
    /// Reads only, but strata runs it itself and its result is small (SHOW ZONES, DESCRIBE
    /// HISTORY, SHOW LINEAGE, CHECK, EXPLAIN ANALYZE of a query).
    Read,
    /// Changes tables, files or the catalog.
    Write,
    /// Changes the session: USE, SET, RESET.
    Session,
}

impl Effect {
    /// Whether a statement with this effect only reads.
    pub fn reads_only(self) -> bool {
        matches!(self, Effect::Query | Effect::Read)
    }
}

impl Statement {
    /// Sorts DataFusion's statement into strata's: writes and DML get variants of their own.
    pub(crate) fn from_datafusion(statement: DFStatement) -> Self {
        match statement {
            DFStatement::Statement(s) => match *s {
                SqlStatement::Insert(i) => Statement::Insert(Box::new(i)),
                SqlStatement::Update(u) => Statement::Update(Box::new(u)),
                SqlStatement::Delete(d) => Statement::Delete(Box::new(d)),
                SqlStatement::Merge(m) => Statement::Merge(Box::new(m)),
                other => Statement::DataFusion(Box::new(DFStatement::Statement(Box::new(other)))),
            },
            other => Statement::DataFusion(Box::new(other)),
        }
    }

    /// The statement as DataFusion's, for the statements DataFusion plans (and the DML it
    /// parses, which strata runs itself for Delta tables).
    pub fn to_datafusion(&self) -> Option<DFStatement> {
        let sql = |s: SqlStatement| Some(DFStatement::Statement(Box::new(s)));
        match self {
            Statement::DataFusion(s) => Some((**s).clone()),
            Statement::Insert(i) => sql(SqlStatement::Insert((**i).clone())),
            Statement::Update(u) => sql(SqlStatement::Update((**u).clone())),
            Statement::Delete(d) => sql(SqlStatement::Delete((**d).clone())),
            Statement::Merge(m) => sql(SqlStatement::Merge((**m).clone())),
            _ => None,
        }
    }

    /// What running it does.
    pub fn effect(&self) -> Effect {
        match self {
            Statement::DataFusion(s) => effect_of(s),
            Statement::ShowZones
            | Statement::ShowLineage(_)
            | Statement::DescribeHistory(_)
            | Statement::Summarize(_)
            | Statement::Check(_) => Effect::Read,
            Statement::Use(_) => Effect::Session,
            Statement::CreateTableAs(_)
            | Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::Merge(_)
            | Statement::Optimize(_)
            | Statement::Vacuum(_)
            | Statement::Restore(_)
            | Statement::RefreshZone(_)
            | Statement::RefreshTable(_)
            | Statement::RefreshMaterializedView(_)
            | Statement::DropMaterializedView { .. }
            | Statement::ReleaseHold(_) => Effect::Write,
        }
    }

    /// The table a write writes, as named: CREATE TABLE/MATERIALIZED VIEW … AS, INSERT,
    /// UPDATE, DELETE, MERGE and REFRESH MATERIALIZED VIEW.
    pub fn write_target(&self) -> Option<ObjectName> {
        match self {
            Statement::CreateTableAs(c) => Some(c.name.clone()),
            Statement::Insert(i) => match &i.table {
                ast::TableObject::TableName(name) => Some(name.clone()),
                ast::TableObject::TableFunction(_) | ast::TableObject::TableQuery(_) => None,
            },
            Statement::Update(u) => match &u.table.relation {
                ast::TableFactor::Table { name, .. } => Some(name.clone()),
                _ => None,
            },
            Statement::Delete(d) => {
                let tables = match &d.from {
                    ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
                };
                match tables.first().map(|t| &t.relation) {
                    Some(ast::TableFactor::Table { name, .. }) => Some(name.clone()),
                    _ => None,
                }
            }
            Statement::Merge(m) => match &m.table {
                ast::TableFactor::Table { name, .. } => Some(name.clone()),
                _ => None,
            },
            Statement::RefreshMaterializedView(name) => Some(name.clone()),
            _ => None,
        }
    }

    /// The statement's keyword(s), for messages: `SELECT`, `CREATE TABLE`, `OPTIMIZE`.
    pub fn keyword(&self) -> &'static str {
        match self {
            Statement::DataFusion(_) => "SQL",
            Statement::CreateTableAs(c) if c.materialized => "CREATE MATERIALIZED VIEW",
            Statement::CreateTableAs(_) => "CREATE TABLE",
            Statement::Insert(_) => "INSERT",
            Statement::Update(_) => "UPDATE",
            Statement::Delete(_) => "DELETE",
            Statement::Merge(_) => "MERGE",
            Statement::Check(_) => "CHECK",
            Statement::Optimize(_) => "OPTIMIZE",
            Statement::Vacuum(_) => "VACUUM",
            Statement::Restore(_) => "RESTORE",
            Statement::DescribeHistory(_) => "DESCRIBE HISTORY",
            Statement::ShowZones => "SHOW ZONES",
            Statement::ShowLineage(_) => "SHOW LINEAGE",
            Statement::RefreshZone(_) => "REFRESH ZONE",
            Statement::RefreshTable(_) => "REFRESH TABLE",
            Statement::RefreshMaterializedView(_) => "REFRESH MATERIALIZED VIEW",
            Statement::DropMaterializedView { .. } => "DROP MATERIALIZED VIEW",
            Statement::Use(_) => "USE",
            Statement::ReleaseHold(_) => "RELEASE HOLD",
            Statement::Summarize(_) => "SUMMARIZE",
        }
    }
}

/// What running a DataFusion statement does.
pub(crate) fn effect_of(statement: &DFStatement) -> Effect {
    match statement {
        DFStatement::Statement(s) => effect_of_sql(s),
        DFStatement::Explain(explain) => {
            explained(explain.options.analyze, effect_of(&explain.statement))
        }
        DFStatement::Reset(_) => Effect::Session,
        DFStatement::CreateExternalTable(_) | DFStatement::CopyTo(_) => Effect::Write,
    }
}

/// EXPLAIN only plans; EXPLAIN ANALYZE runs what it explains.
fn explained(analyze: bool, inner: Effect) -> Effect {
    match (analyze, inner) {
        (false, _) => Effect::Query,
        (true, Effect::Query) => Effect::Read,
        (true, _) => Effect::Write,
    }
}

fn effect_of_sql(statement: &SqlStatement) -> Effect {
    match statement {
        SqlStatement::Query(query) => match query.body.as_ref() {
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                Effect::Write
            }
            _ => Effect::Query,
        },
        SqlStatement::Explain {
            analyze, statement, ..
        } => explained(*analyze, effect_of_sql(statement)),
        SqlStatement::ExplainTable { .. }
        | SqlStatement::ShowTables { .. }
        | SqlStatement::ShowColumns { .. }
        | SqlStatement::ShowVariable { .. }
        | SqlStatement::ShowFunctions { .. }
        | SqlStatement::ShowCreate { .. } => Effect::Query,
        SqlStatement::Use(_) | SqlStatement::Set(_) => Effect::Session,
        _ => Effect::Write,
    }
}
