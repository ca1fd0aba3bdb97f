//! Output formats and printing of results: `table` for people, `csv`, `tsv`, `json` and
//! `ndjson` for scripts (results only, nothing else on stdout).
//!
//! Results print as their batches arrive. The exports write each batch and forget it, so a
//! result of any size prints in flat memory; the table keeps only the rows it will show,
//! its first and last ones, and lays them out when the result ends.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::json::writer::{JsonArray, LineDelimited};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

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

impl std::fmt::Display for PrintFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrintFormat::Table => "table",
            PrintFormat::Csv => "csv",
            PrintFormat::Tsv => "tsv",
            PrintFormat::Json => "json",
            PrintFormat::Ndjson => "ndjson",
        })
    }
}

/// How the table format lays out a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStyle {
    /// Rows shown at most, half from the start and half from the end; 0 shows all.
    pub max_rows: usize,
    /// The text of a NULL value.
    pub null: String,
    /// Columns narrow to fit this many characters (a terminal's width), cutting long
    /// values with `…`; `None` keeps every value whole.
    pub width: Option<usize>,
    /// One block per row, a line per column, instead of a row per line.
    pub expanded: bool,
}

impl Default for TableStyle {
    fn default() -> Self {
        Self {
            max_rows: 40,
            null: "NULL".into(),
            width: None,
            expanded: false,
        }
    }
}

impl PrintFormat {
    /// Whether messages of statements without a result set are printed.
    pub fn prints_messages(&self) -> bool {
        *self == PrintFormat::Table
    }

    /// Prints a result held in memory.
    pub fn print_batches<W: Write>(
        &self,
        out: &mut W,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        style: &TableStyle,
    ) -> anyhow::Result<Shown> {
        let mut printer = ResultPrinter::new(*self, out, Arc::clone(schema), style.clone());
        for batch in batches {
            printer.write(batch)?;
        }
        printer.finish()
    }
}

/// How many rows a result had, and how many of them the table showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    pub rows: usize,
    pub shown: usize,
}

/// Prints one result batch by batch.
pub struct ResultPrinter<W: Write> {
    sink: Sink<W>,
    rows: usize,
}

enum Sink<W: Write> {
    Table(Box<TableBuffer>, W),
    Csv {
        writer: Box<arrow::csv::Writer<W>>,
        schema: SchemaRef,
        written: bool,
    },
    Json(arrow::json::Writer<W, JsonArray>),
    Ndjson(arrow::json::Writer<W, LineDelimited>),
}

impl<W: Write> ResultPrinter<W> {
    pub fn new(format: PrintFormat, out: W, schema: SchemaRef, style: TableStyle) -> Self {
        // JSON keeps the keys of NULL values: a row's object always has every column.
        let json = arrow::json::WriterBuilder::new().with_explicit_nulls(true);
        let sink = match format {
            PrintFormat::Table => Sink::Table(Box::new(TableBuffer::new(schema, style)), out),
            PrintFormat::Csv | PrintFormat::Tsv => Sink::Csv {
                writer: Box::new(
                    arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .with_delimiter(if format == PrintFormat::Csv {
                            b','
                        } else {
                            b'\t'
                        })
                        .build(out),
                ),
                schema,
                written: false,
            },
            PrintFormat::Json => Sink::Json(json.build(out)),
            PrintFormat::Ndjson => Sink::Ndjson(json.build(out)),
        };
        Self { sink, rows: 0 }
    }

    /// Prints a batch (the table keeps it if it holds rows to show).
    pub fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        self.rows += batch.num_rows();
        match &mut self.sink {
            Sink::Table(table, _) => table.push(batch),
            Sink::Csv {
                writer, written, ..
            } => {
                writer.write(&flatten_nested(batch)?)?;
                *written = true;
            }
            Sink::Json(writer) => writer.write(batch)?,
            Sink::Ndjson(writer) => writer.write(batch)?,
        }
        Ok(())
    }

    /// Ends the result: the table is laid out, CSV gets its header even without rows, JSON
    /// its closing bracket.
    pub fn finish(self) -> anyhow::Result<Shown> {
        let rows = self.rows;
        let mut shown = rows;
        match self.sink {
            Sink::Table(table, mut out) => {
                shown = table.render(&mut out)?;
                out.flush()?;
            }
            Sink::Csv {
                mut writer,
                schema,
                written,
            } => {
                if !written {
                    writer.write(&flatten_nested(&RecordBatch::new_empty(schema))?)?;
                }
                writer.into_inner().flush()?;
            }
            Sink::Json(mut writer) => {
                writer.finish()?;
                let mut out = writer.into_inner();
                writeln!(out)?;
                out.flush()?;
            }
            Sink::Ndjson(mut writer) => {
                writer.finish()?;
                writer.into_inner().flush()?;
            }
        }
        Ok(Shown { rows, shown })
    }
}

/// The rows a table will show: the first half of `max_rows` as they arrive, and a window
/// over the last rows that moves on with every batch.
struct TableBuffer {
    schema: SchemaRef,
    style: TableStyle,
    head: Vec<RecordBatch>,
    head_rows: usize,
    tail: VecDeque<RecordBatch>,
    tail_rows: usize,
    rows: usize,
}

impl TableBuffer {
    fn new(schema: SchemaRef, style: TableStyle) -> Self {
        Self {
            schema,
            style,
            head: vec![],
            head_rows: 0,
            tail: VecDeque::new(),
            tail_rows: 0,
            rows: 0,
        }
    }

    /// Rows kept from the start and from the end.
    fn limits(&self) -> (usize, usize) {
        let max = self.style.max_rows;
        if max == 0 {
            (usize::MAX, 0)
        } else {
            (max - max / 2, max / 2)
        }
    }

    fn push(&mut self, batch: &RecordBatch) {
        let (head_limit, tail_limit) = self.limits();
        self.rows += batch.num_rows();
        let mut rest = batch.clone();
        if self.head_rows < head_limit {
            let take = rest.num_rows().min(head_limit - self.head_rows);
            if take > 0 {
                self.head.push(rest.slice(0, take));
                self.head_rows += take;
            }
            rest = rest.slice(take, rest.num_rows() - take);
        }
        if tail_limit == 0 || rest.num_rows() == 0 {
            return;
        }
        self.tail_rows += rest.num_rows();
        self.tail.push_back(rest);
        while let Some(front) = self.tail.front() {
            if self.tail_rows - front.num_rows() >= tail_limit {
                self.tail_rows -= front.num_rows();
                self.tail.pop_front();
            } else {
                break;
            }
        }
    }

    /// Lays the kept rows out; returns how many it showed.
    fn render<W: Write>(&self, out: &mut W) -> anyhow::Result<usize> {
        let (_, tail_limit) = self.limits();
        let gap = self.style.max_rows != 0 && self.rows > self.style.max_rows;
        let mut tail: Vec<RecordBatch> = self.tail.iter().cloned().collect();
        if gap && self.tail_rows > tail_limit {
            // Only the last `tail_limit` rows of the window are shown.
            let skip = self.tail_rows - tail_limit;
            tail[0] = tail[0].slice(skip, tail[0].num_rows() - skip);
        }
        let options = FormatOptions::default().with_null(&self.style.null);
        let text = |batches: &[RecordBatch]| -> anyhow::Result<Vec<Vec<String>>> {
            let mut rows = vec![];
            for batch in batches {
                let flat = flatten_nested_with(batch, &options)?;
                let formatters = flat
                    .columns()
                    .iter()
                    .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                    .collect::<Result<Vec<_>, _>>()?;
                for row in 0..flat.num_rows() {
                    rows.push(
                        formatters
                            .iter()
                            .map(|f| f.value(row).to_string())
                            .collect(),
                    );
                }
            }
            Ok(rows)
        };
        let head = text(&self.head)?;
        let tail = text(&tail)?;
        let shown = head.len() + tail.len();
        if self.style.expanded {
            self.render_expanded(out, &head, &tail, gap)?;
        } else {
            self.render_table(out, &head, &tail, gap)?;
        }
        Ok(shown)
    }

    fn render_table<W: Write>(
        &self,
        out: &mut W,
        head: &[Vec<String>],
        tail: &[Vec<String>],
        gap: bool,
    ) -> anyhow::Result<()> {
        let fields = self.schema.fields();
        if fields.is_empty() {
            return Ok(());
        }
        let numeric: Vec<bool> = fields.iter().map(|f| f.data_type().is_numeric()).collect();
        let header: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
        let mut widths: Vec<usize> = header.iter().map(|h| text_width(h)).collect();
        for row in head.iter().chain(tail) {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(text_width(cell));
            }
        }
        if gap {
            for width in &mut widths {
                *width = (*width).max(1);
            }
        }
        if let Some(limit) = self.style.width {
            fit(&mut widths, limit.saturating_sub(3 * fields.len() + 1));
        }
        let rule = {
            let mut s = String::from("+");
            for width in &widths {
                s.push_str(&"-".repeat(width + 2));
                s.push('+');
            }
            s
        };
        writeln!(out, "{rule}")?;
        write_row(out, &header, &widths, &vec![false; widths.len()])?;
        writeln!(out, "{rule}")?;
        for row in head {
            write_row(out, row, &widths, &numeric)?;
        }
        if gap {
            let dots = vec!["…".to_string(); widths.len()];
            write_row(out, &dots, &widths, &numeric)?;
        }
        for row in tail {
            write_row(out, row, &widths, &numeric)?;
        }
        writeln!(out, "{rule}")?;
        Ok(())
    }

    /// `\x`: a block per row, a `column | value` line per column.
    fn render_expanded<W: Write>(
        &self,
        out: &mut W,
        head: &[Vec<String>],
        tail: &[Vec<String>],
        gap: bool,
    ) -> anyhow::Result<()> {
        let names: Vec<&String> = self.schema.fields().iter().map(|f| f.name()).collect();
        let name_width = names.iter().map(|n| text_width(n)).max().unwrap_or(0);
        let value_width = self
            .style
            .width
            .map(|w| w.saturating_sub(name_width + 3).max(5));
        let first_of_tail = self.rows - tail.len();
        let blocks = head.iter().enumerate().map(|(i, r)| (i + 1, r)).chain(
            tail.iter()
                .enumerate()
                .map(|(i, r)| (first_of_tail + i + 1, r)),
        );
        for (n, row) in blocks {
            if gap && n == first_of_tail + 1 {
                writeln!(out, "…")?;
            }
            let title = format!("-[ RECORD {n} ]");
            let rule = name_width + 3 + value_width.unwrap_or(20).min(40);
            writeln!(
                out,
                "{title}{}",
                "-".repeat(rule.saturating_sub(title.len()))
            )?;
            for (name, value) in names.iter().zip(row) {
                for (i, line) in value.split('\n').enumerate() {
                    let shown = match value_width {
                        Some(w) => truncate(line, w),
                        None => Cow::Borrowed(line),
                    };
                    let label = if i == 0 { name.as_str() } else { "" };
                    let pad = name_width - text_width(label);
                    writeln!(out, "{label}{} | {shown}", " ".repeat(pad))?;
                }
            }
        }
        Ok(())
    }
}

/// The display width of a cell: that of its widest line.
fn text_width(text: &str) -> usize {
    text.split('\n').map(|l| l.width()).max().unwrap_or(0)
}

/// Narrows the widest columns until all fit in `budget` characters, each keeping at least a
/// few; columns already narrower than the cut keep their width.
fn fit(widths: &mut [usize], budget: usize) {
    const NARROWEST: usize = 5;
    let total = |cap: usize| widths.iter().map(|w| (*w).min(cap)).sum::<usize>();
    let widest = widths.iter().copied().max().unwrap_or(0);
    if total(widest) <= budget {
        return;
    }
    // The largest cap whose total fits, found by bisection.
    let (mut low, mut high) = (NARROWEST, widest);
    while low < high {
        let mid = (low + high).div_ceil(2);
        if total(mid) <= budget {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    for width in widths {
        *width = (*width).min(low);
    }
}

/// Cuts text to `width` display columns, ending it with `…` when cut.
fn truncate(text: &str, width: usize) -> Cow<'_, str> {
    if text.width() <= width {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    Cow::Owned(out)
}

/// One table row; a cell with line breaks takes several lines.
fn write_row<W: Write>(
    out: &mut W,
    cells: &[String],
    widths: &[usize],
    right: &[bool],
) -> std::io::Result<()> {
    let lines: Vec<Vec<&str>> = cells.iter().map(|c| c.split('\n').collect()).collect();
    let height = lines.iter().map(Vec::len).max().unwrap_or(1);
    for i in 0..height {
        let mut line = String::from("|");
        for ((cell, width), right) in lines.iter().zip(widths).zip(right) {
            let text = truncate(cell.get(i).copied().unwrap_or(""), *width);
            let pad = " ".repeat(width.saturating_sub(text.width()));
            if *right {
                line.push_str(&format!(" {pad}{text} |"));
            } else {
                line.push_str(&format!(" {text}{pad} |"));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// CSV has no nested values: structs and lists are written as their text form.
fn flatten_nested(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    flatten_nested_with(batch, &FormatOptions::default())
}

fn flatten_nested_with(
    batch: &RecordBatch,
    options: &FormatOptions<'_>,
) -> anyhow::Result<RecordBatch> {
    let nested = |t: &DataType| t.is_nested();
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| nested(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let mut fields = vec![];
    let mut columns: Vec<ArrayRef> = vec![];
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if nested(field.data_type()) {
            let formatter = ArrayFormatter::try_new(column.as_ref(), options)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    #[test]
    fn cut_text_keeps_its_display_width() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdef", 4), "abc…");
        // Wide characters take two columns each.
        assert_eq!(truncate("日本語テキスト", 7), "日本語…");
        assert_eq!(truncate("日本語テキスト", 7).width(), 7);
    }

    #[test]
    fn only_the_widest_columns_narrow() {
        let mut widths = vec![3, 50, 8, 30];
        fit(&mut widths, 41);
        assert_eq!(widths, [3, 15, 8, 15]);
        let mut widths = vec![3, 8];
        fit(&mut widths, 100);
        assert_eq!(widths, [3, 8]);
    }

    #[test]
    fn a_table_keeps_only_its_head_and_tail() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let style = TableStyle {
            max_rows: 4,
            ..Default::default()
        };
        let mut out = vec![];
        let mut printer = ResultPrinter::new(PrintFormat::Table, &mut out, schema.clone(), style);
        for start in (0..1000).step_by(100) {
            let values = Int64Array::from_iter_values(start..start + 100);
            let batch =
                RecordBatch::try_new(schema.clone(), vec![Arc::new(values)]).expect("batch");
            printer.write(&batch).expect("write");
            if let Sink::Table(table, _) = &printer.sink {
                // The first two rows and a window over the last ones: one batch at most.
                assert!(table.tail_rows <= 100 + 2, "{}", table.tail_rows);
            }
        }
        let shown = printer.finish().expect("finish");
        assert_eq!(
            shown,
            Shown {
                rows: 1000,
                shown: 4
            }
        );
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "+-----+\n| v   |\n+-----+\n|   0 |\n|   1 |\n|   … |\n| 998 |\n| 999 |\n+-----+\n"
        );
    }
}
