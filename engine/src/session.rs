//! A session on a warehouse: a DataFusion `SessionContext` whose catalog is the warehouse's
//! zones, and the statements strata runs itself (SHOW ZONES, USE, REFRESH, and the catalog
//! side of CREATE EXTERNAL TABLE and DROP TABLE). The REPL, scripts and any server run SQL
//! through here; nothing is implemented twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use arrow::datatypes::{Field, Schema};
use datafusion::common::TableReference;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::sql::parser::Statement as DFStatement;
use futures::TryStreamExt;
use object_store::ObjectStore;
use strata_catalog::{Action, Catalog, Config, DEFAULT_ZONE, S3Options, Warehouse, ZoneEntry};
use url::Url;

use crate::error::{Error, Result};
use crate::policy::{PathPolicy, Policy};
use crate::providers::metrics::ScanCounters;
use crate::providers::schema::{Shared, WarehouseCatalog};
use crate::providers::stores::{DEFAULT_LISTING_TTL, StoreRegistry, file_url};

/// The name of the SQL catalog that holds the zones.
pub const CATALOG_NAME: &str = "strata";

/// What a statement produced.
pub enum Output {
    /// A result set.
    Rows(SendableRecordBatchStream),
    /// No result set (DDL, USE, SET): a message for people, printed only in table format.
    Done(String),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Rows(_) => f.write_str("Output::Rows"),
            Output::Done(m) => write!(f, "Output::Done({m:?})"),
        }
    }
}

impl Output {
    /// Collects the rows (none for [`Output::Done`]).
    pub async fn collect(self) -> Result<Vec<RecordBatch>> {
        match self {
            Output::Rows(stream) => Ok(stream.try_collect().await?),
            Output::Done(_) => Ok(vec![]),
        }
    }
}

/// A session: one SQL context on one warehouse.
pub struct Session {
    ctx: SessionContext,
    shared: Arc<Shared>,
    /// Where queries that read files run, when not here (see [`crate::remote`]).
    remote: Option<Arc<dyn crate::remote::Remote>>,
    /// Whether the last query ran on the remote.
    ran_remotely: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({})", self.shared.catalog.warehouse().url())
    }
}

impl Session {
    /// Opens a session on the warehouse at a folder path or URL, creating the warehouse on
    /// first use. S3 settings come from the AWS environment variables.
    pub async fn open(location: &str) -> Result<Self> {
        Self::open_with(location, &env_config()?).await
    }

    /// Opens a session with settings from a config file (whose S3 settings the caller has
    /// already layered over the environment's, and flags over those).
    pub async fn open_with(location: &str, config: &Config) -> Result<Self> {
        let warehouse = Warehouse::open_with(location, &config.s3)?;
        Self::open_configured(warehouse, config).await
    }

    /// Opens a session on an already configured warehouse.
    pub async fn open_warehouse(warehouse: Warehouse) -> Result<Self> {
        Self::open_configured(warehouse, &env_config()?).await
    }

    async fn open_configured(warehouse: Warehouse, config: &Config) -> Result<Self> {
        let counters = Arc::new(ScanCounters::default());
        let listing_ttl = match config.cache.listing_ttl_secs {
            None => DEFAULT_LISTING_TTL,
            Some(s) if s.is_finite() && s >= 0.0 => Duration::from_secs_f64(s),
            Some(s) => {
                return Err(strata_catalog::Error::InvalidConfig {
                    source_name: "[cache]".into(),
                    reason: format!("listing_ttl_secs must be 0 or more, not {s}"),
                }
                .into());
            }
        };
        let stores = Arc::new(StoreRegistry::new(
            config.s3.clone(),
            Arc::clone(&counters),
            listing_ttl,
        ));
        let file_store = stores.adopt(
            &file_url(),
            Arc::new(object_store::local::LocalFileSystem::new()),
        );
        // The catalog reads and writes through the session's store for its bucket, so its
        // requests are counted with the rest.
        let warehouse = if warehouse.url().scheme() == "file" {
            warehouse.with_store(file_store)
        } else {
            let mut base = warehouse.url().clone();
            base.set_path("/");
            let store = stores.adopt(&base, Arc::clone(warehouse.store()));
            warehouse.with_store(store)
        };
        warehouse.check(&config.s3).await?;
        let catalog = Catalog::open(warehouse).await?;
        apply_zone_roots(&catalog, &config.zones).await?;
        // The list-files cache is off: raw zones change under us, and a query must see files
        // that landed since the last one. Object-store listings are cached by the session's
        // stores instead, for `listing_ttl`, and dropped by strata's own writes.
        let mut runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
            .with_object_store_registry(Arc::clone(&stores) as _);
        let mut memory_limit = None;
        if let Some(limit) = &config.memory_limit {
            let bytes = strata_catalog::parse_size(limit).ok_or_else(|| {
                strata_catalog::Error::InvalidConfig {
                    source_name: "memory_limit".into(),
                    reason: format!(
                        "'{limit}' is not a size; use e.g. 4GiB, 512MB or a number of bytes"
                    ),
                }
            })?;
            // A fair pool, not DataFusion's default greedy one: each sort, aggregation and
            // join that can spill gets an equal share of what operators that cannot spill
            // leave, and spills to disk when it needs more, rather than one of them taking
            // the whole limit and the next operator failing.
            memory_limit = Some(bytes as usize);
            runtime = runtime.with_memory_pool(Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(bytes as usize),
                std::num::NonZeroUsize::new(5).unwrap_or(std::num::NonZeroUsize::MIN),
            )));
        }
        // Spill files go to the system's temporary folder unless the config says where.
        if let Some(dir) = &config.spill_dir {
            let path = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&path).map_err(|e| strata_catalog::Error::InvalidConfig {
                source_name: "spill_dir".into(),
                reason: format!("cannot create the spill folder '{dir}': {e}"),
            })?;
            runtime = runtime.with_temp_file_path(path);
        }
        // Benchmarks read the peak memory of a query from this wrapper.
        let pool = crate::providers::metrics::PeakMemoryPool::wrap(runtime.memory_pool.take());
        let runtime = runtime.with_memory_pool(pool).build_arc()?;
        let mut config = SessionConfig::new()
            .with_option_extension(crate::optimizer::StrataOptions::with_memory_limit(
                memory_limit.is_some(),
            ))
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG_NAME, DEFAULT_ZONE)
            .with_create_default_catalog_and_schema(false);
        // A join hands its keys to the scans it filters as a list, rather than as a lookup
        // in its hash table, up to a few thousand keys: scans evaluate a list of keys row by
        // row far faster (see `optimizer::dynamic_filter_row_pushdown`; measured in
        // benches/results/tpch-analysis.md).
        // A literal such as 556.18 is the exact decimal it reads as, as in DuckDB and
        // PostgreSQL, not the nearest binary float: `price = 556.18` finds the price (see
        // `sql::literals`).
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        if let Some(limit) = memory_limit {
            // A sort that spills sets aside memory to merge its spill files, 10 MB by default
            // in every partition: under a small limit that alone would fail the query. Each
            // partition's sort sets aside at most a quarter of its share of the limit.
            let execution = &mut config.options_mut().execution;
            let share = limit / (4 * execution.target_partitions.max(1));
            execution.sort_spill_reservation_bytes = execution
                .sort_spill_reservation_bytes
                .min(share.max(64 * 1024));
        }
        let optimizer = &mut config.options_mut().optimizer;
        optimizer.hash_join_inlist_pushdown_max_distinct_values = 4096;
        optimizer.hash_join_inlist_pushdown_max_size = 1024 * 1024;
        // deltalake's planner runs the extension nodes of its writes and DML; it hands every
        // other node to DataFusion's default planner.
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_query_planner(deltalake::delta_datafusion::planner::DeltaPlanner::new())
            .with_optimizer_rules(crate::optimizer::logical_rules(
                datafusion::optimizer::Optimizer::new().rules,
            )?)
            .with_analyzer_rules(analyzer_rules())
            .with_physical_optimizer_rules(crate::optimizer::physical_rules(
                checked_physical_rules(),
            )?)
            .build();
        let ctx = SessionContext::new_with_state(state);
        // Integer sums that fail rather than wrap (see `arithmetic`).
        ctx.register_udaf(crate::arithmetic::sum::udaf());
        if memory_limit.is_some() {
            // `array_agg` counted at the strings it holds, so the limit bounds it (see
            // `array_agg`).
            ctx.register_udaf(crate::array_agg::udaf());
        }
        let shared = Shared::new(catalog, counters, stores);
        ctx.register_catalog(
            CATALOG_NAME,
            Arc::new(WarehouseCatalog::new(Arc::clone(&shared))),
        );
        attach_file_reads(&ctx, &shared);
        Ok(Self {
            ctx,
            shared,
            remote: None,
            ran_remotely: Default::default(),
        })
    }

    /// The session with its queries run by `remote` (a cluster): the rules whose nodes
    /// cannot travel yet are switched off (see [`crate::remote::CLUSTER_OFF_RULES`]).
    pub fn with_remote(mut self, remote: Arc<dyn crate::remote::Remote>) -> Result<Self> {
        {
            let shared_state = self.ctx.state_ref();
            let mut state = shared_state.write();
            let options = state.config_mut().options_mut();
            for rule in crate::remote::CLUSTER_OFF_RULES {
                options.set(&format!("strata.optimizer.{rule}"), "false")?;
            }
            // Delta tables are then scanned as plain Parquet, which travels to executors.
            crate::optimizer::set_on_cluster(options);
            // A dynamic filter is filled by a join or a TopK and read by scans; a cluster
            // cuts them into different stages, where scans would wait for a filter nothing
            // fills.
            for filter in ["topk", "join", "aggregate"] {
                options.set(
                    &format!("datafusion.optimizer.enable_{filter}_dynamic_filter_pushdown"),
                    "false",
                )?;
            }
            options.optimizer.enable_dynamic_filter_pushdown = false;
            // An uncorrelated scalar subquery runs in a node that hands its value to an
            // expression above it; a cluster cuts the two apart. Planned as a join instead,
            // as Ballista's own sessions plan it (a subquery of more than one row then gives
            // a row rather than the error).
            options
                .optimizer
                .enable_physical_uncorrelated_scalar_subquery = false;
            // Joins are planned partitioned, never with a collected build side: a join that
            // keeps unmatched build rows (LEFT, anti, semi, mark, FULL) must see every probe
            // row in one place to know which build rows matched none, and a cluster splits
            // the probe side over tasks. Ballista broadcasts a small side itself where the
            // join type allows it. (A NOT IN join that must know whether the subquery holds
            // a NULL is collected all the same; Ballista runs it as a single task.)
            options.optimizer.hash_join_single_partition_threshold = 0;
            options.optimizer.hash_join_single_partition_threshold_rows = 0;
        }
        self.remote = Some(remote);
        Ok(self)
    }

    /// The remote that runs this session's queries, if any.
    pub fn remote(&self) -> Option<&Arc<dyn crate::remote::Remote>> {
        self.remote.as_ref()
    }

    /// Where the last query ran, in a session with a remote: "on the cluster at … (2
    /// executors)", or "in this process" for one that read no files.
    pub fn last_placement(&self) -> Option<String> {
        let remote = self.remote.as_ref()?;
        if self.ran_remotely.load(std::sync::atomic::Ordering::Relaxed) {
            remote.last_run()
        } else {
            Some("in this process (it reads no files)".into())
        }
    }

    pub(crate) fn set_ran_remotely(&self, remotely: bool) {
        self.ran_remotely
            .store(remotely, std::sync::atomic::Ordering::Relaxed);
    }

    /// The session under a policy: read-only, or restricted to locations inside the
    /// warehouse and allowed prefixes (see [`Policy`]).
    pub fn with_policy(self, policy: Policy) -> Self {
        self.set_policy(policy);
        self
    }

    /// Puts the session under a policy. Sessions that share this one's warehouse state
    /// share its policy too.
    pub fn set_policy(&self, policy: Policy) {
        self.shared.set_policy(policy);
    }

    /// What the session may do.
    pub fn policy(&self) -> Arc<Policy> {
        self.shared.policy()
    }

    /// Refuses a plan the session's policy does not allow: one that writes on a read-only
    /// session, one that names a location outside the allowed places.
    pub(crate) fn admit_plan(&self, plan: &datafusion::logical_expr::LogicalPlan) -> Result<()> {
        let policy = self.policy();
        if !policy.read_only && matches!(policy.paths, PathPolicy::Unrestricted) {
            return Ok(());
        }
        policy.admit_plan(plan, &self.roots())
    }

    /// Refuses a location outside the places the session's policy allows.
    pub(crate) fn admit_location(&self, location: &str) -> Result<()> {
        let policy = self.policy();
        if matches!(policy.paths, PathPolicy::Unrestricted) {
            return Ok(());
        }
        policy.admit_location(location, &self.roots())
    }

    /// The warehouse's root and the zones' roots: the places a restricted session may
    /// always name.
    fn roots(&self) -> Vec<Url> {
        self.shared.roots()
    }

    /// A new session on the same warehouse: it shares the catalog, the object stores (and
    /// their listing caches), the memory pool, the spill folder and the file caches, and
    /// starts from this session's settings and zone; but it has its own settings, zone,
    /// session-local views, audits and storage counters from then on. A server gives each
    /// client one.
    pub fn fork(&self) -> Result<Self> {
        let counters = Arc::new(ScanCounters::default());
        let stores = Arc::new(self.shared.stores.fork(Arc::clone(&counters)));
        let parent = self.ctx.state();
        let id = format!("{}-{}", parent.session_id(), next_fork());
        // The same runtime (memory pool, disk manager, caches), but the fork's stores.
        let runtime = RuntimeEnvBuilder::from_runtime_env(parent.runtime_env())
            .with_object_store_registry(Arc::clone(&stores) as _)
            .build_arc()?;
        // A catalog list of its own: registering the fork's catalog must not replace this
        // session's.
        let state = datafusion::execution::SessionStateBuilder::new_from_existing(parent)
            .with_session_id(id)
            .with_runtime_env(runtime)
            .with_catalog_list(Arc::new(
                datafusion::catalog::MemoryCatalogProviderList::new(),
            ))
            .build();
        let ctx = SessionContext::new_with_state(state);
        let shared = Shared::new(Arc::clone(&self.shared.catalog), counters, stores);
        ctx.register_catalog(
            CATALOG_NAME,
            Arc::new(WarehouseCatalog::new(Arc::clone(&shared))),
        );
        attach_file_reads(&ctx, &shared);
        // The fork is under the same policy as this session.
        shared.set_policy((*self.policy()).clone());
        Ok(Self {
            ctx,
            shared,
            remote: self.remote.clone(),
            ran_remotely: Default::default(),
        })
    }

    /// Keeps a staged Parquet write until the audit of its table ends.
    pub(crate) fn park_staged(&self, staged: crate::providers::staging::Staged) {
        self.shared.park_staged(staged);
    }

    /// Takes the staged Parquet write of a table under audit, if there is one.
    pub(crate) fn take_staged(
        &self,
        zone: &str,
        name: &str,
    ) -> Option<crate::providers::staging::Staged> {
        self.shared.take_staged(zone, name)
    }

    /// Whether a table under audit has a staged Parquet write.
    pub(crate) fn has_staged(&self, zone: &str, name: &str) -> bool {
        self.shared.has_staged(zone, name)
    }

    /// Whether this session is auditing a write to `zone.name` (it then reads the table's
    /// latest version, while every other reader keeps the held one).
    pub fn is_auditing(&self, zone: &str, name: &str) -> bool {
        self.shared.is_auditing(zone, name)
    }

    pub(crate) fn set_auditing(&self, zone: &str, name: &str, on: bool) {
        self.shared.set_auditing(zone, name, on);
    }

    /// A Delta table at its latest version (kept up to date incrementally).
    pub async fn latest_delta(
        &self,
        entry: &strata_catalog::TableEntry,
    ) -> Result<deltalake::DeltaTable> {
        self.shared.latest_delta(entry).await
    }

    /// The stores of this session, by bucket.
    pub fn stores(&self) -> &StoreRegistry {
        &self.shared.stores
    }

    /// The warehouse catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.shared.catalog
    }

    /// The DataFusion context, for callers that plan on their own.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// What the last statement read.
    pub fn counters(&self) -> &Arc<ScanCounters> {
        &self.shared.counters
    }

    /// The zone unqualified names resolve to.
    pub fn current_zone(&self) -> String {
        // Read through the shared state: `ctx.state()` would copy the whole session state.
        self.ctx
            .state_ref()
            .read()
            .config_options()
            .catalog
            .default_schema
            .clone()
    }

    /// Sets the zone unqualified names resolve to.
    pub async fn use_zone(&self, zone: &str) -> Result<()> {
        let zone = zone.trim().trim_matches('"').to_ascii_lowercase();
        self.shared.catalog.refresh().await?;
        self.shared.catalog.snapshot().zone(&zone)?;
        self.ctx
            .sql(&format!("SET datafusion.catalog.default_schema = '{zone}'"))
            .await?
            .collect()
            .await?;
        Ok(())
    }

    /// Plans a query (checking that its tables exist) into a DataFrame, without running it.
    pub async fn plan_query(&self, sql: &str) -> Result<datafusion::dataframe::DataFrame> {
        let parsed = crate::sql::parse_one(sql)?;
        self.policy().admit_statement(&parsed.statement)?;
        match parsed.statement.to_datafusion() {
            Some(statement) => self.plan_statement(statement).await,
            None => Err(Error::Unsupported(format!(
                "{} is not a query; run it as a statement",
                parsed.statement.keyword()
            ))),
        }
    }

    /// Plans a parsed DataFusion statement (checking that its tables exist).
    pub async fn plan_statement(
        &self,
        mut statement: DFStatement,
    ) -> Result<datafusion::dataframe::DataFrame> {
        self.policy().admit_datafusion(&statement)?;
        let state = self.ctx.state();
        for reference in state.resolve_table_references(&statement)? {
            self.check_reference(&reference)?;
        }
        let calls = self.prepare_file_reads(&state, &mut statement).await?;
        let plan = crate::types::describe_with_sql_types(crate::sql::retype_literals(
            crate::sql::cast_names::statement_to_plan(&state, statement).await?,
        )?)?;
        drop(calls);
        self.admit_plan(&plan)?;
        Ok(datafusion::dataframe::DataFrame::new(state, plan))
    }

    /// Resolves the `read_*(…)` calls of a statement before it is planned (see
    /// `providers::paths`); their tables are kept until the guard drops.
    pub(crate) async fn prepare_file_reads(
        &self,
        state: &datafusion::execution::SessionState,
        statement: &mut DFStatement,
    ) -> Result<crate::providers::paths::PreparedCalls> {
        crate::providers::paths::prepare_calls(
            &self.shared.read_context(),
            state,
            &self.shared.prepared,
            statement,
        )
        .await
    }

    /// Zone and table name of a reference, with the current zone for unqualified names.
    pub fn resolve(&self, reference: &TableReference) -> Result<(String, String)> {
        let zone = reference
            .schema()
            .map(str::to_string)
            .unwrap_or_else(|| self.current_zone());
        if let Some(catalog) = reference.catalog()
            && catalog != CATALOG_NAME
        {
            return Err(Error::Unsupported(format!(
                "unknown catalog '{catalog}'; tables live in zones of the catalog '{CATALOG_NAME}', as zone.table"
            )));
        }
        Ok((zone, reference.table().to_string()))
    }

    pub(crate) fn check_reference(&self, reference: &TableReference) -> Result<()> {
        if reference.catalog().is_some_and(|c| c != CATALOG_NAME)
            || reference.schema() == Some("information_schema")
        {
            return Ok(());
        }
        // Table functions (generate_series, range, …) are resolved by DataFusion.
        if reference.schema().is_none()
            && self
                .ctx
                .state_ref()
                .read()
                .table_functions()
                .contains_key(reference.table())
        {
            return Ok(());
        }
        // Files read by path (`FROM 'data/x.parquet'`): the zone schema reads them.
        if reference.schema().is_none()
            && crate::providers::paths::looks_like_path(reference.table())
        {
            return Ok(());
        }
        let (zone, name) = self.resolve(reference)?;
        let snapshot = self.shared.catalog.snapshot();
        snapshot.zone(&zone)?;
        if !self.shared.exists(&zone, &name) {
            return Err(strata_catalog::Error::TableNotFound {
                zone,
                name,
                available: self
                    .shared
                    .names(reference.schema().unwrap_or(&self.current_zone())),
            }
            .into());
        }
        Ok(())
    }

    /// The object store that serves a URL.
    pub fn store_for(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        use datafusion::execution::object_store::ObjectStoreRegistry;
        Ok(self.shared.stores.get_store(url)?)
    }

    /// State shared by the session and its zone schemas.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// A result set built in memory from named columns of equal length. A column is nullable
/// when it holds a NULL.
/// DataFusion's analyzer rules, then strata's check of constant integer arithmetic, which
/// must see the statement before DataFusion's optimizer folds its constants, and its move of
/// window functions' arithmetic below the window, where it is checked, and the rewrite of
/// subqueries DataFusion cannot plan as written.
fn analyzer_rules() -> Vec<Arc<dyn datafusion::optimizer::AnalyzerRule + Send + Sync>> {
    let mut rules = datafusion::optimizer::Analyzer::new().rules;
    rules.push(Arc::new(crate::arithmetic::ConstantOverflow));
    rules.push(Arc::new(crate::arithmetic::window::WindowArithmetic));
    rules.push(Arc::new(
        crate::optimizer::plannable_subqueries::PlannableSubqueries,
    ));
    rules
}

/// DataFusion's physical rules after strata's checked integer arithmetic, which is not a
/// switchable optimizer rule: it decides answers. It runs first, so that every rule after it
/// moves checked expressions (into scans, joins' filters and the like).
fn checked_physical_rules()
-> Vec<Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    rules.insert(0, Arc::new(crate::arithmetic::CheckedArithmetic));
    rules
}

pub(crate) fn table_output(columns: Vec<(&str, ArrayRef)>) -> Output {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), a.null_count() > 0))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    );
    match batch.and_then(|b| Ok(MemoryStream::try_new(vec![b], schema, None)?)) {
        Ok(stream) => Output::Rows(Box::pin(stream)),
        Err(e) => Output::Done(format!("internal error building the result: {e}")),
    }
}

/// The one-row `count` result of a statement that changed rows.
pub(crate) fn count_output(n: u64) -> Output {
    table_output(vec![("count", Arc::new(UInt64Array::from(vec![n])))])
}

/// Settings from the environment alone (no config file, no flags).
fn env_config() -> Result<Config> {
    Ok(Config {
        s3: S3Options::from_env()?,
        ..Default::default()
    })
}

/// Records the zone roots a config file sets. A zone that already has tables keeps its root:
/// moving it would leave them behind.
async fn apply_zone_roots(catalog: &Catalog, zones: &BTreeMap<String, String>) -> Result<()> {
    if zones.is_empty() {
        return Ok(());
    }
    let mut wanted = Vec::new();
    for (zone, root) in zones {
        let zone = zone.to_ascii_lowercase();
        strata_catalog::validate_name(&zone)?;
        let url = strata_catalog::resolve_url(root).map_err(|reason| {
            strata_catalog::Error::InvalidConfig {
                source_name: "[zones]".into(),
                reason: format!("zone '{zone}': {reason}"),
            }
        })?;
        let mut root = url.to_string();
        if !root.ends_with('/') {
            root.push('/');
        }
        wanted.push(ZoneEntry { name: zone, root });
    }
    catalog
        .commit("SET ZONE ROOTS", |state| {
            let mut actions = Vec::new();
            for z in &wanted {
                match state.zones.get(&z.name) {
                    Some(existing) if existing.root == z.root => {}
                    Some(existing) if !state.table_names(&z.name).is_empty() => {
                        return Err(strata_catalog::Error::InvalidConfig {
                            source_name: "[zones]".into(),
                            reason: format!(
                                "zone '{}' already has tables under {}; it cannot move to {} (drop its tables first, or take it out of [zones])",
                                z.name, existing.root, z.root
                            ),
                        });
                    }
                    _ => actions.push(Action::SetZone(z.clone())),
                }
            }
            Ok(actions)
        })
        .await?;
    Ok(())
}

/// Files read by path: the `read_*` table functions, and the state the zone schemas infer
/// the schemas of files read by path with.
fn attach_file_reads(ctx: &SessionContext, shared: &Arc<Shared>) {
    for (name, function) in crate::providers::paths::functions(&shared.prepared) {
        ctx.register_udtf(name, function);
    }
    let state = ctx.state_weak_ref();
    shared.set_state_source(crate::providers::schema::StateSource(Box::new(move || {
        state.upgrade().map(|s| s.read().clone())
    })));
}

/// A number for each forked session, to tell their DataFusion session ids apart.
fn next_fork() -> u64 {
    static FORKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    FORKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}
