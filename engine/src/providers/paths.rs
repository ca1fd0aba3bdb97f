//! Files read by path, as DuckDB users expect: `FROM 'data/x.parquet'`,
//! `FROM 's3://bucket/logs/*.ndjson'`, `read_parquet(…)`, `read_csv(…)`, `read_json(…)`.
//!
//! A path read is the table the raw zone would register for the same files, never committed:
//! the files are listed and filtered by the path's glob (`*` within a folder, `**` across
//! folders), `key=value/` folders become partition columns, the schema is inferred from the
//! files (strata's NDJSON inference, DataFusion's for CSV and Parquet), and the files are read
//! through a [`StrataTable`] over exactly the files found. So a file read by path has the
//! types and the errors it has in the raw zone, naming the file and line. The session's path
//! policy applies as to CREATE EXTERNAL TABLE's LOCATION: a restricted session reads only
//! inside the warehouse, the zones' roots and the allowed prefixes.
//!
//! A quoted name in FROM that looks like a path is resolved by the zone schemas, which are
//! asked asynchronously. Table functions are called while planning, synchronously, so the
//! session resolves each `read_*(…)` call of a statement before planning it
//! ([`prepare_calls`]) and the function finds the table under the key the call was
//! rewritten to.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::catalog::TableFunctionImpl;
use datafusion::common::{DataFusionError, Result as DFResult, ScalarValue};
use datafusion::datasource::TableProvider;
use datafusion::execution::SessionState;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::logical_expr::Expr;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, FunctionArg, FunctionArgExpr, ObjectNamePart, TableFactor, Value,
    VisitMut, VisitorMut,
};
use object_store::{ObjectMeta, ObjectStoreExt};
use strata_catalog::{DataFile, PartitionColumn, RAW_ZONE, TableEntry, TableFormat};
use url::Url;

use crate::error::{Error, Result};
use crate::formats::infer::{self, DEFAULT_INFER_RECORDS};
use crate::policy::Policy;
use crate::providers::fileset;
use crate::providers::metrics::ScanCounters;
use crate::providers::stores::StoreRegistry;
use crate::providers::stores::url_path;
use crate::providers::table::{
    OPT_FILE_EXTENSION, OPT_INFER_RECORDS, OPT_SKIP_MALFORMED, StrataTable, file_format_named,
};

/// The table functions that read files, DuckDB's names, and the format each reads.
pub const FUNCTIONS: &[(&str, TableFormat)] = &[
    ("read_parquet", TableFormat::Parquet),
    ("parquet_scan", TableFormat::Parquet),
    ("read_csv", TableFormat::Csv),
    ("read_csv_auto", TableFormat::Csv),
    ("read_json", TableFormat::Json),
    ("read_json_auto", TableFormat::Json),
    ("read_ndjson", TableFormat::Json),
    ("read_ndjson_auto", TableFormat::Json),
];

/// Where the keys of prepared calls start: no path starts so.
const KEY_PREFIX: &str = "\u{1}strata-read-";

/// Whether a table name is a path or URL to read rather than a table: it holds a `/` or ends
/// in a data file's extension.
pub fn looks_like_path(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.contains('/')
        || [
            ".parquet", ".parq", ".csv", ".tsv", ".json", ".ndjson", ".jsonl", ".gz",
        ]
        .iter()
        .any(|e| lower.ends_with(e))
}

/// What a read needs of its session: its stores and counters, and where it may read.
pub(crate) struct ReadContext<'a> {
    pub stores: &'a StoreRegistry,
    pub counters: &'a Arc<ScanCounters>,
    pub policy: Arc<Policy>,
    /// The warehouse's and the zones' roots, which a restricted session may always read.
    pub roots: Vec<Url>,
}

/// One read of files: a quoted path in FROM, or a `read_*` call with its options.
#[derive(Debug, Clone)]
pub(crate) struct FileRead {
    /// The function called; `None` for a quoted path in FROM.
    pub function: Option<&'static str>,
    /// Paths, folders, globs or URLs, as written.
    pub paths: Vec<String>,
    /// Options as written (`header = true`): lower-cased name, value as text.
    pub options: Vec<(String, String)>,
}

impl FileRead {
    /// A quoted path in FROM.
    pub fn path(path: &str) -> Self {
        Self {
            function: None,
            paths: vec![path.to_string()],
            options: vec![],
        }
    }

    /// How errors name the read: `'data/x.csv'`, `read_csv('data/x.csv')`.
    pub fn label(&self) -> String {
        let paths: Vec<String> = self
            .paths
            .iter()
            .map(|p| format!("'{}'", p.replace('\'', "''")))
            .collect();
        match self.function {
            None => paths.join(", "),
            Some(f) if paths.len() == 1 => format!("{f}({})", paths[0]),
            Some(f) => format!("{f}([{}])", paths.join(", ")),
        }
    }

    /// The format the function reads, or the one the path's name says.
    fn format(&self) -> Option<TableFormat> {
        match self.function {
            Some(f) => FUNCTIONS.iter().find(|(n, _)| *n == f).map(|(_, t)| *t),
            None => {
                let last = self.paths.first()?.rsplit('/').next()?;
                infer::format_of(last)
            }
        }
    }
}

/// The options of a read, checked against what its function takes.
#[derive(Debug, Default)]
struct ReadOptions {
    hive: Option<bool>,
    header: Option<bool>,
    delimiter: Option<String>,
    gzip: Option<bool>,
    ignore_errors: bool,
    sample_size: Option<usize>,
}

impl ReadOptions {
    fn parse(read: &FileRead, format: TableFormat) -> Result<Self> {
        let function = read.function.unwrap_or("FROM");
        let takes: &[&str] = match format {
            TableFormat::Csv => &[
                "header",
                "delim",
                "sep",
                "delimiter",
                "compression",
                "hive_partitioning",
            ],
            TableFormat::Json => &[
                "format",
                "ignore_errors",
                "sample_size",
                "compression",
                "hive_partitioning",
                "union_by_name",
            ],
            _ => &["hive_partitioning", "union_by_name"],
        };
        let mut out = Self::default();
        for (name, value) in &read.options {
            if !takes.contains(&name.as_str()) {
                return Err(Error::Unsupported(format!(
                    "{function}: option '{name}' is not supported; {function} takes {}",
                    takes.join(", ")
                )));
            }
            let flag = || -> Result<bool> {
                match value.to_ascii_lowercase().as_str() {
                    "true" | "1" => Ok(true),
                    "false" | "0" => Ok(false),
                    _ => Err(Error::Unsupported(format!(
                        "{function}: option '{name}' takes true or false, not '{value}'"
                    ))),
                }
            };
            match name.as_str() {
                "hive_partitioning" => out.hive = Some(flag()?),
                "union_by_name" => {
                    // JSON and Parquet files are always combined by column name.
                    flag()?;
                }
                "header" => out.header = Some(flag()?),
                "delim" | "sep" | "delimiter" => {
                    let d = match value.as_str() {
                        "\\t" | "\t" | "tab" => "\\t".to_string(),
                        v if v.len() == 1 => v.to_string(),
                        _ => {
                            return Err(Error::Unsupported(format!(
                                "{function}: option '{name}' takes one character (or '\\t'), not '{value}'"
                            )));
                        }
                    };
                    out.delimiter = Some(d);
                }
                "compression" => {
                    out.gzip = match value.to_ascii_lowercase().as_str() {
                        "auto" => None,
                        "gzip" => Some(true),
                        "none" | "uncompressed" => Some(false),
                        _ => {
                            return Err(Error::Unsupported(format!(
                                "{function}: option 'compression' takes 'auto', 'gzip' or 'none', not '{value}'"
                            )));
                        }
                    }
                }
                "format" => match value.to_ascii_lowercase().as_str() {
                    "auto" | "newline_delimited" | "nd" => {}
                    _ => {
                        return Err(Error::Unsupported(format!(
                            "{function}: option 'format' '{value}' is not read here; strata reads newline-delimited JSON (one object per line): format = 'newline_delimited'"
                        )));
                    }
                },
                "ignore_errors" => out.ignore_errors = flag()?,
                "sample_size" => {
                    out.sample_size = Some(match value.trim().parse::<i64>() {
                        Ok(-1) => usize::MAX,
                        Ok(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
                        _ => {
                            return Err(Error::Unsupported(format!(
                                "{function}: option 'sample_size' takes a number of records per file (or -1 for all), not '{value}'"
                            )));
                        }
                    })
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// One path of a read, resolved: the folder its files are listed under, and which of them
/// it names.
struct Resolved {
    /// The folder (ending in `/`) the path's files are under.
    folder: Url,
    files: Vec<ObjectMeta>,
}

/// Splits a path at its first glob character: the folder before it, and the pattern.
fn split_glob(path: &str) -> (&str, Option<&str>) {
    match path.find(['*', '?', '[']) {
        Some(at) => {
            let cut = path[..at].rfind('/').map_or(0, |i| i + 1);
            (&path[..cut], Some(&path[cut..]))
        }
        None => (path, None),
    }
}

fn is_remote(path: &str) -> bool {
    path.contains("://") && !path.starts_with("file://")
}

fn with_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    url
}

fn missing(path: &str, reason: &str) -> Error {
    Error::EmptyLocation {
        location: path.to_string(),
        reason: reason.to_string(),
    }
}

/// Finds the files one path names, after checking the session may read there.
async fn resolve(
    ctx: &ReadContext<'_>,
    path: &str,
    format: Option<TableFormat>,
) -> Result<Resolved> {
    let trimmed = path.trim();
    if trimmed.is_empty() {
        return Err(missing(path, "is empty"));
    }
    let (base, pattern) = split_glob(trimmed);
    // The place listed: a folder (for a glob, or a folder path) or a file.
    let (place, local_dir) = if is_remote(base) {
        let url =
            Url::parse(base).map_err(|e| missing(path, &format!("is not a valid URL ({e})")))?;
        (url, None)
    } else {
        let local = base.strip_prefix("file://").unwrap_or(base);
        let local = if local.is_empty() { "." } else { local };
        let absolute = std::env::current_dir()
            .map_err(|e| {
                missing(
                    path,
                    &format!("cannot be found: the current folder is unreadable ({e})"),
                )
            })?
            .join(local);
        let real = std::fs::canonicalize(&absolute).map_err(|_| missing(path, "does not exist"))?;
        let is_dir = real.is_dir();
        let url = if is_dir {
            Url::from_directory_path(&real)
        } else {
            Url::from_file_path(&real)
        }
        .map_err(|_| missing(path, "is not a usable path"))?;
        (url, Some(is_dir))
    };
    ctx.policy
        .admit_location(place.as_str(), &ctx.roots)
        .map_err(|e| match e {
            Error::LocationNotAllowed { .. } => Error::LocationNotAllowed {
                location: path.to_string(),
            },
            other => other,
        })?;
    let store = ctx.stores.get_store(&place).map_err(Error::DataFusion)?;
    let explain = |e: object_store::Error| {
        Error::Unsupported(strata_catalog::explain_storage_error(
            &e,
            ctx.stores.s3(),
            place.host_str().unwrap_or_default(),
        ))
    };
    // A file named outright: read whatever its name, as the function says.
    if pattern.is_none() && local_dir != Some(true) && !place.path().ends_with('/') {
        match store.head(&url_path(&place)?).await {
            Ok(meta) => {
                let mut folder = place.clone();
                if let Ok(mut segments) = folder.path_segments_mut() {
                    segments.pop();
                }
                return Ok(Resolved {
                    folder: with_slash(folder),
                    files: vec![meta],
                });
            }
            Err(object_store::Error::NotFound { .. }) if local_dir.is_none() => {}
            Err(object_store::Error::NotFound { .. }) => {
                return Err(missing(path, "does not exist"));
            }
            Err(e) => return Err(explain(e)),
        }
    }
    let folder = with_slash(place);
    let prefix = url_path(&folder)?;
    let mut files = infer::list_data_files(&store, &prefix).await?;
    if let Some(pattern) = pattern {
        let glob = glob::Pattern::new(pattern)
            .map_err(|e| Error::Unsupported(format!("'{path}' is not a usable glob: {e}")))?;
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        files.retain(|f| {
            glob.matches_with(
                &infer::relative_parts(&prefix, &f.location).join("/"),
                options,
            )
        });
        if files.is_empty() {
            return Err(missing(path, "matches no files"));
        }
    } else {
        if files.is_empty() {
            let exists = futures::StreamExt::next(&mut store.list(Some(&prefix)))
                .await
                .is_some();
            return Err(missing(
                path,
                if exists {
                    "holds no data files"
                } else {
                    "does not exist"
                },
            ));
        }
        // A folder: its files of the format read (files of other formats beside them are
        // left out, as the raw zone leaves them out).
        let format = match format {
            Some(f) => f,
            None => infer::detect_format(path, &files)?,
        };
        files.retain(|f| {
            infer::format_of(f.location.filename().unwrap_or_default()).is_none_or(|x| x == format)
        });
    }
    Ok(Resolved { folder, files })
}

/// The folder every one of `folders` is under.
fn common_folder(path: &str, folders: &[Url]) -> Result<Url> {
    let Some(first) = folders.first() else {
        return Err(missing(path, "names no files"));
    };
    let key = |u: &Url| crate::providers::stores::store_key(u);
    if let Some(other) = folders.iter().find(|u| key(u) != key(first)) {
        return Err(Error::Unsupported(format!(
            "{path}: one read takes files from one place, but they are in {} and {}; read each with its own function and combine them with UNION ALL",
            key(first),
            key(other)
        )));
    }
    let segments = |u: &Url| -> Vec<String> {
        u.path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut common = segments(first);
    for u in &folders[1..] {
        let s = segments(u);
        let same = common.iter().zip(&s).take_while(|(a, b)| a == b).count();
        common.truncate(same);
    }
    let mut url = first.clone();
    url.set_path(&format!(
        "/{}",
        common.iter().map(|s| format!("{s}/")).collect::<String>()
    ));
    Ok(url)
}

/// The folder partitions are read from: `folder` without its trailing `key=value` folders,
/// so that `data/year=2024/*.parquet` has a `year` column.
fn partition_root(folder: &Url) -> Url {
    let mut segments: Vec<&str> = folder.path().split('/').filter(|s| !s.is_empty()).collect();
    while segments
        .last()
        .is_some_and(|s| s.split_once('=').is_some_and(|(k, _)| !k.is_empty()))
    {
        segments.pop();
    }
    let mut url = folder.clone();
    url.set_path(&format!(
        "/{}",
        segments.iter().map(|s| format!("{s}/")).collect::<String>()
    ));
    url
}

/// The table of a read: its files found, partitions and schema inferred, as the raw zone
/// would register them.
pub(crate) async fn open(
    ctx: &ReadContext<'_>,
    state: &SessionState,
    read: &FileRead,
) -> Result<Arc<dyn TableProvider>> {
    let label = read.label();
    let named_format = read.format();
    let mut folders = vec![];
    let mut files: Vec<ObjectMeta> = vec![];
    for path in &read.paths {
        let resolved = resolve(ctx, path, named_format).await?;
        folders.push(resolved.folder);
        files.extend(resolved.files);
    }
    let format = match named_format {
        Some(f) => f,
        None => infer::detect_format(&label, &files)?,
    };
    let options = ReadOptions::parse(read, format)?;
    files.sort_by(|a, b| a.location.cmp(&b.location));
    files.dedup_by(|a, b| a.location == b.location);
    let mut folder = common_folder(&label, &folders)?;
    if options.hive != Some(false) {
        folder = partition_root(&folder);
    }
    let location = folder.to_string();
    let root = url_path(&folder)?;
    let store = ctx.stores.get_store(&folder).map_err(Error::DataFusion)?;
    let mut entry = TableEntry::new(RAW_ZONE, "files", format, &location);
    let mut table_options = std::collections::BTreeMap::new();
    let mut extension = infer::common_extension(&files);
    match options.gzip {
        Some(true) if !extension.ends_with(".gz") => extension.push_str(".gz"),
        Some(false) => extension = extension.trim_end_matches(".gz").to_string(),
        _ => {}
    }
    table_options.insert(OPT_FILE_EXTENSION.to_string(), extension);
    if let Some(header) = options.header {
        table_options.insert("has_header".to_string(), header.to_string());
    }
    if let Some(d) = &options.delimiter {
        table_options.insert("delimiter".to_string(), d.clone());
    }
    if options.ignore_errors {
        table_options.insert(OPT_SKIP_MALFORMED.to_string(), "true".to_string());
    }
    let infer_records = options.sample_size.unwrap_or(DEFAULT_INFER_RECORDS);
    table_options.insert(OPT_INFER_RECORDS.to_string(), infer_records.to_string());
    entry.options = table_options;
    entry.files = Some(
        files
            .iter()
            .map(|f| DataFile {
                path: fileset::relative(&root, &f.location),
                size: f.size,
            })
            .collect(),
    );
    let partitions = if options.hive == Some(false) {
        vec![]
    } else {
        infer::discover_partitions(&location, &root, &files)?
    };
    entry.partition_columns = partitions
        .iter()
        .map(|(name, t)| PartitionColumn {
            name: name.clone(),
            data_type: t.to_string(),
        })
        .collect();
    let schema = match format {
        TableFormat::Json => {
            infer::infer_json_schema(
                &location,
                &store,
                &files,
                infer_records,
                options.ignore_errors,
            )
            .await
            .map_err(|e| match e {
                // The remedy is the read's option, not a table's.
                Error::BadFile { path, line, reason } => Error::BadFile {
                    path,
                    line,
                    reason: reason.replace(
                        "set OPTIONS ('skip_malformed' 'true')",
                        &format!("read with ignore_errors = true: {label}"),
                    ),
                },
                other => other,
            })?
        }
        _ => {
            let file_format = file_format_named(&entry, ctx.counters, &label, true)?;
            file_format
                .infer_schema(state, &store, &files)
                .await?
                .as_ref()
                .clone()
        }
    };
    let schema = infer::file_columns(&schema, &partitions);
    entry.schema = Some(
        serde_json::to_value(&schema)
            .map_err(|e| Error::Unsupported(format!("cannot hold the schema of {label}: {e}")))?,
    );
    Ok(Arc::new(StrataTable::for_path_read(
        entry,
        ctx.counters,
        label,
    )?))
}

/// The `read_*` table functions: each finds the table its call was prepared as.
#[derive(Debug)]
pub(crate) struct ReadFunction {
    name: &'static str,
    prepared: Arc<Prepared>,
}

/// Tables of `read_*` calls resolved before planning, by the key each call was rewritten to.
#[derive(Debug, Default)]
pub(crate) struct Prepared(std::sync::Mutex<HashMap<String, Arc<dyn TableProvider>>>);

impl Prepared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn TableProvider>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The table functions to register on a session.
pub(crate) fn functions(
    prepared: &Arc<Prepared>,
) -> Vec<(&'static str, Arc<dyn TableFunctionImpl>)> {
    FUNCTIONS
        .iter()
        .map(|(name, _)| {
            let f: Arc<dyn TableFunctionImpl> = Arc::new(ReadFunction {
                name,
                prepared: Arc::clone(prepared),
            });
            (*name, f)
        })
        .collect()
}

impl TableFunctionImpl for ReadFunction {
    fn call(&self, args: &[Expr]) -> DFResult<Arc<dyn TableProvider>> {
        if let [Expr::Literal(ScalarValue::Utf8(Some(key)), _)] = args
            && key.starts_with(KEY_PREFIX)
            && let Some(table) = self.prepared.lock().get(key)
        {
            return Ok(Arc::clone(table));
        }
        Err(DataFusionError::External(Box::new(Error::Unsupported(
            format!(
                "{}(…) reads files in statements strata plans; run it as a statement of its own",
                self.name
            ),
        ))))
    }
}

/// The `read_*` calls of a statement, resolved: on drop, their tables are forgotten (the
/// plan holds them).
pub(crate) struct PreparedCalls {
    prepared: Arc<Prepared>,
    keys: Vec<String>,
}

impl Drop for PreparedCalls {
    fn drop(&mut self) {
        let mut map = self.prepared.lock();
        for key in &self.keys {
            map.remove(key);
        }
    }
}

/// Resolves every `read_*(…)` call of a statement and rewrites its arguments to the key its
/// table is kept under, until the returned guard drops.
pub(crate) async fn prepare_calls(
    ctx: &ReadContext<'_>,
    state: &SessionState,
    prepared: &Arc<Prepared>,
    statement: &mut datafusion::sql::parser::Statement,
) -> Result<PreparedCalls> {
    let mut finder = Calls::default();
    visit_statement(statement, &mut finder);
    if let Some(error) = finder.error {
        return Err(error);
    }
    let mut guard = PreparedCalls {
        prepared: Arc::clone(prepared),
        keys: vec![],
    };
    for (key, read) in finder.found {
        let table = open(ctx, state, &read).await?;
        prepared.lock().insert(key.clone(), table);
        guard.keys.push(key);
    }
    Ok(guard)
}

fn visit_statement<V: VisitorMut<Break = ()>>(
    statement: &mut datafusion::sql::parser::Statement,
    visitor: &mut V,
) {
    use datafusion::sql::parser::{CopyToSource, Statement as DF};
    match statement {
        DF::Statement(s) => {
            let _ = s.visit(visitor);
        }
        DF::Explain(e) => visit_statement(&mut e.statement, visitor),
        DF::CopyTo(c) => {
            if let CopyToSource::Query(q) = &mut c.source {
                let _ = q.visit(visitor);
            }
        }
        DF::CreateExternalTable(_) | DF::Reset(_) => {}
    }
}

/// Finds `read_*` calls and rewrites each to its key.
#[derive(Default)]
struct Calls {
    found: Vec<(String, FileRead)>,
    error: Option<Error>,
}

impl VisitorMut for Calls {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            args: Some(args),
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
            return ControlFlow::Continue(());
        };
        let lower = ident.value.to_ascii_lowercase();
        let Some((function, _)) = FUNCTIONS.iter().find(|(n, _)| *n == lower) else {
            return ControlFlow::Continue(());
        };
        match read_of(function, &args.args) {
            Ok(read) => {
                let key = format!("{KEY_PREFIX}{}", next_key());
                args.args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(
                    ast::Expr::Value(Value::SingleQuotedString(key.clone()).into()),
                ))];
                self.found.push((key, read));
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}

fn next_key() -> u64 {
    static KEYS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    KEYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A call's arguments as a read: the path (or a list of paths) first, then `name = value`
/// options.
fn read_of(function: &'static str, args: &[FunctionArg]) -> Result<FileRead> {
    let usage = || {
        Error::Unsupported(format!(
            "{function} takes a path, a glob or a list of them, then options: {function}('data/*.{}', hive_partitioning = true)",
            match FUNCTIONS
                .iter()
                .find(|(n, _)| *n == function)
                .map(|(_, f)| *f)
            {
                Some(TableFormat::Csv) => "csv",
                Some(TableFormat::Json) => "ndjson",
                _ => "parquet",
            }
        ))
    };
    let mut read = FileRead {
        function: Some(function),
        paths: vec![],
        options: vec![],
    };
    for (i, arg) in args.iter().enumerate() {
        let (name, value) = match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(ast::Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            })) if i > 0 => match left.as_ref() {
                ast::Expr::Identifier(name) => (Some(name.value.clone()), right.as_ref()),
                _ => return Err(usage()),
            },
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => (None, e),
            FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(e),
                ..
            } => (Some(name.value.clone()), e),
            _ => return Err(usage()),
        };
        match (i, name) {
            (0, None) => read.paths = paths_of(value).ok_or_else(usage)?,
            (_, Some(name)) => {
                let text = option_text(value).ok_or_else(|| {
                    Error::Unsupported(format!(
                        "{function}: option '{name}' takes a plain value (a string, number or true/false), not {value}"
                    ))
                })?;
                read.options.push((name.to_ascii_lowercase(), text));
            }
            _ => return Err(usage()),
        }
    }
    if read.paths.is_empty() {
        return Err(usage());
    }
    Ok(read)
}

fn string_of(expr: &ast::Expr) -> Option<String> {
    match expr {
        ast::Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn paths_of(expr: &ast::Expr) -> Option<Vec<String>> {
    match expr {
        ast::Expr::Array(array) => array.elem.iter().map(string_of).collect(),
        other => string_of(other).map(|s| vec![s]),
    }
}

fn option_text(expr: &ast::Expr) -> Option<String> {
    match expr {
        ast::Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            Value::Number(n, _) => Some(n.to_string()),
            Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => option_text(expr).map(|t| format!("-{t}")),
        ast::Expr::Identifier(i) => Some(i.value.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_globs() {
        assert!(looks_like_path("data/x.parquet"));
        assert!(looks_like_path("x.CSV"));
        assert!(looks_like_path("s3://bucket/logs"));
        assert!(!looks_like_path("sales"));
        assert!(!looks_like_path("t@v3"));
        assert_eq!(split_glob("data/y=1/*.csv"), ("data/y=1/", Some("*.csv")));
        assert_eq!(split_glob("*.csv"), ("", Some("*.csv")));
        assert_eq!(split_glob("data/x.csv"), ("data/x.csv", None));
        let folder = Url::parse("s3://b/data/year=2024/month=1/").expect("url");
        assert_eq!(partition_root(&folder).as_str(), "s3://b/data/");
    }
}
