//! Arrow IPC from clients (the parameters bound with DoPut), checked before arrow-ipc
//! decodes it.
//!
//! arrow-ipc trusts the lengths and offsets in a message's header: a buffer that ends past
//! the body panics when sliced, a field type missing its table or with an unknown unit
//! panics in the schema conversion, a compressed buffer's declared size is allocated
//! whole. So each message is checked first: its flatbuffer header verifies; the schema
//! holds at most `MAX_COLUMNS` fields of the flat types parameters can take, with valid
//! widths and units; a batch declares at most `MAX_ROWS` rows, one node per column of the
//! batch's length, the buffers its columns' types need, each inside the body received,
//! large enough for its rows, with offsets and views inside their data; compressed
//! buffers declare at most `MAX_BYTES`. Only then does arrow-ipc decode it (with its own
//! validation of the values), under `catch_unwind` as a last guard. Every refusal is
//! INVALID_ARGUMENT naming the message, the buffer or the column and what is wrong.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::{
    self, DateUnit, Endianness, MessageHeader, MetadataVersion, Precision, TimeUnit, Type,
};
use arrow_flight::FlightData;
use futures::{Stream, StreamExt};
use tonic::Status;

/// Parameter columns at most (parameters of one statement).
pub(crate) const MAX_COLUMNS: usize = 10_000;

/// Rows of parameters at most, over all batches: each row runs the statement once.
pub(crate) const MAX_ROWS: usize = 1_000_000;

/// Bytes of parameters at most, as received and once decompressed.
pub(crate) const MAX_BYTES: usize = 256 << 20;

/// Variadic data buffers of one view column at most.
const MAX_VARIADIC_BUFFERS: i64 = 100_000;

/// How one column's values are laid out in a batch's body.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    /// No buffers.
    Null,
    /// Validity and one bit per value.
    Bits,
    /// Validity and a fixed number of bytes per value.
    Fixed(usize),
    /// Validity, offsets of this width, data.
    Variable(usize),
    /// Validity, 16-byte views, and variadic data buffers.
    View,
}

/// The parameters sent with a DoPut, as one batch (none if no rows came). The first
/// message may carry only the command, with no Arrow data.
pub(crate) async fn read_parameters(
    stream: impl Stream<Item = Result<FlightData, Status>>,
) -> Result<Option<RecordBatch>, Status> {
    let mut stream = std::pin::pin!(stream);
    let mut reader = ParameterReader::default();
    while let Some(data) = stream.next().await {
        let data = data?;
        if data.data_header.is_empty() {
            continue;
        }
        reader.read(&data).map_err(Status::invalid_argument)?;
    }
    reader.finish().map_err(Status::invalid_argument)
}

/// Reads parameter messages one by one.
#[derive(Default)]
struct ParameterReader {
    schema: Option<(SchemaRef, Vec<Layout>)>,
    batches: Vec<RecordBatch>,
    messages: usize,
    bytes: usize,
    rows: usize,
}

impl ParameterReader {
    fn read(&mut self, data: &FlightData) -> Result<(), String> {
        self.messages += 1;
        let n = self.messages;
        self.bytes = self
            .bytes
            .saturating_add(data.data_header.len())
            .saturating_add(data.data_body.len());
        if self.bytes > MAX_BYTES {
            return Err(format!(
                "the parameters exceed {} MiB; bind fewer rows at a time",
                MAX_BYTES >> 20
            ));
        }
        let message = ipc::root_as_message(&data.data_header).map_err(|e| {
            format!("parameter message {n}: the header is not an Arrow IPC message: {e}")
        })?;
        let version = message.version();
        if version != MetadataVersion::V4 && version != MetadataVersion::V5 {
            return Err(format!(
                "parameter message {n}: Arrow IPC metadata version {version:?} is not supported; send V4 or V5"
            ));
        }
        match message.header_type() {
            MessageHeader::Schema => {
                let fb = message.header_as_schema().ok_or_else(|| {
                    format!("parameter message {n}: the schema header is missing")
                })?;
                let layouts = check_schema(fb).map_err(|e| format!("parameter schema: {e}"))?;
                let schema = guarded("the parameter schema", || {
                    Ok(ipc::convert::fb_to_schema(fb))
                })?;
                match &self.schema {
                    Some((known, _)) if known.as_ref() != &schema => Err(
                        "the parameters hold a second, different schema; send one schema, then its batches"
                            .into(),
                    ),
                    Some(_) => Ok(()),
                    None => {
                        self.schema = Some((Arc::new(schema), layouts));
                        Ok(())
                    }
                }
            }
            MessageHeader::RecordBatch => {
                let batch_number = self.batches.len() + 1;
                let what = format!("parameter batch {batch_number}");
                let Some((schema, layouts)) = &self.schema else {
                    return Err(format!(
                        "{what} came before the parameter schema; send the schema first"
                    ));
                };
                let fb = message
                    .header_as_record_batch()
                    .ok_or_else(|| format!("{what}: the record batch header is missing"))?;
                let rows = check_batch(fb, &data.data_body, layouts)
                    .map_err(|e| format!("{what}: {e}"))?;
                if self.rows.saturating_add(rows) > MAX_ROWS {
                    return Err(format!(
                        "the parameters hold more than {MAX_ROWS} rows; bind fewer rows at a time"
                    ));
                }
                let body = Buffer::from(data.data_body.to_vec());
                let no_dictionaries = std::collections::HashMap::<i64, ArrayRef>::new();
                let schema = Arc::clone(schema);
                let batch = guarded(&what, || {
                    ipc::reader::RecordBatchDecoder::try_new(
                        &body,
                        fb,
                        schema,
                        &no_dictionaries,
                        &version,
                    )
                    .and_then(|d| d.read_record_batch())
                    .map_err(|e| e.to_string())
                })?;
                self.rows += batch.num_rows();
                self.batches.push(batch);
                Ok(())
            }
            MessageHeader::DictionaryBatch => {
                let id = message.header_as_dictionary_batch().map(|d| d.id());
                Err(format!(
                    "parameter message {n} is a dictionary batch (id {}), but no parameter is dictionary-encoded; send plain values",
                    id.map_or_else(|| "missing".into(), |id| id.to_string())
                ))
            }
            other => Err(format!(
                "parameter message {n} is a {} message; parameters are a schema and record batches",
                other.variant_name().unwrap_or("unknown")
            )),
        }
    }

    fn finish(self) -> Result<Option<RecordBatch>, String> {
        let Some((schema, _)) = self.schema else {
            return Ok(None);
        };
        if self.batches.is_empty() {
            return Ok(None);
        }
        let batch = arrow::compute::concat_batches(&schema, &self.batches)
            .map_err(|e| format!("cannot put the parameter batches together: {e}"))?;
        Ok((batch.num_rows() > 0).then_some(batch))
    }
}

/// Runs arrow-ipc's decoding; a panic in it is the message's fault.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(|e| format!("{what} cannot be decoded: {e}")),
        Err(_) => {
            tracing::warn!("decoding {what} panicked despite its checks");
            Err(format!("{what} cannot be decoded: it is malformed"))
        }
    }
}

/// Checks a schema's fields: flat types parameters can take, each with what arrow-ipc's
/// conversion reads from it. Returns each column's layout.
fn check_schema(schema: ipc::Schema) -> Result<Vec<Layout>, String> {
    if schema.endianness() != Endianness::Little {
        return Err("big-endian data is not supported; send little-endian Arrow".into());
    }
    let fields = schema.fields().ok_or("the schema has no list of fields")?;
    if fields.len() > MAX_COLUMNS {
        return Err(format!(
            "{} parameters, more than the {MAX_COLUMNS} a statement takes",
            fields.len()
        ));
    }
    fields
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let name = field.name().unwrap_or_default();
            check_field(field).map_err(|e| format!("parameter {} ('{name}'): {e}", i + 1))
        })
        .collect()
}

fn check_field(field: ipc::Field) -> Result<Layout, String> {
    if field.dictionary().is_some() {
        return Err("dictionary-encoded values cannot be bound; send plain values".into());
    }
    if field.children().is_some_and(|c| !c.is_empty()) {
        return Err("nested values cannot be bound; send one scalar per parameter".into());
    }
    let missing = || format!("the {:?} type has no parameters", field.type_type());
    Ok(match field.type_type() {
        Type::Null => Layout::Null,
        Type::Bool => Layout::Bits,
        Type::Int => {
            let int = field.type_as_int().ok_or_else(missing)?;
            match int.bitWidth() {
                w @ (8 | 16 | 32 | 64) => Layout::Fixed(w as usize / 8),
                w => {
                    return Err(format!(
                        "an integer of {w} bits; integers have 8, 16, 32 or 64"
                    ));
                }
            }
        }
        Type::FloatingPoint => {
            let float = field.type_as_floating_point().ok_or_else(missing)?;
            match float.precision() {
                Precision::HALF => Layout::Fixed(2),
                Precision::SINGLE => Layout::Fixed(4),
                Precision::DOUBLE => Layout::Fixed(8),
                p => return Err(format!("unknown floating point precision {}", p.0)),
            }
        }
        Type::Decimal => {
            let decimal = field.type_as_decimal().ok_or_else(missing)?;
            let (bits, max) = match decimal.bitWidth() {
                32 => (32, 9),
                64 => (64, 18),
                128 => (128, 38),
                256 => (256, 76),
                w => {
                    return Err(format!(
                        "a decimal of {w} bits; decimals have 32, 64, 128 or 256"
                    ));
                }
            };
            let (precision, scale) = (decimal.precision(), decimal.scale());
            if !(1..=max).contains(&precision) || scale.unsigned_abs() > precision.unsigned_abs() {
                return Err(format!(
                    "DECIMAL({precision}, {scale}) of {bits} bits; its precision is 1 to {max}, its scale at most the precision"
                ));
            }
            Layout::Fixed(bits / 8)
        }
        Type::Utf8 | Type::Binary => Layout::Variable(4),
        Type::LargeUtf8 | Type::LargeBinary => Layout::Variable(8),
        Type::Utf8View | Type::BinaryView => Layout::View,
        Type::FixedSizeBinary => {
            let fsb = field.type_as_fixed_size_binary().ok_or_else(missing)?;
            match fsb.byteWidth() {
                w @ 1..=0x100000 => Layout::Fixed(w as usize),
                w => return Err(format!("fixed-size binary of {w} bytes; 1 byte to 1 MiB")),
            }
        }
        Type::Date => {
            let date = field.type_as_date().ok_or_else(missing)?;
            match date.unit() {
                DateUnit::DAY => Layout::Fixed(4),
                DateUnit::MILLISECOND => Layout::Fixed(8),
                u => return Err(format!("unknown date unit {}", u.0)),
            }
        }
        Type::Time => {
            let time = field.type_as_time().ok_or_else(missing)?;
            match (time.unit(), time.bitWidth()) {
                (TimeUnit::SECOND | TimeUnit::MILLISECOND, 32) => Layout::Fixed(4),
                (TimeUnit::MICROSECOND | TimeUnit::NANOSECOND, 64) => Layout::Fixed(8),
                (u, w) => return Err(format!("a time of unit {} in {w} bits", u.0)),
            }
        }
        Type::Timestamp => {
            let timestamp = field.type_as_timestamp().ok_or_else(missing)?;
            match timestamp.unit() {
                TimeUnit::SECOND
                | TimeUnit::MILLISECOND
                | TimeUnit::MICROSECOND
                | TimeUnit::NANOSECOND => Layout::Fixed(8),
                u => return Err(format!("unknown timestamp unit {}", u.0)),
            }
        }
        other => {
            return Err(format!(
                "values of type {} cannot be bound; bind numbers, strings, binary, dates, times or timestamps",
                other.variant_name().unwrap_or("unknown")
            ));
        }
    })
}

/// Checks a record batch's header against its body and the schema's layouts. Returns its
/// rows.
fn check_batch(batch: ipc::RecordBatch, body: &[u8], layouts: &[Layout]) -> Result<usize, String> {
    let rows = usize::try_from(batch.length())
        .ok()
        .filter(|&r| r <= MAX_ROWS)
        .ok_or_else(|| {
            format!(
                "it declares {} rows; at most {MAX_ROWS} are taken",
                batch.length()
            )
        })?;
    let nodes: Vec<(i64, i64)> = batch
        .nodes()
        .ok_or("it has no list of field nodes")?
        .iter()
        .map(|n| (n.length(), n.null_count()))
        .collect();
    if nodes.len() != layouts.len() {
        return Err(format!(
            "it has {} field nodes for {} columns",
            nodes.len(),
            layouts.len()
        ));
    }
    let views = layouts.iter().filter(|l| **l == Layout::View).count();
    let variadic: Vec<i64> = batch
        .variadicBufferCounts()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    if variadic.len() != views {
        return Err(format!(
            "it counts the data buffers of {} view columns, but has {views}",
            variadic.len()
        ));
    }
    if let Some(count) = variadic
        .iter()
        .find(|c| !(0..=MAX_VARIADIC_BUFFERS).contains(*c))
    {
        return Err(format!("a view column with {count} data buffers"));
    }
    let buffers = batch.buffers().ok_or("it has no list of buffers")?;
    let mut variadic_counts = variadic.iter();
    let wanted: usize = layouts
        .iter()
        .map(|l| match l {
            Layout::Null => 0,
            Layout::Bits | Layout::Fixed(_) => 2,
            Layout::Variable(_) => 3,
            Layout::View => 2 + variadic_counts.next().copied().unwrap_or(0) as usize,
        })
        .sum();
    if buffers.len() != wanted {
        return Err(format!(
            "it has {} buffers where its columns take {wanted}",
            buffers.len()
        ));
    }
    // Every buffer inside the body.
    let mut slices = Vec::with_capacity(buffers.len());
    for (k, buffer) in buffers.iter().enumerate() {
        let (offset, length) = (buffer.offset(), buffer.length());
        let end = u64::try_from(offset)
            .ok()
            .zip(u64::try_from(length).ok())
            .and_then(|(o, l)| o.checked_add(l))
            .ok_or_else(|| format!("buffer {k} has offset {offset} and length {length}"))?;
        if end > body.len() as u64 {
            return Err(format!(
                "buffer {k} ends past the message body (at byte {end} of {})",
                body.len()
            ));
        }
        slices.push(&body[offset as usize..end as usize]);
    }
    if let Some(compression) = batch.compression() {
        // Sizes and offsets are those of the data once decompressed, which arrow-ipc checks
        // then; here only what each buffer would decompress to is bounded.
        let mut total = 0usize;
        for (k, slice) in slices.iter().enumerate() {
            if slice.is_empty() {
                continue;
            }
            let prefix: [u8; 8] =
                slice
                    .get(..8)
                    .and_then(|p| p.try_into().ok())
                    .ok_or_else(|| {
                        format!("compressed buffer {k} is shorter than its length prefix")
                    })?;
            let size = i64::from_le_bytes(prefix);
            if size == -1 {
                continue;
            }
            let size = usize::try_from(size)
                .ok()
                .filter(|&s| s <= MAX_BYTES)
                .ok_or_else(|| {
                    format!(
                        "compressed buffer {k} declares {size} bytes once decompressed; at most {MAX_BYTES}"
                    )
                })?;
            total = total.saturating_add(size);
        }
        if total > MAX_BYTES {
            return Err(format!(
                "its buffers decompress to {total} bytes; at most {MAX_BYTES}"
            ));
        }
        let _ = compression;
        return check_nodes(&nodes, rows);
    }
    check_nodes(&nodes, rows)?;
    let mut next = slices.into_iter().enumerate();
    let mut variadic_counts = variadic.iter();
    for (column, (layout, &(_, nulls))) in layouts.iter().zip(&nodes).enumerate() {
        let column = column + 1;
        let mut take = || next.next().ok_or("too few buffers");
        let check = |what: &str, k: usize, slice: &[u8], needed: Option<usize>| {
            let needed =
                needed.ok_or_else(|| format!("column {column}: the {what} size overflows"))?;
            if slice.len() < needed {
                return Err(format!(
                    "column {column}: buffer {k} ({what}) holds {} bytes, but {rows} rows need {needed}",
                    slice.len()
                ));
            }
            Ok(())
        };
        if *layout == Layout::Null {
            continue;
        }
        let (k, validity) = take()?;
        if nulls > 0 {
            check("validity", k, validity, Some(rows.div_ceil(8)))?;
        }
        match *layout {
            Layout::Null => {}
            Layout::Bits => {
                let (k, data) = take()?;
                check("values", k, data, Some(rows.div_ceil(8)))?;
            }
            Layout::Fixed(width) => {
                let (k, data) = take()?;
                check("values", k, data, rows.checked_mul(width))?;
            }
            Layout::Variable(width) => {
                let (k, offsets) = take()?;
                let (_, data) = take()?;
                if rows > 0 {
                    check(
                        "offsets",
                        k,
                        offsets,
                        rows.checked_add(1).and_then(|n| n.checked_mul(width)),
                    )?;
                    check_offsets(offsets, width, rows, data.len())
                        .map_err(|e| format!("column {column}: buffer {k} (offsets): {e}"))?;
                }
            }
            Layout::View => {
                let (k, views) = take()?;
                let count = variadic_counts.next().copied().unwrap_or(0) as usize;
                let data: Vec<usize> = (0..count)
                    .map(|_| take().map(|(_, d)| d.len()))
                    .collect::<Result<_, _>>()?;
                check("views", k, views, rows.checked_mul(16))?;
                check_views(views, rows, &data)
                    .map_err(|e| format!("column {column}: buffer {k} (views): {e}"))?;
            }
        }
    }
    Ok(rows)
}

/// Each column's node: the batch's length, and no more nulls than values.
fn check_nodes(nodes: &[(i64, i64)], rows: usize) -> Result<usize, String> {
    for (i, &(length, nulls)) in nodes.iter().enumerate() {
        if length != rows as i64 {
            return Err(format!(
                "column {} has {length} values in a batch of {rows} rows",
                i + 1
            ));
        }
        if !(0..=length).contains(&nulls) {
            return Err(format!(
                "column {} declares {nulls} nulls among {length} values",
                i + 1
            ));
        }
    }
    Ok(rows)
}

/// Offsets that start at or after 0, never decrease, and end inside the data.
fn check_offsets(offsets: &[u8], width: usize, rows: usize, data: usize) -> Result<(), String> {
    let read = |i: usize| -> i64 {
        let bytes = &offsets[i * width..(i + 1) * width];
        match width {
            4 => i32::from_le_bytes(bytes.try_into().unwrap_or_default()) as i64,
            _ => i64::from_le_bytes(bytes.try_into().unwrap_or_default()),
        }
    };
    let mut previous = read(0);
    if previous < 0 {
        return Err(format!("the first offset is {previous}"));
    }
    for i in 1..=rows {
        let offset = read(i);
        if offset < previous {
            return Err(format!(
                "offset {i} ({offset}) is before offset {} ({previous})",
                i - 1
            ));
        }
        previous = offset;
    }
    if previous as u64 > data as u64 {
        return Err(format!(
            "the last offset ({previous}) points past the {data} bytes of data"
        ));
    }
    Ok(())
}

/// Views whose out-of-line values lie inside the data buffers they name.
fn check_views(views: &[u8], rows: usize, data: &[usize]) -> Result<(), String> {
    for row in 0..rows {
        let view = &views[row * 16..row * 16 + 16];
        let word =
            |at: usize| i32::from_le_bytes([view[at], view[at + 1], view[at + 2], view[at + 3]]);
        let length = word(0);
        if length < 0 {
            return Err(format!("view {row} has length {length}"));
        }
        if length <= 12 {
            continue;
        }
        let (buffer, offset) = (word(8), word(12));
        let size = usize::try_from(buffer)
            .ok()
            .and_then(|b| data.get(b))
            .ok_or_else(|| format!("view {row} names data buffer {buffer}, of {}", data.len()))?;
        let end = u64::try_from(offset)
            .ok()
            .map(|o| o + length as u64)
            .ok_or_else(|| format!("view {row} has offset {offset}"))?;
        if end > *size as u64 {
            return Err(format!(
                "view {row} ends at byte {end} of data buffer {buffer}, which holds {size}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("$1", DataType::Int64, true),
            Field::new("$2", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
                Arc::new(StringArray::from(vec!["a", "bb", "ccc"])),
            ],
        )
        .expect("batch")
    }

    fn messages() -> Vec<FlightData> {
        let batch = batch();
        arrow_flight::utils::batches_to_flight_data(&batch.schema(), vec![batch]).expect("encode")
    }

    fn read(messages: Vec<FlightData>) -> Result<Option<RecordBatch>, String> {
        let mut reader = ParameterReader::default();
        for m in &messages {
            reader.read(m)?;
        }
        reader.finish()
    }

    #[test]
    fn reads_what_arrow_writes() {
        assert_eq!(read(messages()).expect("read"), Some(batch()));
    }

    #[test]
    fn refuses_bodies_shorter_than_their_buffers() {
        let mut m = messages();
        let body = m[1].data_body.clone();
        // Cut inside the buffers, not only their padding.
        m[1].data_body = body.slice(..100);
        let e = read(m).expect_err("truncated");
        assert!(e.contains("ends past the message body"), "{e}");
    }

    #[test]
    fn refuses_offsets_past_their_data() {
        let mut m = messages();
        let mut body = m[1].data_body.to_vec();
        // The last offset of the strings, `6`, as a little-endian i32.
        let at = body
            .windows(16)
            .position(|w| w == [0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 6, 0, 0, 0])
            .expect("the offsets");
        body[at + 12] = 200;
        m[1].data_body = body.into();
        let e = read(m).expect_err("offsets");
        assert!(e.contains("points past"), "{e}");
    }

    #[test]
    fn refuses_garbage_headers_and_batches_before_the_schema() {
        let mut m = messages();
        m[0].data_header = vec![0xff; 40].into();
        let e = read(m).expect_err("garbage");
        assert!(e.contains("not an Arrow IPC message"), "{e}");
        let m = messages();
        let e = read(vec![m[1].clone()]).expect_err("no schema");
        assert!(e.contains("before the parameter schema"), "{e}");
    }
}
