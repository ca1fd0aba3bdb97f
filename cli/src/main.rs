//! `strata`: the lakehouse SQL engine's command line. Arguments only; the loops live in
//! `exec.rs`.

/// Prints a line on stdout. A closed stdout (its reader, such as `head`, has had enough)
/// ends the process quietly with success, as it does for the usual command-line tools.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(crate::exec::Stdout, $($arg)*) {
            crate::exec::exit_if_closed(&e.into());
        }
    }};
}

/// Prints a line on stderr; a closed stderr is ignored, never a panic.
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod bench;
mod command;
mod demo;
mod exec;
mod helper;
mod print_format;
mod serve;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use strata_engine::Session;

use crate::exec::Printer;

/// mimalloc keeps freed memory for reuse, where the system allocator returns large blocks to
/// the OS and pays page faults to touch fresh ones again: hash-join tables, decoded Parquet
/// pages and batches are allocated and freed many times a query.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use crate::print_format::PrintFormat;

/// strata: SQL over a lakehouse warehouse of raw, processed and curated zones.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about)]
struct Args {
    /// Warehouse folder, file:// URL or s3://bucket/prefix [default: $STRATA_WAREHOUSE, else
    /// `warehouse` in the config file, else a folder in the user's data directory]. Created
    /// with its zones on first use (a bucket must exist).
    #[arg(
        long,
        short = 'w',
        env = "STRATA_WAREHOUSE",
        hide_env = true,
        global = true
    )]
    warehouse: Option<String>,

    /// Config file [default: $STRATA_CONFIG, else ./strata.toml if there is one]: S3
    /// settings, zone roots, caching.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,

    /// Memory the queries may hold at once, e.g. 4GiB. Sorts, aggregations and joins that
    /// need more spill to disk (see --spill-dir); another operator needing more fails with
    /// "resources exhausted" [default: `memory_limit` in the config file, else unlimited].
    #[arg(long, value_name = "SIZE", global = true)]
    memory_limit: Option<String>,

    /// Folder for the spill files of queries over --memory-limit, created if missing
    /// [default: `spill_dir` in the config file, else the system's temporary folder].
    #[arg(long, value_name = "DIR", global = true)]
    spill_dir: Option<PathBuf>,

    /// Run queries on the cluster whose scheduler is at HOST:PORT (see `strata scheduler`):
    /// the scans and compute run on its executors; catalog reads and commits stay here
    /// [default: `cluster` in the config file].
    #[arg(long, value_name = "HOST:PORT", env = "STRATA_CLUSTER", global = true)]
    cluster: Option<String>,

    #[command(flatten)]
    s3: S3Flags,

    /// Run these statements (';'-separated; may be repeated) and exit.
    #[arg(long = "command", short = 'c', allow_hyphen_values = true)]
    commands: Vec<String>,

    /// Run the statements of this SQL file (may be repeated) and exit.
    #[arg(long = "file", short = 'f')]
    files: Vec<PathBuf>,

    /// How results are printed.
    #[arg(long, value_enum, default_value = "table")]
    format: PrintFormat,

    /// Rows a table shows at most, its first and last ones; 0 shows all. Only the table
    /// format is cut: csv, tsv, json and ndjson print every row.
    #[arg(long, value_name = "N", default_value_t = 40)]
    maxrows: usize,

    /// Zone that unqualified table names resolve to [default: curated].
    #[arg(long)]
    zone: Option<String>,

    /// Open the demo warehouse, holding the sample retail data in its raw zone.
    #[arg(long)]
    demo: bool,

    /// Stop a script at its first failing statement (by default the rest still run).
    #[arg(long)]
    stop_on_error: bool,

    #[command(subcommand)]
    command: Option<Commands>,
}

/// S3 settings; each overrides the config file, which overrides the AWS_* variables.
#[derive(Debug, Default, clap::Args)]
struct S3Flags {
    /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 for MinIO [env: AWS_ENDPOINT_URL].
    #[arg(long, value_name = "URL", global = true)]
    s3_endpoint: Option<String>,
    /// S3 region [env: AWS_REGION].
    #[arg(long, value_name = "REGION", global = true)]
    s3_region: Option<String>,
    /// S3 access key id [env: AWS_ACCESS_KEY_ID].
    #[arg(long, value_name = "KEY", global = true)]
    s3_access_key_id: Option<String>,
    /// S3 secret access key; prefer AWS_SECRET_ACCESS_KEY or the config file, which do not
    /// show in the process list.
    #[arg(long, value_name = "SECRET", global = true)]
    s3_secret_access_key: Option<String>,
    /// Allow a plain http:// endpoint [env: AWS_ALLOW_HTTP].
    #[arg(long, global = true)]
    s3_allow_http: bool,
    /// Path-style requests (endpoint/bucket/key) [default: on with --s3-endpoint].
    #[arg(long, value_name = "BOOL", global = true)]
    s3_path_style: Option<bool>,
}

impl S3Flags {
    fn options(&self) -> strata_catalog::S3Options {
        strata_catalog::S3Options {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key_id: self.s3_access_key_id.clone(),
            secret_access_key: self
                .s3_secret_access_key
                .clone()
                .map(strata_catalog::Secret::new),
            allow_http: self.s3_allow_http.then_some(true),
            path_style: self.s3_path_style,
            ..Default::default()
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum Commands {
    /// Run a pipeline: the statements of a SQL file in order, with ${name} variables,
    /// stopping at the first failure. CHECKs right after a write to a Delta table are
    /// checked before readers see the new data.
    Run {
        /// The pipeline's SQL file.
        file: PathBuf,
        /// A value for ${NAME} in the file (repeatable), e.g. --var month=3.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
    /// TPC-H data for benchmarks.
    Tpch {
        #[command(subcommand)]
        action: TpchAction,
    },
    /// Star Schema Benchmark data (derived from the TPC-H generator).
    Ssb {
        #[command(subcommand)]
        action: SsbAction,
    },
    /// Run a benchmark's queries and report their times.
    Bench {
        #[command(subcommand)]
        suite: BenchSuite,
    },
    /// Serve the warehouse over Arrow Flight SQL (ADBC, JDBC, pyarrow) until SIGINT or
    /// SIGTERM. Prints the address it listens on.
    Serve {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
        listen: std::net::SocketAddr,
        /// Require this token: as `authorization: Bearer TOKEN` on every call, or as the
        /// password of the handshake's basic credentials.
        #[arg(
            long,
            value_name = "TOKEN",
            env = "STRATA_AUTH_TOKEN",
            hide_env_values = true
        )]
        auth_token: Option<String>,
        /// Run queries only; anything else is refused with PERMISSION_DENIED.
        #[arg(long)]
        read_only: bool,
        /// A folder or URL prefix outside the warehouse that statements may name
        /// (CREATE EXTERNAL TABLE … LOCATION, COPY … TO); repeatable. Other locations
        /// outside the warehouse and its zones are refused with PERMISSION_DENIED.
        #[arg(long = "allow-path", value_name = "PREFIX")]
        allow_paths: Vec<String>,
        /// Serve TLS with this PEM certificate (chain); needs --tls-key.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Start a cluster's scheduler: it cuts queries into stages and hands their tasks to
    /// executors. Prints the address it listens on.
    Scheduler {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50050")]
        listen: std::net::SocketAddr,
    },
    /// Start a cluster's executor: it registers with a scheduler and runs the tasks it is
    /// given. Prints the address it serves results on.
    Executor {
        /// The scheduler, HOST:PORT.
        #[arg(long, value_name = "HOST:PORT")]
        scheduler: String,
        /// Address to serve results and shuffle data on; port 0 picks a free port.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Tasks to run at once [default: the machine's cores].
        #[arg(long, value_name = "N")]
        cores: Option<usize>,
    },
}

#[derive(Debug, clap::Subcommand)]
enum BenchSuite {
    /// The 22 TPC-H queries, on tables made by `strata tpch gen` (generated first when the
    /// zone lacks them or holds them at another scale factor or format).
    Tpch {
        #[command(flatten)]
        run: BenchRun,
        /// Partition lineitem and orders by year when generating.
        #[arg(long)]
        partitioned: bool,
    },
    /// The 13 Star Schema Benchmark queries, on tables made by `strata ssb gen` (generated
    /// first when the zone lacks them or holds them at another scale factor or format).
    Ssb {
        #[command(flatten)]
        run: BenchRun,
        /// Leave lineorder unpartitioned when generating.
        #[arg(long)]
        unpartitioned: bool,
    },
}

/// What `strata bench` runs, and where.
#[derive(Debug, clap::Args)]
struct BenchRun {
    /// Zone holding the tables.
    #[arg(long, default_value = "processed")]
    zone: String,
    /// Queries to run, e.g. 1,3,5 for TPC-H or 1.1,2.3 for SSB (all by default).
    #[arg(long, value_delimiter = ',')]
    queries: Vec<String>,
    /// Runs of each query: the first is cold, the rest warm.
    #[arg(long, default_value_t = 3)]
    iterations: usize,
    /// Scale factor of the tables; generated at this scale factor when the zone holds
    /// another one [default: the tables there, else 1].
    #[arg(long)]
    sf: Option<f64>,
    /// Storage format of the tables (parquet, delta or json); generated in this format when
    /// the zone holds another one [default: the tables there, else parquet].
    #[arg(long)]
    format: Option<String>,
    /// Write the measurements as JSON here.
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum TpchAction {
    /// Generate the eight TPC-H tables into a zone and register them.
    Gen {
        #[command(flatten)]
        data: GenArgs,
        /// Partition lineitem and orders by the year of their ship and order dates.
        #[arg(long)]
        partitioned: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
enum SsbAction {
    /// Generate the five SSB tables (lineorder, customer, supplier, part, date) into a zone
    /// and register them; lineorder is partitioned by the year of lo_orderdate.
    Gen {
        #[command(flatten)]
        data: GenArgs,
        /// Leave lineorder unpartitioned.
        #[arg(long)]
        unpartitioned: bool,
    },
}

/// What benchmark data to generate, and where.
#[derive(Debug, clap::Args)]
struct GenArgs {
    /// Scale factor, 0.01 to 100: 1 is about 1 GB of CSV-equivalent data (6 million lineitem
    /// or lineorder rows).
    #[arg(long, default_value_t = 1.0)]
    sf: f64,
    /// Zone to write the tables into.
    #[arg(long, default_value = "processed")]
    zone: String,
    /// Storage format of the tables: parquet, delta or json (NDJSON, read schema-on-read).
    #[arg(long, default_value = "parquet")]
    format: String,
}

/// Where strata keeps its own folders.
pub(crate) fn data_dir() -> PathBuf {
    dirs::data_dir()
        .or_else(dirs::home_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("strata")
}

/// The stack of every thread that parses, plans or runs statements. Plans are trees, and
/// parts of the planner walk them recursively: a deep expression must end in an error
/// naming the limit (see `strata_engine::sql::MAX_EXPRESSION_DEPTH`), never in a stack overflow
/// that aborts the process. The memory is reserved, not used, until a statement needs it.
const STACK_SIZE: usize = 64 * 1024 * 1024;

fn main() -> ExitCode {
    let args = Args::parse();
    // The main thread's stack is fixed by the OS; statements run on a thread of our own.
    let main = std::thread::Builder::new()
        .name("strata-main".into())
        .stack_size(STACK_SIZE)
        .spawn(move || run_main(args));
    match main.map(|handle| handle.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => ExitCode::FAILURE,
        Err(e) => {
            say_err!("error: cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_main(args: Args) -> ExitCode {
    if let Err(e) = start_log() {
        say_err!("error: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(STACK_SIZE)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say_err!("error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            crate::exec::exit_if_closed(&e);
            say_err!("error: {}", crate::exec::describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// `STRATA_LOG` asks for what strata and the libraries it runs on log, on standard error:
/// a level (`info`, `debug`) or targets with levels (`ballista_scheduler=debug,warn`).
/// Unset or empty, nothing is logged.
fn start_log() -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let Some(spec) = std::env::var("STRATA_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
    else {
        return Ok(());
    };
    let targets: tracing_subscriber::filter::Targets = spec.trim().parse().map_err(|e| {
        anyhow::anyhow!(
            "STRATA_LOG={spec:?} is not a log level or a list of TARGET=LEVEL ({e}); e.g. STRATA_LOG=info"
        )
    })?;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false),
        )
        .with(targets)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot start the log: {e}"))
}

/// The settings in force: the AWS variables, then the config file, then flags.
fn load_config(args: &Args) -> anyhow::Result<strata_catalog::Config> {
    let mut s3 = strata_catalog::S3Options::from_env()?;
    let mut config = match strata_catalog::Config::discover(args.config.as_deref())? {
        Some((_, config)) => config,
        None => strata_catalog::Config::default(),
    };
    s3.overlay(&config.s3);
    s3.overlay(&args.s3.options());
    config.s3 = s3;
    if let Some(limit) = &args.memory_limit {
        config.memory_limit = Some(limit.clone());
    }
    if let Some(dir) = &args.spill_dir {
        config.spill_dir = Some(dir.to_string_lossy().into_owned());
    }
    Ok(config)
}

/// `strata tpch gen`, `strata ssb gen`.
async fn generate(
    session: &Session,
    suite: bench::Suite,
    data: &GenArgs,
    partitioned: bool,
) -> anyhow::Result<usize> {
    let generation = strata_engine::datagen::Generation {
        suite: suite.name(),
        sf: data.sf,
        zone: data.zone.clone(),
        format: data.format.parse()?,
        partitioned,
    };
    bench::generate_tables(session, suite, generation, &mut exec::Stdout).await
}

/// Gives each zone rooted in a local folder that folder, so a new warehouse shows its
/// three zones (raw/, processed/, curated/) before anything is written to them. Object
/// stores have no folders and need nothing.
fn make_zone_folders(session: &Session) {
    let snapshot = session.catalog().snapshot();
    for zone in snapshot.zone_names() {
        let Ok(entry) = snapshot.zone(&zone) else {
            continue;
        };
        let folder = url::Url::parse(&entry.root)
            .ok()
            .filter(|u| u.scheme() == "file")
            .and_then(|u| u.to_file_path().ok());
        if let Some(folder) = folder
            && let Err(e) = std::fs::create_dir_all(&folder)
        {
            say_err!(
                "warning: cannot create the folder of zone {zone}, {}: {e}",
                folder.display()
            );
        }
    }
}

/// Runs what the arguments ask; returns the number of failed statements.
async fn run(args: Args) -> anyhow::Result<usize> {
    match &args.command {
        Some(Commands::Scheduler { listen }) => {
            let s3 = load_config(&args)?.s3;
            strata_cluster::scheduler::run(*listen, s3, |address| {
                println!("strata scheduler: listening on {address}");
            })
            .await?;
            return Ok(0);
        }
        Some(Commands::Executor {
            scheduler,
            listen,
            cores,
        }) => {
            let config = load_config(&args)?;
            let memory_limit = match &config.memory_limit {
                Some(text) => Some(strata_catalog::parse_size(text).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--memory-limit {text:?} is not a size; write it as 512MiB, 4GiB or a number of bytes"
                    )
                })?),
                None => None,
            };
            let options = strata_cluster::executor::Options {
                scheduler: scheduler.clone(),
                listen: *listen,
                cores: *cores,
                // Progress, one line a task, as the address line; a closed output stops
                // nothing.
                tasks: Some(strata_cluster::executor::TaskDone(std::sync::Arc::new(
                    |line| {
                        use std::io::Write;
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "strata executor: {line}");
                        let _ = out.flush();
                    },
                ))),
                // The executor's own S3 settings: its AWS variables, config file and flags.
                s3: config.s3,
                memory_limit,
            };
            strata_cluster::executor::run(options, |address| {
                println!("strata executor: listening on {address}");
            })
            .await?;
            return Ok(0);
        }
        _ => {}
    }
    let config = load_config(&args)?;
    let location = match (&args.warehouse, &config.warehouse, args.demo) {
        (Some(w), _, _) | (None, Some(w), _) => w.clone(),
        (None, None, true) => demo::default_location().to_string_lossy().to_string(),
        (None, None, false) => data_dir().join("warehouse").to_string_lossy().to_string(),
    };
    let mut session = Session::open_with(&location, &config).await?;
    if let Some(scheduler) = args.cluster.as_ref().or(config.cluster.as_ref()) {
        session = session.with_remote(Arc::new(strata_cluster::Cluster::new(scheduler)?))?;
    }
    let session = Arc::new(session);
    make_zone_folders(&session);
    if args.demo {
        demo::seed(&session).await?;
    }
    if let Some(Commands::Run { file, vars }) = &args.command {
        return exec::run_pipeline(&session, file, vars).await;
    }
    match &args.command {
        Some(Commands::Bench { suite }) => {
            // Partitioning is asked for only when it differs from the suite's default.
            let (suite, run, partitioned) = match suite {
                BenchSuite::Tpch { run, partitioned } => {
                    (bench::Suite::Tpch, run, partitioned.then_some(true))
                }
                BenchSuite::Ssb { run, unpartitioned } => {
                    (bench::Suite::Ssb, run, unpartitioned.then_some(false))
                }
            };
            let options = bench::Options {
                suite,
                zone: run.zone.clone(),
                queries: run.queries.clone(),
                iterations: run.iterations,
                sf: run.sf,
                format: run.format.as_deref().map(str::parse).transpose()?,
                partitioned,
                output: run.output.clone(),
            };
            return bench::run(&session, &options).await;
        }
        Some(Commands::Tpch {
            action: TpchAction::Gen { data, partitioned },
        }) => return generate(&session, bench::Suite::Tpch, data, *partitioned).await,
        Some(Commands::Ssb {
            action:
                SsbAction::Gen {
                    data,
                    unpartitioned,
                },
        }) => return generate(&session, bench::Suite::Ssb, data, !*unpartitioned).await,
        _ => {}
    }
    if let Some(zone) = &args.zone {
        session.use_zone(zone).await?;
    }
    if let Some(Commands::Serve {
        listen,
        auth_token,
        read_only,
        allow_paths,
        tls_cert,
        tls_key,
    }) = &args.command
    {
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(strata_server::Tls::from_files(cert, key)?),
            _ => None,
        };
        let options = strata_server::Options {
            auth_token: auth_token.clone(),
            read_only: *read_only,
            allow_paths: allow_paths.clone(),
            tls,
            ..Default::default()
        };
        serve::serve(session, *listen, options).await?;
        return Ok(0);
    }
    let batch = !args.commands.is_empty() || !args.files.is_empty();
    let interactive = !batch && std::io::stdin().is_terminal();
    let printer = Printer {
        format: args.format,
        footer: args.format == PrintFormat::Table,
        timing: true,
        progress: std::io::stderr().is_terminal(),
        style: print_format::TableStyle {
            max_rows: args.maxrows,
            ..Default::default()
        },
        output: None,
        pager: false,
    };
    if batch {
        let mut failed = 0;
        for command in &args.commands {
            failed += exec::run_text(&session, command, None, &printer, args.stop_on_error).await;
            if failed > 0 && args.stop_on_error {
                return Ok(failed);
            }
        }
        for file in &args.files {
            failed += exec::run_file(&session, file, &printer, args.stop_on_error).await?;
            if failed > 0 && args.stop_on_error {
                return Ok(failed);
            }
        }
        return Ok(failed);
    }
    if !interactive {
        // Statements piped on standard input.
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        return Ok(exec::run_text(&session, &text, None, &printer, args.stop_on_error).await);
    }
    exec::run_repl(session, printer).await?;
    Ok(0)
}
