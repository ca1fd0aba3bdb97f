//! Runs the SQL behaviour tests in `tests/slt/*.slt`, each file on a fresh warehouse in a
//! temporary folder whose raw zone holds a copy of `testdata/retail/`.
//!
//! In statements, `$TESTDATA` is the repository's `testdata/` folder and `$WAREHOUSE` the
//! warehouse folder. `cargo test -p strata-engine --test sqllogic -- --complete` rewrites the
//! expected results from what strata returns; a file name given as an argument runs only the
//! files whose names contain it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use strata_engine::{Output, Session};

struct StrataDb {
    session: Arc<Session>,
    testdata: String,
    warehouse: String,
}

#[derive(Debug)]
struct TestError(String);

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TestError {}

#[async_trait::async_trait]
impl AsyncDB for StrataDb {
    type Error = TestError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, TestError> {
        let sql = sql
            .replace("$TESTDATA", &self.testdata)
            .replace("$WAREHOUSE", &self.warehouse);
        let output = self
            .session
            .execute(&sql)
            .await
            .map_err(|e| TestError(e.to_string()))?;
        match output {
            Output::Done(_) => Ok(DBOutput::StatementComplete(0)),
            Output::Rows(stream) => {
                let schema = stream.schema();
                let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(stream)
                    .await
                    .map_err(|e| TestError(strata_engine::Error::from(e).to_string()))?;
                let types = schema
                    .fields()
                    .iter()
                    .map(|f| match f.data_type() {
                        t if t.is_integer() => DefaultColumnType::Integer,
                        t if t.is_floating() || matches!(t, DataType::Decimal128(..)) => {
                            DefaultColumnType::FloatingPoint
                        }
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                            DefaultColumnType::Text
                        }
                        _ => DefaultColumnType::Any,
                    })
                    .collect();
                // Paths differ per machine and run: print them as the variables tests use.
                let rows = rows_of(&batches)?
                    .into_iter()
                    .map(|row| {
                        row.into_iter()
                            .map(|cell| {
                                cell.replace(&self.warehouse, "$WAREHOUSE")
                                    .replace(&self.testdata, "$TESTDATA")
                            })
                            .collect()
                    })
                    .collect();
                Ok(DBOutput::Rows { types, rows })
            }
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "strata"
    }
}

fn rows_of(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, TestError> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = vec![];
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TestError(e.to_string()))?;
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| {
                        let s = f.value(row).to_string();
                        if s.is_empty() {
                            "(empty)".to_string()
                        } else {
                            s
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

async fn run_file(path: &Path, complete: bool) -> Result<(), String> {
    let testdata: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let testdata = testdata.canonicalize().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let warehouse = dir.path().join("warehouse");
    copy_dir(&testdata.join("retail"), &warehouse.join("raw")).map_err(|e| e.to_string())?;
    let session = Arc::new(
        Session::open(&warehouse.to_string_lossy())
            .await
            .map_err(|e| e.to_string())?,
    );
    let testdata = testdata.to_string_lossy().to_string();
    let warehouse = warehouse.to_string_lossy().to_string();
    let mut runner = Runner::new(move || {
        let db = StrataDb {
            session: Arc::clone(&session),
            testdata: testdata.clone(),
            warehouse: warehouse.clone(),
        };
        async move { Ok::<_, TestError>(db) }
    });
    if complete {
        runner
            .update_test_file(
                path,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            )
            .await
            .map_err(|e| e.to_string())
    } else {
        runner
            .run_file_async(path)
            .await
            .map_err(|e| e.display(true).to_string())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let complete = args.iter().any(|a| a == "--complete");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| {
            filters.is_empty()
                || filters
                    .iter()
                    .any(|f| p.to_string_lossy().contains(f.as_str()))
        })
        .collect();
    files.sort();
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        match run_file(file, complete).await {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED\n{e}");
            }
        }
    }
    println!("\nsqllogictest: {passed} passed, {failed} failed");
    if failed > 0 || files.is_empty() {
        std::process::exit(1);
    }
}
