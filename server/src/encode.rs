//! How a result travels: record batches as Flight data, in messages sized for gRPC, with
//! no more bytes than the rows hold.
//!
//! - Strings and binaries travel as plain Arrow strings and binaries, not as views:
//!   DataFusion's views point into the large buffers they were read from, and Arrow IPC
//!   writes every buffer a view array points into, so an 8192-row slice of a Parquet page
//!   would carry the whole page. Plain arrays hold only their rows' bytes, take less room
//!   than views for short strings, and are what every client reads fastest (the ADBC
//!   driver spends twice the time on views). The FlightInfo announces the same schema.
//! - Batches are cut into messages of about `MESSAGE_BYTES`, counted from the rows' own
//!   bytes (not their buffers', which may be shared): within the 16 MiB the ADBC driver
//!   takes by default (pyarrow takes any size), large enough that per-message costs do
//!   not count.
//! - Dictionaries stay dictionaries, as the schema announced them: each batch sends the
//!   dictionary it uses, as Flight clients expect.
//! - Encoding runs on its own task a few messages ahead of gRPC, so the query keeps
//!   producing while earlier messages are sent.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use arrow_flight::FlightData;
use arrow_flight::encode::{DictionaryHandling, FlightDataEncoderBuilder};
use arrow_flight::error::FlightError;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use tonic::Status;

pub(crate) type DoGetStream =
    Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;
pub(crate) type Batches = BoxStream<'static, Result<RecordBatch, FlightError>>;

/// About how many bytes of rows a message carries.
const MESSAGE_BYTES: usize = 4 << 20;

/// How many messages the encoding task may run ahead of gRPC.
const AHEAD: usize = 4;

/// The schema a result travels under: views as plain strings and binaries.
pub(crate) fn wire_schema(schema: &Schema) -> Schema {
    let fields: Vec<FieldRef> = schema.fields().iter().map(wire_field).collect();
    Schema::new(fields).with_metadata(schema.metadata().clone())
}

fn wire_field(field: &FieldRef) -> FieldRef {
    let wire = wire_type(field.data_type());
    if &wire == field.data_type() {
        Arc::clone(field)
    } else {
        Arc::new(field.as_ref().clone().with_data_type(wire))
    }
}

/// A type with its views, however deep, as plain strings and binaries.
fn wire_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::List(f) => DataType::List(wire_field(f)),
        DataType::LargeList(f) => DataType::LargeList(wire_field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(wire_field(f), *n),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(wire_field).collect()),
        DataType::Map(f, sorted) => DataType::Map(wire_field(f), *sorted),
        DataType::Dictionary(k, v) => DataType::Dictionary(k.clone(), Box::new(wire_type(v))),
        other => other.clone(),
    }
}

/// The Flight data of a result: its schema first, then its batches as they come.
pub(crate) fn encode(schema: SchemaRef, batches: Batches) -> DoGetStream {
    let wire = Arc::new(wire_schema(&schema));
    let target = Arc::clone(&wire);
    let messages = batches
        .map(move |batch| {
            let pieces = batch.and_then(|b| prepare(b, &target, MESSAGE_BYTES));
            futures::stream::iter(match pieces {
                Ok(pieces) => pieces.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            })
        })
        .flatten();
    let encoded = FlightDataEncoderBuilder::new()
        .with_schema(wire)
        // Batches come cut to size; the encoder's own cut counts whole shared buffers.
        .with_max_flight_data_size(usize::MAX)
        .with_dictionary_handling(DictionaryHandling::Resend)
        .build(messages)
        .map_err(Status::from)
        .boxed();
    ahead(encoded, AHEAD)
}

/// Runs a stream on its own task, up to `depth` items ahead of its reader. The task ends
/// when the stream does, or when the reader goes away (which drops the stream, and with
/// it the query).
fn ahead(mut stream: BoxStream<'static, Result<FlightData, Status>>, depth: usize) -> DoGetStream {
    let (tx, rx) = tokio::sync::mpsc::channel(depth);
    tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                biased;
                () = tx.closed() => break,
                item = stream.next() => item,
            };
            let Some(item) = item else { break };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// A batch as the batches it travels in: cut to about `max` bytes of rows each, under
/// the wire schema.
fn prepare(
    batch: RecordBatch,
    wire: &SchemaRef,
    max: usize,
) -> Result<Vec<RecordBatch>, FlightError> {
    let rows = batch.num_rows();
    let bytes: usize = batch.columns().iter().map(|c| row_bytes(c.as_ref())).sum();
    let pieces = bytes.div_ceil(max.max(1)).clamp(1, rows.max(1));
    let per_piece = rows.div_ceil(pieces).max(1);
    let mut out = Vec::with_capacity(pieces);
    let mut offset = 0;
    loop {
        let len = per_piece.min(rows - offset);
        let piece = batch.slice(offset, len);
        let columns = piece
            .columns()
            .iter()
            .zip(wire.fields())
            .map(|(column, field)| for_the_wire(column, field.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(len));
        out.push(RecordBatch::try_new_with_options(
            Arc::clone(wire),
            columns,
            &options,
        )?);
        offset += len;
        if offset >= rows {
            break;
        }
    }
    Ok(out)
}

/// A column as its wire type, copying only the rows of a slice.
fn for_the_wire(column: &ArrayRef, wire: &DataType) -> Result<ArrayRef, FlightError> {
    if column.data_type() == wire {
        return Ok(Arc::clone(column));
    }
    Ok(arrow::compute::cast(column, wire)?)
}

/// The bytes of the values of views (a null's view has length 0).
fn view_bytes(views: &[u128]) -> usize {
    views.iter().map(|v| *v as u32 as usize).sum()
}

/// About the bytes a column's rows take in a message. Views count as the plain array
/// they travel as: an offset and the bytes of each value, not the buffers they share.
fn row_bytes(column: &dyn Array) -> usize {
    match column.data_type() {
        DataType::Utf8View => {
            let a = column.as_string_view();
            a.len() * 4 + view_bytes(a.views())
        }
        DataType::BinaryView => {
            let a = column.as_binary_view();
            a.len() * 4 + view_bytes(a.views())
        }
        _ => column
            .to_data()
            .get_slice_memory_size()
            .unwrap_or_else(|_| column.get_buffer_memory_size()),
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringViewArray};
    use arrow::datatypes::Field;

    use super::*;

    fn batch(rows: usize) -> RecordBatch {
        let ids = Int64Array::from_iter_values(0..rows as i64);
        let strings: StringViewArray = (0..rows)
            .map(|i| (i % 5 != 0).then(|| format!("a string longer than twelve bytes {i}")))
            .collect();
        RecordBatch::try_from_iter([
            ("id", Arc::new(ids) as ArrayRef),
            ("s", Arc::new(strings) as ArrayRef),
        ])
        .expect("batch")
    }

    fn body_bytes(batch: &RecordBatch) -> usize {
        batch.columns().iter().map(|c| row_bytes(c.as_ref())).sum()
    }

    /// A batch is cut into messages of about the size asked, which put back together are
    /// the batch.
    #[test]
    fn batches_are_cut_to_size() {
        let whole = batch(10_000);
        let schema = whole.schema();
        let wire = Arc::new(wire_schema(&schema));
        let pieces = prepare(whole.clone(), &wire, 64 << 10).expect("prepare");
        assert!(pieces.len() > 1);
        for piece in &pieces {
            assert!(
                body_bytes(piece) <= (64 << 10) + 1024,
                "{}",
                body_bytes(piece)
            );
        }
        let back = arrow::compute::concat_batches(&wire, &pieces).expect("concat");
        let back = arrow::compute::cast(back.column(1), &DataType::Utf8View).expect("cast");
        assert_eq!(&back, whole.column(1));
    }

    /// A slice of a view array travels as a plain string array of only its rows' bytes,
    /// with the same values and nulls.
    #[test]
    fn views_travel_as_their_rows_bytes() {
        let whole = batch(10_000);
        let slice = whole.slice(100, 50);
        let wire = Arc::new(wire_schema(&whole.schema()));
        assert_eq!(wire.field(1).data_type(), &DataType::Utf8);
        let pieces = prepare(slice.clone(), &wire, 4 << 20).expect("prepare");
        assert_eq!(pieces.len(), 1);
        let strings = pieces[0].column(1).as_string::<i32>();
        let expected = slice.column(1).as_string_view();
        assert_eq!(strings.values().len(), view_bytes(expected.views()));
        assert_eq!(strings.null_count(), 10);
        assert!(strings.iter().eq(expected.iter()));
    }

    /// Views inside lists, structs and dictionaries travel as plain strings too.
    #[test]
    fn nested_views_travel_as_plain_strings() {
        let item = Arc::new(Field::new("item", DataType::Utf8View, true));
        let schema = Schema::new(vec![
            Field::new("l", DataType::List(Arc::clone(&item)), true),
            Field::new(
                "d",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::BinaryView)),
                true,
            ),
            Field::new("i", DataType::Int64, false),
        ]);
        let wire = wire_schema(&schema);
        assert_eq!(
            wire.field(0).data_type(),
            &DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
        );
        assert_eq!(
            wire.field(1).data_type(),
            &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Binary))
        );
        assert_eq!(wire.field(2), schema.field(2));
    }

    /// An empty batch is one empty message under the schema.
    #[test]
    fn an_empty_batch_stays_one() {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8View, true)]));
        let empty = RecordBatch::new_empty(Arc::clone(&schema));
        let wire = Arc::new(wire_schema(&schema));
        let pieces = prepare(empty, &wire, 4 << 20).expect("prepare");
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].num_rows(), 0);
    }
}
