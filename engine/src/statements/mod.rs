//! Running statements: [`Session::execute`] parses one statement and dispatches on its
//! [`Statement`] variant, to DataFusion's planner or to the handler of its family, one file
//! each: CREATE TABLE … AS, INSERT OVERWRITE, Delta DML and history, maintenance,
//! registering tables, checks, lineage, materialized views, SHOW and SUMMARIZE.

pub(crate) mod check;
pub(crate) mod create_table_as;
pub(crate) mod dml;
pub(crate) mod file_errors;
pub(crate) mod history;
pub(crate) mod insert_overwrite;
pub mod lineage;
pub(crate) mod maintenance;
pub(crate) mod materialized_view;
pub(crate) mod register;
pub(crate) mod show;
pub(crate) mod summarize;

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use strata_catalog::RAW_ZONE;

use crate::error::{Error, Result};
use crate::providers::metrics::ScanSummary;
use crate::session::{Output, Session};
use crate::sql::{Parsed, Statement, table_reference};

/// Commit metadata key under which strata records the SQL that wrote a Delta version.
pub const SQL_METADATA_KEY: &str = "strata.sql";

impl Session {
    /// Runs every statement of `sql` and returns the rows of the last one (tests, embedding).
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let mut last = vec![];
        for parsed in crate::sql::parse(sql)? {
            last = self.run(parsed).await?.collect().await?;
        }
        Ok(last)
    }

    /// Parses and runs one statement.
    pub async fn execute(&self, sql: &str) -> Result<Output> {
        let parsed = crate::sql::parse_one(sql)?;
        self.run(parsed).await
    }

    /// Runs one parsed statement.
    pub async fn run(&self, parsed: Parsed) -> Result<Output> {
        self.policy().admit_statement(&parsed.statement)?;
        self.counters().reset();
        self.catalog().refresh().await?;
        let Parsed {
            statement, text, ..
        } = parsed;
        let sql = text.as_str();
        match statement {
            Statement::DataFusion(statement) => self.run_datafusion(*statement).await,
            Statement::CreateTableAs(ctas) => {
                create_table_as::create_table_as(self, ctas, sql).await
            }
            Statement::Insert(insert) => {
                if let Some(output) = insert_overwrite::run(self, &insert, sql).await? {
                    self.record_lineage(&Statement::Insert(insert)).await;
                    return Ok(output);
                }
                let target = insert.table.to_string();
                let statement = DFStatement::Statement(Box::new(SqlStatement::Insert(*insert)));
                match self.run_datafusion(statement).await {
                    Err(e)
                        if [
                            "Column count doesn't match",
                            "Inconsistent data length across values list",
                        ]
                        .iter()
                        .any(|m| e.to_string().contains(m)) =>
                    {
                        Err(self.insert_column_count(&target).await)
                    }
                    other => other,
                }
            }
            Statement::Update(update) => dml::update(self, &update, sql).await,
            Statement::Delete(delete) => dml::delete(self, &delete, sql).await,
            Statement::Merge(merge) => {
                let output = dml::merge(self, &merge, sql).await?;
                self.record_lineage(&Statement::Merge(merge)).await;
                Ok(output)
            }
            Statement::Check(c) => check::run(self, &c).await,
            Statement::Optimize(o) => maintenance::optimize(self, &o).await,
            Statement::Vacuum(v) => maintenance::vacuum(self, &v).await,
            Statement::Restore(r) => maintenance::restore(self, &r).await,
            Statement::DescribeHistory(name) => history::history(self, &name).await,
            Statement::ShowZones => Ok(show::zones(self)),
            Statement::Summarize(query) => summarize::run(self, &query).await,
            Statement::ShowLineage(name) => lineage::show(self, &name).await,
            Statement::RefreshZone(zone) => {
                self.stores().invalidate_listings();
                register::refresh_zone(self, &crate::sql::normalize(&zone)).await
            }
            Statement::RefreshTable(name) => {
                self.stores().invalidate_listings();
                let (zone, name) = self.resolve(&table_reference(&name))?;
                register::refresh_table(self, &zone, &name).await
            }
            Statement::RefreshMaterializedView(name) => {
                materialized_view::refresh(self, &name).await
            }
            Statement::DropMaterializedView { name, if_exists } => {
                let (zone, name) = self.resolve(&table_reference(&name))?;
                register::drop_table(self, &zone, &name, if_exists).await
            }
            Statement::Use(zone) => {
                self.use_zone(&crate::sql::normalize(&zone)).await?;
                Ok(Output::Done(format!("zone is now {}", self.current_zone())))
            }
            Statement::ReleaseHold(name) => {
                let (zone, name) = self.resolve(&table_reference(&name))?;
                Box::pin(crate::pipeline::release_hold(
                    self,
                    &zone,
                    &name.to_ascii_lowercase(),
                ))
                .await
            }
        }
    }

    /// Runs a planned query (see [`Session::plan_query`]) as a stream; an error decoding a
    /// file names the damaged file.
    pub async fn execute_query(
        &self,
        df: datafusion::dataframe::DataFrame,
    ) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
        self.admit_plan(df.logical_plan())?;
        let tables = file_errors::parquet_tables(self, df.logical_plan());
        let (state, plan) = df.into_parts();
        let physical = state.create_physical_plan(&plan).await?;
        let stream = match self.execute_physical(physical, &state).await {
            Ok(stream) => stream,
            Err(e) => return Err(file_errors::name_damaged_file(&tables, e).await),
        };
        Ok(file_errors::name_damaged_files(tables, stream))
    }

    /// Runs a query plan that is already optimized (`DataFrame::into_optimized_plan`): it is
    /// made physical as it is, with this session's current settings, so its rows have
    /// exactly the optimized plan's schema and it is not planned a second time.
    pub async fn execute_optimized(
        &self,
        plan: &LogicalPlan,
    ) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
        let state = self.context().state();
        let tables = file_errors::parquet_tables(self, plan);
        let physical = state
            .query_planner()
            .create_physical_plan(plan, &state)
            .await?;
        let stream = match self.execute_physical(physical, &state).await {
            Ok(stream) => stream,
            Err(e) => return Err(file_errors::name_damaged_file(&tables, e).await),
        };
        Ok(file_errors::name_damaged_files(tables, stream))
    }

    /// Runs a physical plan: on the session's remote when it has one and the plan reads
    /// files, else here.
    async fn execute_physical(
        &self,
        physical: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        state: &datafusion::execution::SessionState,
    ) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
        let remotely = self.remote().is_some() && crate::remote::reads_files(&physical);
        self.set_ran_remotely(remotely);
        if let Some(remote) = self.remote().filter(|_| remotely) {
            let physical = crate::remote::prepare(physical)?;
            return Ok(remote.execute(physical, state).await?);
        }
        Ok(datafusion::physical_plan::execute_stream(
            physical,
            state.task_ctx(),
        )?)
    }

    /// The error for an INSERT whose values do not match its table's columns, naming the
    /// table and its columns.
    async fn insert_column_count(&self, target: &str) -> Error {
        let columns = match self.context().table_provider(target).await {
            Ok(table) => {
                let schema = table.schema();
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                let noun = if names.len() == 1 {
                    "column"
                } else {
                    "columns"
                };
                format!("its {} {noun} ({})", names.len(), names.join(", "))
            }
            Err(_) => "its columns".to_string(),
        };
        Error::Unsupported(format!(
            "INSERT INTO {target}: the statement gives a different number of values than {columns}; give one value per column, or name the columns it fills: INSERT INTO {target} (a, b) SELECT …"
        ))
    }

    /// Plans and runs a statement DataFusion plans, with the catalog side of the DDL strata
    /// keeps itself.
    async fn run_datafusion(&self, mut statement: DFStatement) -> Result<Output> {
        let state = self.context().state();
        if checks_references(&statement) {
            for reference in state.resolve_table_references(&statement)? {
                self.check_reference(&reference)?;
            }
        }
        let is_insert = matches!(&statement, DFStatement::Statement(s) if matches!(**s, SqlStatement::Insert(_)));
        let lineage_of = is_insert.then(|| Statement::from_datafusion(statement.clone()));
        let file_reads = self.prepare_file_reads(&state, &mut statement).await?;
        // CTEs named more than once are computed once; the guard keeps them registered
        // until the query is planned.
        let shared_ctes = if crate::optimizer::enabled(state.config_options(), "shared_ctes") {
            Some(
                crate::optimizer::shared_ctes::compute_shared(self.context(), &mut statement)
                    .await?,
            )
        } else {
            None
        };
        let plan = crate::types::describe_with_sql_types(crate::sql::retype_literals(
            crate::sql::cast_names::statement_to_plan(&state, statement).await?,
        )?)?;
        drop(shared_ctes);
        drop(file_reads);
        self.admit_plan(&plan)?;
        match &plan {
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(cmd)) => {
                return register::create_external_table(self, cmd).await;
            }
            LogicalPlan::Ddl(DdlStatement::DropTable(drop)) => {
                let (zone, name) = self.resolve(&drop.name)?;
                // Session-local views and tables are DataFusion's to drop; the rest are entries.
                if !self.shared().is_local(&zone, &name) {
                    return register::drop_table(self, &zone, &name, drop.if_exists).await;
                }
            }
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmd)) => {
                let (zone, name) = self.resolve(&cmd.name)?;
                if zone == RAW_ZONE {
                    return Err(Error::ReadOnlyZone {
                        table: format!("{zone}.{name}"),
                        statement: "CREATE TABLE".into(),
                    });
                }
                return Err(Error::Unsupported(format!(
                    "CREATE TABLE {zone}.{name} needs a table format that strata writes (Delta or Parquet), which this build does not write yet; register existing files with CREATE EXTERNAL TABLE, or use CREATE VIEW for a session-local view"
                )));
            }
            LogicalPlan::Dml(dml) => {
                let (zone, name) = self.resolve(&dml.table_name)?;
                if zone == RAW_ZONE {
                    return Err(Error::ReadOnlyZone {
                        table: format!("{zone}.{name}"),
                        statement: dml.op.name().to_uppercase(),
                    });
                }
            }
            _ => {}
        }
        if matches!(plan, LogicalPlan::Analyze(_)) {
            let batches = self
                .context()
                .execute_logical_plan(plan)
                .await?
                .collect()
                .await?;
            return Ok(with_storage_row(batches, &self.counters().summary()));
        }
        if let LogicalPlan::Dml(dml) = &plan
            && matches!(dml.op, datafusion::logical_expr::WriteOp::Insert(_))
        {
            // Run the insert here, so that its lineage is recorded once it has landed.
            let schema = Arc::new(plan.schema().as_arrow().clone());
            let batches = self
                .context()
                .execute_logical_plan(plan)
                .await?
                .collect()
                .await?;
            if let Some(statement) = &lineage_of {
                self.record_lineage(statement).await;
            }
            return Ok(Output::Rows(Box::pin(MemoryStream::try_new(
                batches, schema, None,
            )?)));
        }
        let no_result_set = matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Statement(_));
        let parquet_tables = file_errors::parquet_tables(self, &plan);
        let df = self.context().execute_logical_plan(plan).await?;
        if no_result_set {
            df.collect().await?;
            return Ok(Output::Done("OK".into()));
        }
        let (state, plan) = df.into_parts();
        let physical = state.create_physical_plan(&plan).await?;
        let stream = match self.execute_physical(physical, &state).await {
            Ok(stream) => stream,
            Err(e) => return Err(file_errors::name_damaged_file(&parquet_tables, e).await),
        };
        Ok(Output::Rows(file_errors::name_damaged_files(
            parquet_tables,
            stream,
        )))
    }

    /// Records what a write read on the table it wrote. Lineage is bookkeeping: failing to
    /// record it does not fail the write, which has landed.
    pub(crate) async fn record_lineage(&self, statement: &Statement) {
        let Some(target) = statement.write_target() else {
            return;
        };
        let Ok((zone, name)) = self.resolve(&table_reference(&target)) else {
            return;
        };
        let Some(read) = statement.to_datafusion() else {
            return;
        };
        if let Err(e) = lineage::record_write(self, &zone, &name, &read).await {
            tracing::warn!("could not record the lineage of {zone}.{name}: {e}");
        }
    }
}

/// Statements whose table references must all exist before planning, so the error can list
/// what the zone does have.
fn checks_references(statement: &DFStatement) -> bool {
    match statement {
        DFStatement::Statement(s) => matches!(
            **s,
            SqlStatement::Query(_)
                | SqlStatement::Insert(_)
                | SqlStatement::Update(_)
                | SqlStatement::Delete(_)
                | SqlStatement::Explain { .. }
        ),
        DFStatement::Explain(_) => true,
        _ => false,
    }
}

/// EXPLAIN ANALYZE's rows, plus one that says what storage was asked for.
fn with_storage_row(mut batches: Vec<RecordBatch>, summary: &ScanSummary) -> Output {
    let Some(schema) = batches.first().map(|b| b.schema()) else {
        return Output::Done(String::new());
    };
    let text = format!(
        "{}; {} file{}, {} bytes fetched",
        summary.requests,
        summary.files,
        if summary.files == 1 { "" } else { "s" },
        summary.bytes
    );
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, _)| {
            Arc::new(StringArray::from(vec![if i == 0 {
                "Storage requests".to_string()
            } else {
                text.clone()
            }])) as ArrayRef
        })
        .collect();
    if let Ok(row) = RecordBatch::try_new(Arc::clone(&schema), columns) {
        batches.push(row);
    }
    match MemoryStream::try_new(batches, schema, None) {
        Ok(stream) => Output::Rows(Box::pin(stream)),
        Err(e) => Output::Done(format!("internal error building the result: {e}")),
    }
}
