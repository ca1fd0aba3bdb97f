//! Output formats and printing of results: `table` for people, `csv`, `tsv`, `json` and
//! `ndjson` for scripts (results only, nothing else on stdout).

use std::io::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrintFormat {
    Table,
    Csv,
    Tsv,
    Json,
    Ndjson,
}

impl std::str::FromStr for PrintFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Self as clap::ValueEnum>::from_str(s.trim(), true)
            .map_err(|_| format!("unknown format '{s}'; use table, csv, tsv, json or ndjson"))
    }
}

impl PrintFormat {
    /// Whether messages of statements without a result set are printed.
    pub fn prints_messages(&self) -> bool {
        *self == PrintFormat::Table
    }

    /// Prints one statement's result.
    pub fn print_batches<W: Write>(
        &self,
        out: &mut W,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> anyhow::Result<()> {
        let empty;
        let batches = if batches.is_empty() {
            empty = [RecordBatch::new_empty(Arc::clone(schema))];
            &empty[..]
        } else {
            batches
        };
        match self {
            PrintFormat::Table => {
                writeln!(
                    out,
                    "{}",
                    arrow::util::pretty::pretty_format_batches(batches)?
                )?;
            }
            PrintFormat::Csv | PrintFormat::Tsv => {
                let delimiter = if *self == PrintFormat::Csv {
                    b','
                } else {
                    b'\t'
                };
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .with_delimiter(delimiter)
                    .build(&mut *out);
                for batch in batches {
                    writer.write(&flatten_nested(batch)?)?;
                }
            }
            PrintFormat::Json => {
                let mut writer = arrow::json::ArrayWriter::new(&mut *out);
                for batch in batches {
                    writer.write(batch)?;
                }
                writer.finish()?;
                writeln!(out)?;
            }
            PrintFormat::Ndjson => {
                let mut writer = arrow::json::LineDelimitedWriter::new(&mut *out);
                for batch in batches {
                    writer.write(batch)?;
                }
                writer.finish()?;
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// CSV has no nested values: structs and lists are written as their text form.
fn flatten_nested(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    let nested = |t: &DataType| t.is_nested();
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| nested(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let options = FormatOptions::default();
    let mut fields = vec![];
    let mut columns: Vec<ArrayRef> = vec![];
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if nested(field.data_type()) {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
            let values: Vec<Option<String>> = (0..column.len())
                .map(|i| column.is_valid(i).then(|| formatter.value(i).to_string()))
                .collect();
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(Arc::new(StringArray::from(values)));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(Arc::clone(column));
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
