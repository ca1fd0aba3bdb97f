//! Errors reading Parquet files name the file and say what to do: a file whose footer cannot
//! be read (cut short, or not Parquet at all) is reported as such, with its path, rather than
//! as a bare "Corrupt footer".

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::physical_plan::{ParquetFileReaderFactory, ParquetSource};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion_datasource::PartitionedFile;
use datafusion_datasource::source::DataSourceExec;
use futures::FutureExt;
use futures::future::BoxFuture;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;

use crate::error::Error;

/// How a file of a store is shown: a local file as its absolute path, an object with its
/// bucket's URL, from what the store says it is.
pub(crate) fn shown_path(store: &dyn std::fmt::Display, path: &str) -> String {
    let store = store.to_string();
    if store.contains("LocalFileSystem") {
        return format!("/{path}");
    }
    if let Some(at) = store.find("AmazonS3(") {
        let rest = &store[at + "AmazonS3(".len()..];
        if let Some(bucket) = rest.split(')').next().filter(|b| !b.is_empty()) {
            return format!("s3://{bucket}/{path}");
        }
    }
    path.to_string()
}

/// The error for a Parquet file whose metadata cannot be read, naming the file.
pub(crate) fn bad_parquet_file(path: &str, detail: &str) -> Error {
    let detail = detail
        .trim_start_matches("Parquet error: ")
        .trim_start_matches("Parquet error: ")
        .trim();
    let lower = detail.to_ascii_lowercase();
    let reason = if ["footer", "magic", "eof", "file size", "invalid parquet"]
        .iter()
        .any(|s| lower.contains(s))
    {
        format!(
            "it is not a valid Parquet file: it was cut short or is not Parquet at all ({detail}); remove or replace it"
        )
    } else {
        format!("its Parquet metadata is damaged ({detail}); remove or replace it")
    };
    Error::BadFile {
        path: path.to_string(),
        line: None,
        reason,
    }
}

/// A Parquet error raised for one file, as a DataFusion error naming it. Storage errors keep
/// their own form (they name the object already, and the engine tells missing files apart).
pub(crate) fn name_file(path: &str, e: DataFusionError) -> DataFusionError {
    match e {
        DataFusionError::ParquetError(inner) => match *inner {
            ParquetError::External(ext) => {
                DataFusionError::ParquetError(Box::new(ParquetError::External(ext)))
            }
            other => {
                DataFusionError::External(Box::new(bad_parquet_file(path, &other.to_string())))
            }
        },
        other => other,
    }
}

/// The plan DataFusion's Parquet format made, with its reader factory wrapped so that
/// metadata errors name their file. Any other plan is returned as it is.
pub(crate) fn with_named_errors(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    let Some(exec) = plan.downcast_ref::<DataSourceExec>() else {
        return plan;
    };
    let Some((conf, parquet)) = exec.downcast_to_file_source::<ParquetSource>() else {
        return plan;
    };
    let Some(inner) = parquet.parquet_file_reader_factory().cloned() else {
        return plan;
    };
    let base = conf.object_store_url.as_str();
    let base = if base.starts_with("file://") {
        "/".to_string()
    } else {
        format!("{}/", base.trim_end_matches('/'))
    };
    let source = parquet
        .clone()
        .with_parquet_file_reader_factory(Arc::new(NamingReaderFactory { inner, base }));
    let mut conf = conf.clone();
    conf.file_source = Arc::new(source);
    DataSourceExec::from_data_source(conf)
}

/// Hands out readers whose metadata errors name their file.
#[derive(Debug)]
struct NamingReaderFactory {
    inner: Arc<dyn ParquetFileReaderFactory>,
    /// What file paths are shown after: `/` for local files, `s3://bucket/`.
    base: String,
}

impl ParquetFileReaderFactory for NamingReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let path = format!("{}{}", self.base, partitioned_file.object_meta.location);
        let inner = self.inner.create_reader(
            partition_index,
            partitioned_file,
            metadata_size_hint,
            metrics,
        )?;
        Ok(Box::new(NamingReader { inner, path }))
    }
}

struct NamingReader {
    inner: Box<dyn AsyncFileReader + Send>,
    path: String,
}

impl AsyncFileReader for NamingReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        let path = self.path.clone();
        self.inner
            .get_metadata(options)
            .map(move |result| {
                result.map_err(|e| match e {
                    // Storage errors name the object already.
                    ParquetError::External(ext) => ParquetError::External(ext),
                    other => ParquetError::External(Box::new(bad_parquet_file(
                        &path,
                        &other.to_string(),
                    ))),
                })
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_errors_name_the_file_and_say_what_to_do() {
        let e = bad_parquet_file(
            "lake/raw/sales/x.parquet",
            "Parquet error: Invalid Parquet file. Corrupt footer",
        )
        .to_string();
        assert!(e.contains("lake/raw/sales/x.parquet"), "{e}");
        assert!(e.contains("not a valid Parquet file"), "{e}");
        assert!(e.contains("remove or replace it"), "{e}");
    }
}
