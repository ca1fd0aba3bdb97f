//! Schema-on-read: which files make a table, which `key=value/` folders partition it, what
//! format its files are in, and the schema that holds every JSON file's fields.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema};
use datafusion::error::DataFusionError;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use strata_catalog::TableFormat;

use crate::error::{Error, Result};

/// Records read from each file to infer a JSON schema, unless a table says otherwise.
pub const DEFAULT_INFER_RECORDS: usize = 1000;

/// How much of a file inference reads at a time: its first records are usually in the first
/// block, and the rest of the file is never read.
const INFER_BLOCK_BYTES: usize = 256 * 1024;

/// A file's path as users know it: a local path, or a URL for other stores. `base` is any
/// URL on the same store (the table's location).
pub fn display_path(base: &str, path: &Path) -> String {
    match url::Url::parse(base) {
        Ok(u) if u.scheme() != "file" => format!("{}/{path}", &u[..url::Position::BeforePath]),
        _ => format!("/{path}"),
    }
}

/// Lists the data files under a table's prefix, leaving out hidden and bookkeeping files
/// (any path part starting with `.` or `_`, such as `_SUCCESS` or `.part-0.crc`).
pub async fn list_data_files(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
) -> Result<Vec<ObjectMeta>> {
    let mut files: Vec<ObjectMeta> = store
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| Error::DataFusion(e.into()))?;
    files.retain(|f| {
        relative_parts(prefix, &f.location)
            .iter()
            .all(|p| !p.starts_with('.') && !p.starts_with('_'))
            && f.size > 0
    });
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(files)
}

/// The parts of `path` below `prefix`.
pub fn relative_parts(prefix: &Path, path: &Path) -> Vec<String> {
    let skip = prefix.parts().count();
    path.parts()
        .skip(skip)
        .map(|p| p.as_ref().to_string())
        .collect()
}

/// The format a file's name says it holds.
pub fn format_of(file_name: &str) -> Option<TableFormat> {
    let name = file_name.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".json") || name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        Some(TableFormat::Json)
    } else if name.ends_with(".csv") {
        Some(TableFormat::Csv)
    } else if name.ends_with(".parquet") || name.ends_with(".parq") {
        Some(TableFormat::Parquet)
    } else {
        None
    }
}

/// The one format the files of a table have, or an error naming two files that disagree.
pub fn detect_format(location: &str, files: &[ObjectMeta]) -> Result<TableFormat> {
    let mut seen: BTreeMap<TableFormat, String> = BTreeMap::new();
    for f in files {
        let name = f.location.filename().unwrap_or_default();
        if let Some(format) = format_of(name) {
            seen.entry(format)
                .or_insert_with(|| display_path(location, &f.location));
        }
    }
    match seen.len() {
        1 => Ok(*seen.keys().next().unwrap_or(&TableFormat::Json)),
        0 => Err(Error::EmptyLocation {
            location: location.to_string(),
            reason: "holds no .json, .jsonl, .ndjson, .csv or .parquet files".into(),
        }),
        _ => Err(Error::Unsupported(format!(
            "location '{location}' mixes formats ({}); put each format in its own folder",
            seen.iter()
                .map(|(f, p)| format!("{f} in '{p}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The file name ending a table's files share, so that other files beside them are not read
/// as data: `.ndjson`, `.json.gz`, or empty when the files use several.
pub fn common_extension(files: &[ObjectMeta]) -> String {
    let ext = |f: &ObjectMeta| -> String {
        let name = f
            .location
            .filename()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let (base, gz) = match name.strip_suffix(".gz") {
            Some(b) => (b.to_string(), ".gz"),
            None => (name.clone(), ""),
        };
        match base.rfind('.') {
            Some(i) => format!("{}{gz}", &base[i..]),
            None => String::new(),
        }
    };
    let mut exts = files.iter().map(ext);
    let Some(first) = exts.next() else {
        return String::new();
    };
    if exts.all(|e| e == first) {
        first
    } else {
        String::new()
    }
}

/// The schema to record for files under hive folders: the files' columns without those the
/// folder names give (a column of the same name inside the files would clash with them),
/// each nullable, since files promise nothing about the files that come after them.
pub fn file_columns(schema: &Schema, partitions: &[(String, DataType)]) -> Schema {
    Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| !partitions.iter().any(|(p, _)| p == f.name()))
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    )
}

/// Hive partition columns from `key=value/` folders, in folder order, with their types:
/// integers when every value is an integer (leading zeros allowed, as in `month=03`),
/// strings otherwise.
pub fn discover_partitions(
    base: &str,
    prefix: &Path,
    files: &[ObjectMeta],
) -> Result<Vec<(String, DataType)>> {
    let mut keys: Option<(Vec<String>, String)> = None;
    let mut values: Vec<Vec<String>> = vec![];
    for f in files {
        let parts = relative_parts(prefix, &f.location);
        let folders = &parts[..parts.len().saturating_sub(1)];
        let mut file_keys = vec![];
        let mut file_values = vec![];
        for folder in folders {
            match folder.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    file_keys.push(k.to_string());
                    file_values.push(percent_decode(v));
                }
                _ => {
                    file_keys.clear();
                    file_values.clear();
                    break;
                }
            }
        }
        match &keys {
            None => {
                values = vec![vec![]; file_keys.len()];
                keys = Some((file_keys.clone(), display_path(base, &f.location)));
            }
            Some((known, first_file)) if *known != file_keys => {
                return Err(Error::PartitionMismatch {
                    left: known.join(", "),
                    left_file: first_file.clone(),
                    right: file_keys.join(", "),
                    right_file: display_path(base, &f.location),
                });
            }
            Some(_) => {}
        }
        for (i, v) in file_values.into_iter().enumerate() {
            values[i].push(v);
        }
    }
    let Some((keys, _)) = keys else {
        return Ok(vec![]);
    };
    Ok(keys
        .into_iter()
        .zip(values)
        .map(|(k, vals)| {
            let present = vals
                .iter()
                .filter(|v| v.as_str() != "__HIVE_DEFAULT_PARTITION__")
                .collect::<Vec<_>>();
            let ints: Option<Vec<i64>> = present
                .iter()
                .map(|v| {
                    if v.is_empty()
                        || !v
                            .trim_start_matches('-')
                            .bytes()
                            .all(|b| b.is_ascii_digit())
                    {
                        None
                    } else {
                        v.parse::<i64>().ok()
                    }
                })
                .collect();
            let data_type = match ints {
                Some(ints) if !ints.is_empty() => {
                    if ints.iter().all(|i| i32::try_from(*i).is_ok()) {
                        DataType::Int32
                    } else {
                        DataType::Int64
                    }
                }
                _ => DataType::Utf8,
            };
            (k, data_type)
        })
        .collect())
}

/// Decodes the `%XX` escapes hive folder names use for special characters.
pub(crate) fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Infers the schema that holds every file's records: fields missing from a file are NULL
/// there, integers and floats widen to floats, differing scalar types widen to strings, and a
/// field that is an object in one file and a scalar or list in another is an error naming
/// both files.
pub async fn infer_json_schema(
    base: &str,
    store: &Arc<dyn ObjectStore>,
    files: &[ObjectMeta],
    max_records_per_file: usize,
    skip_malformed: bool,
) -> Result<Schema> {
    let mut merged: Option<(Fields, FieldOrigins)> = None;
    for file in files {
        let path = display_path(base, &file.location);
        // Only the first records are read: the file is streamed, and dropped once they are in.
        let mut reader = LineReader::open(store, &file.location, &path, "the table")
            .await
            .map_err(Error::DataFusion)?;
        let mut values = vec![];
        'blocks: while values.len() < max_records_per_file {
            let Some((first_line, block)) = reader
                .next_lines(INFER_BLOCK_BYTES)
                .await
                .map_err(Error::DataFusion)?
            else {
                break;
            };
            for (index, line) in block.split(|b| *b == b'\n').enumerate() {
                if values.len() >= max_records_per_file {
                    break 'blocks;
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let line_number = first_line + index as u64;
                match serde_json::from_slice::<serde_json::Value>(line) {
                    Ok(v @ serde_json::Value::Object(_)) => values.push(v),
                    _ if skip_malformed => {}
                    Ok(_) => {
                        return Err(Error::BadFile {
                            path,
                            line: Some(line_number),
                            reason: "the line is not a JSON object. To skip such lines, set OPTIONS ('skip_malformed' 'true')".into(),
                        });
                    }
                    Err(e) => {
                        return Err(Error::BadFile {
                            path,
                            line: Some(line_number),
                            reason: format!(
                                "malformed JSON: {e}. To skip such lines, set OPTIONS ('skip_malformed' 'true')"
                            ),
                        });
                    }
                }
            }
        }
        let schema = arrow::json::reader::infer_json_schema_from_iterator(values.iter().map(Ok))?;
        let fields = schema.fields().clone();
        merged = Some(match merged {
            None => {
                let origins = FieldOrigins::new(&fields, &path);
                (fields, origins)
            }
            Some((acc, mut origins)) => {
                let fields = merge_fields(&acc, &fields, "", &mut origins, &path)?;
                (fields, origins)
            }
        });
    }
    Ok(Schema::new(merged.map(|(f, _)| f).unwrap_or_default()))
}

/// Which file each field's current type came from, by dotted name, for error messages.
struct FieldOrigins(BTreeMap<String, String>);

impl FieldOrigins {
    fn new(fields: &Fields, path: &str) -> Self {
        let mut o = Self(BTreeMap::new());
        o.record_all(fields, "", path);
        o
    }

    fn record_all(&mut self, fields: &Fields, parent: &str, path: &str) {
        for f in fields {
            let name = format!("{parent}{}", f.name());
            self.0
                .entry(name.clone())
                .or_insert_with(|| path.to_string());
            if let DataType::Struct(children) = f.data_type() {
                self.record_all(children, &format!("{name}."), path);
            }
        }
    }

    fn of(&self, name: &str) -> String {
        self.0
            .get(name)
            .cloned()
            .unwrap_or_else(|| "an earlier file".into())
    }
}

fn merge_fields(
    left: &Fields,
    right: &Fields,
    parent: &str,
    origins: &mut FieldOrigins,
    path: &str,
) -> Result<Fields> {
    let mut out: Vec<Field> = vec![];
    for l in left {
        match right.find(l.name()) {
            Some((_, r)) => {
                let name = format!("{parent}{}", l.name());
                let dt = merge_type(l.data_type(), r.data_type(), &name, origins, path)?;
                out.push(Field::new(l.name(), dt, true));
            }
            None => out.push(l.as_ref().clone().with_nullable(true)),
        }
    }
    for r in right {
        if left.find(r.name()).is_none() {
            origins.record_all(&Fields::from(vec![r.clone()]), parent, path);
            out.push(r.as_ref().clone().with_nullable(true));
        }
    }
    Ok(Fields::from(out))
}

fn merge_type(
    l: &DataType,
    r: &DataType,
    name: &str,
    origins: &mut FieldOrigins,
    path: &str,
) -> Result<DataType> {
    use DataType::*;
    Ok(match (l, r) {
        (a, b) if a == b => a.clone(),
        (Null, o) => o.clone(),
        (o, Null) => o.clone(),
        (Int64, Float64) | (Float64, Int64) => Float64,
        (Struct(a), Struct(b)) => Struct(merge_fields(a, b, &format!("{name}."), origins, path)?),
        (List(a), List(b)) => {
            let item = merge_type(
                a.data_type(),
                b.data_type(),
                &format!("{name}[]"),
                origins,
                path,
            )?;
            List(Arc::new(Field::new_list_field(item, true)))
        }
        (a, b) if is_scalar(a) && is_scalar(b) => {
            origins.0.insert(name.to_string(), path.to_string());
            Utf8
        }
        (a, b) => {
            return Err(Error::SchemaConflict {
                field: name.to_string(),
                left_type: describe_type(a),
                left_file: origins.of(name),
                right_type: describe_type(b),
                right_file: path.to_string(),
            });
        }
    })
}

fn is_scalar(t: &DataType) -> bool {
    !matches!(
        t,
        DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_)
    )
}

fn describe_type(t: &DataType) -> String {
    match t {
        DataType::Struct(_) => "an object".into(),
        DataType::List(_) | DataType::LargeList(_) => "a list".into(),
        DataType::Utf8 => "a string".into(),
        DataType::Int64 => "an integer".into(),
        DataType::Float64 => "a number".into(),
        DataType::Boolean => "a boolean".into(),
        other => other.to_string(),
    }
}

/// The most bytes of whole lines [`LineReader::next_lines`] hands over at once (more only
/// when a single line is longer).
pub(crate) const LINE_BLOCK_BYTES: usize = 4 * 1024 * 1024;

/// Reads an object as a stream of blocks of whole lines, gunzipping files whose names end in
/// `.gz` on the way, and counting lines so that errors can name them. Only a block and the
/// chunk being read are held at once, whatever the size of the file.
pub(crate) struct LineReader {
    source: futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
    gunzip: Option<flate2::write::MultiGzDecoder<Vec<u8>>>,
    /// Bytes read but not handed over yet: whole lines, then the start of the next one.
    pending: Vec<u8>,
    /// Whether `pending` holds a line end.
    pending_has_newline: bool,
    /// The number (from 1) of the first line in `pending`.
    next_line: u64,
    done: bool,
    shown: String,
    table: String,
}

impl LineReader {
    /// Starts reading `path`; `shown` is its path as users know it, `table` names its table
    /// in errors.
    pub(crate) async fn open(
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        shown: &str,
        table: &str,
    ) -> datafusion::common::Result<Self> {
        use object_store::ObjectStoreExt;
        let source = match store.get(path).await {
            Ok(r) => r.into_stream(),
            Err(e) => return Err(Self::read_error(e, shown, table)),
        };
        let gunzip = path
            .as_ref()
            .ends_with(".gz")
            .then(|| flate2::write::MultiGzDecoder::new(Vec::new()));
        Ok(Self {
            source,
            gunzip,
            pending: Vec::new(),
            pending_has_newline: false,
            next_line: 1,
            done: false,
            shown: shown.to_string(),
            table: table.to_string(),
        })
    }

    fn read_error(e: object_store::Error, shown: &str, table: &str) -> DataFusionError {
        match e {
            object_store::Error::NotFound { .. } => {
                DataFusionError::External(Box::new(Error::FileVanished {
                    table: table.to_string(),
                    path: shown.to_string(),
                }))
            }
            e => DataFusionError::ObjectStore(Box::new(e)),
        }
    }

    fn gzip_error(&self, e: std::io::Error) -> DataFusionError {
        DataFusionError::External(Box::new(Error::BadFile {
            path: self.shown.clone(),
            line: None,
            reason: format!("not a readable gzip file: {e}"),
        }))
    }

    /// The next block of whole lines, at least `min` bytes long unless the file ends first,
    /// with the number (from 1) of its first line; `None` once the file is read. The last
    /// line of a file may lack its line end.
    pub(crate) async fn next_lines(
        &mut self,
        min: usize,
    ) -> datafusion::common::Result<Option<(u64, Vec<u8>)>> {
        use futures::StreamExt;
        use std::io::Write;
        while !self.done && (self.pending.len() < min || !self.pending_has_newline) {
            match self.source.next().await {
                Some(Ok(chunk)) => {
                    let before = self.pending.len();
                    match &mut self.gunzip {
                        Some(gz) => {
                            if let Err(e) = gz.write_all(&chunk).and_then(|_| gz.flush()) {
                                return Err(self.gzip_error(e));
                            }
                            self.pending.append(gz.get_mut());
                        }
                        None => self.pending.extend_from_slice(&chunk),
                    }
                    if self.pending[before..].contains(&b'\n') {
                        self.pending_has_newline = true;
                    }
                }
                Some(Err(e)) => return Err(Self::read_error(e, &self.shown, &self.table)),
                None => {
                    if let Some(gz) = self.gunzip.take() {
                        match gz.finish() {
                            Ok(mut rest) => self.pending.append(&mut rest),
                            Err(e) => return Err(self.gzip_error(e)),
                        }
                    }
                    self.done = true;
                }
            }
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let cut = if self.done {
            self.pending.len()
        } else {
            match self.pending.iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                None => self.pending.len(),
            }
        };
        let rest = self.pending.split_off(cut);
        let block = std::mem::replace(&mut self.pending, rest);
        self.pending_has_newline = false;
        let first = self.next_line;
        self.next_line += block.iter().filter(|b| **b == b'\n').count() as u64;
        Ok(Some((first, block)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_escapes_are_decoded() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("é%4"), "é%4");
    }
}
