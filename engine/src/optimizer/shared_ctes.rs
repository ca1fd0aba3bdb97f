//! Common table expressions used more than once are computed once.
//!
//! DataFusion plans a CTE by inlining its query wherever the CTE is named, so a CTE read twice
//! (an aggregate the query reads as rows and again for their maximum, say) is scanned,
//! filtered and aggregated twice. Before a query is planned, strata runs each CTE of its
//! top-level `WITH` that is named more than once (with the CTEs before it that it may read),
//! keeps the rows in memory, and plans the query over them: the same rows, computed once.
//!
//! - `AS MATERIALIZED` computes a CTE once even if it is named once; `AS NOT MATERIALIZED`
//!   keeps it inlined (where the SQL dialect accepts these).
//! - A CTE whose rows outgrow [`MAX_SHARED_BYTES`] is left inlined, and the rows computed so
//!   far are dropped: holding them would cost more memory than recomputing them costs time.
//! - `WITH RECURSIVE`, CTEs of nested queries and names a nested `WITH` defines again are
//!   left to DataFusion.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider,
};
use datafusion::datasource::MemTable;
use datafusion::execution::context::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    Cte, CteAsMaterialized, Ident, ObjectName, ObjectNamePart, Query, Statement, TableAlias,
    TableFactor, Visit, VisitMut, Visitor, VisitorMut, With,
};
use futures::TryStreamExt;

use crate::error::Result;

/// The catalog the computed CTEs are registered in while their query is planned.
const CATALOG: &str = "strata_shared_cte";
const SCHEMA: &str = "q";

/// A CTE whose rows take more memory than this is computed where it is named instead.
pub const MAX_SHARED_BYTES: usize = 256 * 1024 * 1024;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The tables registered for one query; dropped from the catalog once the query is planned
/// (the plan holds the rows).
pub(crate) struct Registered {
    schema: Option<Arc<dyn SchemaProvider>>,
    names: Vec<String>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(schema) = &self.schema {
            for name in &self.names {
                let _ = schema.deregister_table(name);
            }
        }
    }
}

/// Computes the shared CTEs of `statement`'s top-level `WITH` and rewrites the statement to
/// read them. The returned guard must live until the statement is planned.
pub(crate) async fn compute_shared(
    ctx: &SessionContext,
    statement: &mut DFStatement,
) -> Result<Registered> {
    let mut registered = Registered {
        schema: None,
        names: vec![],
    };
    let DFStatement::Statement(statement) = statement else {
        return Ok(registered);
    };
    let Statement::Query(query) = statement.as_mut() else {
        return Ok(registered);
    };
    let Some(with) = &query.with else {
        return Ok(registered);
    };
    if with.recursive {
        return Ok(registered);
    }
    let mut i = 0;
    while let Some(cte) = query
        .with
        .as_ref()
        .and_then(|w| w.cte_tables.get(i))
        .cloned()
    {
        let name = normalized(&cte.alias.name);
        let uses = Uses::after(query, i, &name);
        let wanted = match cte.materialized {
            Some(CteAsMaterialized::Materialized) => true,
            Some(CteAsMaterialized::NotMaterialized) => false,
            None => uses.references > 1,
        };
        // A name defined again further in is another table there: leave it to DataFusion.
        if !wanted || uses.definitions > 0 {
            i += 1;
            continue;
        }
        let earlier = query
            .with
            .as_ref()
            .map(|w| w.cte_tables[..i].to_vec())
            .unwrap_or_default();
        let Some((table_schema, batches)) = run(ctx, standalone(&cte, earlier)).await? else {
            i += 1;
            continue;
        };
        let (table_schema, batches) = rename_columns(table_schema, batches, &cte)?;
        let table = format!("cte_{}_{name}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let schema = match &registered.schema {
            Some(s) => Arc::clone(s),
            None => {
                let s = shared_schema(ctx)?;
                registered.schema = Some(Arc::clone(&s));
                s
            }
        };
        let mem = MemTable::try_new(table_schema, vec![batches])?;
        schema.register_table(table.clone(), Arc::new(mem))?;
        registered.names.push(table.clone());
        let mut rewrite = Rewrite {
            name: &name,
            table: &table,
            alias: &cte.alias.name,
        };
        // Only the CTEs after this one and the query itself see it; an earlier CTE naming
        // a table of the same name means that table.
        let mut with = query
            .with
            .take()
            .unwrap_or_else(|| unreachable!("checked above"));
        with.cte_tables.remove(i);
        for later in &mut with.cte_tables[i..] {
            let _ = VisitMut::visit(later.query.as_mut(), &mut rewrite);
        }
        let _ = VisitMut::visit(query.as_mut(), &mut rewrite);
        if !with.cte_tables.is_empty() {
            query.with = Some(with);
        }
    }
    Ok(registered)
}

/// The CTE's query on its own, with the CTEs before it that it may read.
fn standalone(cte: &Cte, earlier: Vec<Cte>) -> Query {
    let mut query = (*cte.query).clone();
    if !earlier.is_empty() {
        let mut ctes = earlier;
        if let Some(own) = query.with.take() {
            ctes.extend(own.cte_tables);
        }
        query.with = Some(With {
            with_token: AttachedToken::empty(),
            recursive: false,
            cte_tables: ctes,
        });
    }
    query
}

/// Runs a query and keeps its schema and rows, unless the rows outgrow [`MAX_SHARED_BYTES`].
async fn run(ctx: &SessionContext, query: Query) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>> {
    let state = ctx.state();
    let plan = crate::sql::retype_literals(
        state
            .statement_to_plan(DFStatement::Statement(Box::new(Statement::Query(
                Box::new(query),
            ))))
            .await?,
    )?;
    let mut stream = ctx
        .execute_logical_plan(plan)
        .await?
        .execute_stream()
        .await?;
    let schema = stream.schema();
    let mut batches = vec![];
    let mut bytes = 0;
    while let Some(batch) = stream.try_next().await? {
        bytes += batch.get_array_memory_size();
        if bytes > MAX_SHARED_BYTES {
            return Ok(None);
        }
        batches.push(batch);
    }
    Ok(Some((schema, batches)))
}

/// `WITH t (a, b) AS (…)` names the columns: the rows get those names.
fn rename_columns(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    cte: &Cte,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    if cte.alias.columns.is_empty() {
        return Ok((schema, batches));
    }
    if schema.fields().len() != cte.alias.columns.len() {
        return Err(crate::error::Error::Unsupported(format!(
            "WITH {} names {} columns but its query gives {}",
            cte.alias.name,
            cte.alias.columns.len(),
            schema.fields().len()
        )));
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(&cte.alias.columns)
        .map(|(f, c)| f.as_ref().clone().with_name(normalized(&c.name)))
        .collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let batches = batches
        .into_iter()
        .map(|batch| RecordBatch::try_new(Arc::clone(&schema), batch.columns().to_vec()))
        .collect::<std::result::Result<_, _>>()?;
    Ok((schema, batches))
}

/// The schema the computed CTEs go in, made on first use.
fn shared_schema(ctx: &SessionContext) -> Result<Arc<dyn SchemaProvider>> {
    let catalog = match ctx.catalog(CATALOG) {
        Some(c) => c,
        None => {
            let c: Arc<dyn CatalogProvider> = Arc::new(MemoryCatalogProvider::new());
            ctx.register_catalog(CATALOG, Arc::clone(&c));
            c
        }
    };
    match catalog.schema(SCHEMA) {
        Some(s) => Ok(s),
        None => {
            let s: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
            catalog.register_schema(SCHEMA, Arc::clone(&s))?;
            Ok(s)
        }
    }
}

/// A name as DataFusion resolves it: unquoted names are lowercased.
fn normalized(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

fn names(object: &ObjectName, name: &str) -> bool {
    match object.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => normalized(ident) == name,
        _ => false,
    }
}

/// How often a query names a CTE, and how many other `WITH`s define that name.
#[derive(Default)]
struct Uses<'a> {
    name: &'a str,
    references: usize,
    definitions: usize,
}

impl<'a> Uses<'a> {
    /// The uses of the `i`-th CTE of the top-level `WITH`: in the CTEs after it and in the
    /// query itself, the only places that see it.
    fn after(query: &Query, i: usize, name: &'a str) -> Self {
        let mut uses = Uses {
            name,
            ..Default::default()
        };
        let mut rest = query.clone();
        let later: Vec<Cte> = rest
            .with
            .take()
            .map(|w| w.cte_tables.into_iter().skip(i + 1).collect())
            .unwrap_or_default();
        uses.definitions += later
            .iter()
            .filter(|c| normalized(&c.alias.name) == name)
            .count();
        for cte in &later {
            let _ = Visit::visit(cte.query.as_ref(), &mut uses);
        }
        let _ = Visit::visit(&rest, &mut uses);
        uses
    }
}

impl Visitor for Uses<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            self.definitions += with
                .cte_tables
                .iter()
                .filter(|c| normalized(&c.alias.name) == self.name)
                .count();
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, .. } = factor
            && names(name, self.name)
        {
            self.references += 1;
        }
        ControlFlow::Continue(())
    }
}

/// Points every reference to a CTE at its computed table, under the CTE's name.
struct Rewrite<'a> {
    name: &'a str,
    table: &'a str,
    alias: &'a Ident,
}

impl VisitorMut for Rewrite<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, alias, .. } = factor
            && names(name, self.name)
        {
            *name = ObjectName(
                [CATALOG, SCHEMA, self.table]
                    .into_iter()
                    .map(|part| ObjectNamePart::Identifier(Ident::with_quote('"', part)))
                    .collect(),
            );
            if alias.is_none() {
                *alias = Some(TableAlias {
                    explicit: true,
                    name: self.alias.clone(),
                    columns: vec![],
                    at: None,
                });
            }
        }
        ControlFlow::Continue(())
    }
}

/// The CTEs of a statement's top-level `WITH` that would be computed once.
#[cfg(test)]
fn shared_names(sql: &str) -> Vec<String> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let statements = Parser::parse_sql(&GenericDialect {}, sql).expect("sql");
    let Some(Statement::Query(query)) = statements.first() else {
        return vec![];
    };
    let mut out = vec![];
    for (i, cte) in query.with.iter().flat_map(|w| &w.cte_tables).enumerate() {
        let name = normalized(&cte.alias.name);
        let uses = Uses::after(query, i, &name);
        if uses.references > 1 && uses.definitions == 0 {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ctes_named_twice_are_shared() {
        assert_eq!(
            shared_names(
                "WITH a AS (SELECT 1 AS x), b AS (SELECT x FROM a), c AS (SELECT 2 AS y)
                 SELECT * FROM a, b, c WHERE a.x = (SELECT max(x) FROM A)"
            ),
            ["a"]
        );
        // A nested WITH defining the same name again leaves it alone.
        assert!(
            shared_names(
                "WITH a AS (SELECT 1 AS x) SELECT * FROM a, (WITH a AS (SELECT 2 AS x) SELECT * FROM a) s, a t"
            )
            .is_empty()
        );
    }

    #[tokio::test]
    async fn shared_ctes_give_the_inlined_answer() {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t AS SELECT value AS v FROM generate_series(1, 3)")
            .await
            .expect("table t")
            .collect()
            .await
            .expect("table t");
        let queries = [
            // Q15's shape: a CTE, and its maximum, qualified names included.
            "WITH r AS (SELECT value % 5 AS k, sum(value) AS total FROM generate_series(1, 100) GROUP BY 1)
             SELECT r.k, total FROM r WHERE r.total = (SELECT max(total) FROM r) ORDER BY 1",
            // Column names in the WITH, an alias on one use, and a later CTE reading it.
            // No rows: the columns are still there.
            "WITH r AS (SELECT value AS v FROM generate_series(1, 3) WHERE value > 10)
             SELECT count(r.v), count(*) FROM r, r AS r2 WHERE r.v = r2.v",
            // An earlier CTE naming `t` reads the table `t`, not the CTE defined after it.
            "WITH a AS (SELECT v FROM t), t AS (SELECT value * 10 AS v FROM generate_series(1, 2))
             SELECT a.v, x.v FROM a, t x, t y WHERE x.v = y.v ORDER BY 1, 2",
            "WITH r (k, n) AS (SELECT value % 3, value FROM generate_series(1, 10)),
                  s AS (SELECT k, count(*) AS c FROM r GROUP BY k)
             SELECT x.k, sum(x.n), max(s.c) FROM r x JOIN s ON x.k = s.k JOIN r ON r.n = x.n GROUP BY x.k ORDER BY 1",
        ];
        for sql in queries {
            let expected = ctx
                .sql(sql)
                .await
                .expect("plan")
                .collect()
                .await
                .expect("run");
            let mut statement = ctx
                .state()
                .sql_to_statement(sql, &datafusion::config::Dialect::Generic)
                .expect("parse");
            let guard = compute_shared(&ctx, &mut statement).await.expect("shared");
            assert!(!guard.names.is_empty(), "{sql}: nothing computed");
            assert!(
                statement.to_string().contains(CATALOG),
                "{sql}: {statement}"
            );
            let plan = ctx
                .state()
                .statement_to_plan(statement)
                .await
                .expect("plan");
            drop(guard);
            let got = ctx
                .execute_logical_plan(plan)
                .await
                .expect("plan")
                .collect()
                .await
                .expect("run");
            assert_eq!(
                arrow::util::pretty::pretty_format_batches(&got)
                    .expect("format")
                    .to_string(),
                arrow::util::pretty::pretty_format_batches(&expected)
                    .expect("format")
                    .to_string(),
                "{sql}"
            );
        }
        // Nothing is left registered.
        let schema = shared_schema(&ctx).expect("schema");
        assert!(schema.table_names().is_empty());
    }
}
