//! Malformed requests: thousands of them, from a seeded generator, across every call —
//! bytes that are not protobuf, commands of unknown or misplaced types, tickets of random
//! bytes, SQL that does not prepare, and parameters whose Arrow IPC lies about its lengths,
//! counts, types and dictionaries. Each gets an error status of the codes its case allows,
//! never INTERNAL; then the same server still answers queries correctly.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field as ArrowField, Schema as ArrowSchema};
use arrow::ipc::{
    self, BodyCompressionBuilder, CompressionType, DateBuilder, DateUnit, DecimalBuilder,
    DictionaryBatchBuilder, DictionaryEncodingBuilder, Endianness, FieldBuilder, FieldNode,
    FixedSizeBinaryBuilder, FloatingPointBuilder, IntBuilder, ListBuilder, MessageBuilder,
    MessageHeader, MetadataVersion, Precision, RecordBatchBuilder, SchemaBuilder, Struct_Builder,
    TimeBuilder, TimeUnit, TimestampBuilder, Type, Utf8Builder,
};
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{
    ActionBeginTransactionRequest, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetTables, CommandPreparedStatementQuery, CommandStatementQuery, CommandStatementUpdate,
    ProstMessageExt, TicketStatementQuery,
};
use arrow_flight::{Action, Criteria, FlightData, FlightDescriptor, Ticket};
use flatbuffers::FlatBufferBuilder;
use futures::TryStreamExt;
use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::TestServer;

/// The server's largest request message in this test.
const MAX_MESSAGE: usize = 1 << 20;

/// A small seeded generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    /// A count far past anything real: 2^40, 2^62, i64::MAX, or a random large one.
    fn huge(&mut self) -> i64 {
        match self.below(4) {
            0 => 1 << 40,
            1 => 1 << 62,
            2 => i64::MAX,
            _ => (self.next() >> 2) as i64 | (1 << 33),
        }
    }
}

/// What a malformed request is sent to.
enum Rpc {
    GetFlightInfo(Vec<u8>),
    DoGet(Vec<u8>),
    DoAction(String, Vec<u8>),
    DoPut(Vec<FlightData>),
    DoExchange,
    ListFlights,
    GetSchema(Vec<u8>),
    PollFlightInfo(Vec<u8>),
}

struct Case {
    name: String,
    rpc: Rpc,
    allowed: &'static [Code],
}

const INVALID: &[Code] = &[Code::InvalidArgument];
const INVALID_OR_NOT_FOUND: &[Code] = &[Code::InvalidArgument, Code::NotFound];
const UNSUPPORTED: &[Code] = &[Code::Unimplemented];
const TOO_LARGE: &[Code] = &[
    Code::OutOfRange,
    Code::ResourceExhausted,
    Code::InvalidArgument,
];

fn case(name: impl Into<String>, rpc: Rpc, allowed: &'static [Code]) -> Case {
    Case {
        name: name.into(),
        rpc,
        allowed,
    }
}

/// Sends a request and reads its whole answer; the first error, if any.
async fn send(client: &mut FlightServiceClient<Channel>, rpc: Rpc) -> Result<(), Status> {
    match rpc {
        Rpc::GetFlightInfo(cmd) => {
            client
                .get_flight_info(FlightDescriptor::new_cmd(cmd))
                .await?;
        }
        Rpc::GetSchema(cmd) => {
            client.get_schema(FlightDescriptor::new_cmd(cmd)).await?;
        }
        Rpc::PollFlightInfo(cmd) => {
            client
                .poll_flight_info(FlightDescriptor::new_cmd(cmd))
                .await?;
        }
        Rpc::DoGet(ticket) => {
            let stream = client.do_get(Ticket::new(ticket)).await?.into_inner();
            stream.try_collect::<Vec<_>>().await?;
        }
        Rpc::DoAction(kind, body) => {
            let stream = client
                .do_action(Action::new(kind, body))
                .await?
                .into_inner();
            stream.try_collect::<Vec<_>>().await?;
        }
        Rpc::DoPut(messages) => {
            let stream = client
                .do_put(futures::stream::iter(messages))
                .await?
                .into_inner();
            stream.try_collect::<Vec<_>>().await?;
        }
        Rpc::DoExchange => {
            let stream = client
                .do_exchange(futures::stream::iter(vec![FlightData::default()]))
                .await?
                .into_inner();
            stream.try_collect::<Vec<_>>().await?;
        }
        Rpc::ListFlights => {
            let stream = client.list_flights(Criteria::default()).await?.into_inner();
            stream.try_collect::<Vec<_>>().await?;
        }
    }
    Ok(())
}

// Protobuf garbage, each form certain not to decode.

/// Bytes starting with a field of wire type 7, which does not exist.
fn bad_wire_type(rng: &mut Rng) -> Vec<u8> {
    let mut b = vec![0x0f];
    b.extend(rng.bytes(40));
    b
}

/// A length-delimited field longer than what follows.
fn overlong_field(rng: &mut Rng) -> Vec<u8> {
    let mut b = vec![0x0a, 0xff, 0xff, 0x03];
    b.extend(rng.bytes(100));
    b
}

/// A string field (field 1) of invalid UTF-8.
fn bad_utf8(rng: &mut Rng) -> Vec<u8> {
    let mut text = vec![0xff, 0xfe];
    text.extend(rng.bytes(20));
    let mut b = vec![0x0a, text.len() as u8];
    b.extend(text);
    b
}

/// A valid encoding cut inside its first field.
fn truncated(rng: &mut Rng, valid: &[u8]) -> Vec<u8> {
    let first = 2 + valid[1] as usize; // tag, one-byte length, payload
    let cut = 1 + rng.below(first.min(valid.len()) - 1);
    valid[..cut].to_vec()
}

fn garbage(rng: &mut Rng, valid: &[u8]) -> (String, Vec<u8>) {
    match rng.below(4) {
        0 => ("bad wire type".into(), bad_wire_type(rng)),
        1 => ("overlong field".into(), overlong_field(rng)),
        2 => ("bad UTF-8".into(), bad_utf8(rng)),
        _ => ("truncated".into(), truncated(rng, valid)),
    }
}

fn any(type_url: &str, value: Vec<u8>) -> Vec<u8> {
    Any {
        type_url: type_url.into(),
        value: value.into(),
    }
    .encode_to_vec()
}

fn sql_url(name: &str) -> String {
    format!("type.googleapis.com/arrow.flight.protocol.sql.{name}")
}

fn statement(sql: &str) -> Vec<u8> {
    CommandStatementQuery {
        query: sql.into(),
        transaction_id: None,
    }
    .as_any()
    .encode_to_vec()
}

/// SQL that must be refused when planned or prepared.
fn bad_sql(rng: &mut Rng) -> String {
    let word: String = (0..1 + rng.below(8))
        .map(|_| (b'a' + rng.below(26) as u8) as char)
        .collect();
    match rng.below(7) {
        0 => "SELEC".into(),
        1 => String::new(),
        2 => "  -- only a comment\n".into(),
        3 => format!("SELECT 1; SELECT {}", rng.below(100)),
        4 => format!("SELECT * FROM raw.no_{word}"),
        5 => format!("SELEC {word} FROM raw.sales"),
        _ => format!("SELECT {word}_missing FROM raw.sales"),
    }
}

// Arrow IPC messages, built field by field so that each can lie.

/// A parameter column's type as a schema message declares it.
#[derive(Clone, Copy, Debug)]
enum Ty {
    Int(i32),
    Utf8,
    Float(i16),
    Decimal(i32, i32, i32),
    FixedSizeBinary(i32),
    Date(i16),
    Time(i16, i32),
    Timestamp(i16),
    /// The type's enum value with no table for its parameters.
    Bare(Type),
    /// A list with this many children.
    List(usize),
    Struct,
    /// Strings dictionary-encoded under this id.
    Dictionary(i64),
}

fn int_child<'a>(fbb: &mut FlatBufferBuilder<'a>) -> flatbuffers::WIPOffset<ipc::Field<'a>> {
    let name = fbb.create_string("item");
    let int = IntBuilder::new(fbb).finish().as_union_value();
    let mut f = FieldBuilder::new(fbb);
    f.add_name(name);
    f.add_type_type(Type::Int);
    f.add_type_(int);
    f.finish()
}

fn schema_message(fields: &[Ty], endianness: Endianness, version: MetadataVersion) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let mut offsets = vec![];
    for (i, ty) in fields.iter().enumerate() {
        let children = match ty {
            Ty::List(n) => {
                let c: Vec<_> = (0..*n).map(|_| int_child(&mut fbb)).collect();
                Some(fbb.create_vector(&c))
            }
            Ty::Struct => {
                let c = [int_child(&mut fbb), int_child(&mut fbb)];
                Some(fbb.create_vector(&c))
            }
            _ => None,
        };
        let dictionary = match ty {
            Ty::Dictionary(id) => {
                let mut index = IntBuilder::new(&mut fbb);
                index.add_bitWidth(32);
                index.add_is_signed(true);
                let index = index.finish();
                let mut d = DictionaryEncodingBuilder::new(&mut fbb);
                d.add_id(*id);
                d.add_indexType(index);
                Some(d.finish())
            }
            _ => None,
        };
        let (type_type, table) = match *ty {
            Ty::Int(bits) => {
                let mut b = IntBuilder::new(&mut fbb);
                b.add_bitWidth(bits);
                b.add_is_signed(true);
                (Type::Int, Some(b.finish().as_union_value()))
            }
            Ty::Utf8 | Ty::Dictionary(_) => (
                Type::Utf8,
                Some(Utf8Builder::new(&mut fbb).finish().as_union_value()),
            ),
            Ty::Float(p) => {
                let mut b = FloatingPointBuilder::new(&mut fbb);
                b.add_precision(Precision(p));
                (Type::FloatingPoint, Some(b.finish().as_union_value()))
            }
            Ty::Decimal(p, s, bits) => {
                let mut b = DecimalBuilder::new(&mut fbb);
                b.add_precision(p);
                b.add_scale(s);
                b.add_bitWidth(bits);
                (Type::Decimal, Some(b.finish().as_union_value()))
            }
            Ty::FixedSizeBinary(w) => {
                let mut b = FixedSizeBinaryBuilder::new(&mut fbb);
                b.add_byteWidth(w);
                (Type::FixedSizeBinary, Some(b.finish().as_union_value()))
            }
            Ty::Date(u) => {
                let mut b = DateBuilder::new(&mut fbb);
                b.add_unit(DateUnit(u));
                (Type::Date, Some(b.finish().as_union_value()))
            }
            Ty::Time(u, bits) => {
                let mut b = TimeBuilder::new(&mut fbb);
                b.add_unit(TimeUnit(u));
                b.add_bitWidth(bits);
                (Type::Time, Some(b.finish().as_union_value()))
            }
            Ty::Timestamp(u) => {
                let mut b = TimestampBuilder::new(&mut fbb);
                b.add_unit(TimeUnit(u));
                (Type::Timestamp, Some(b.finish().as_union_value()))
            }
            Ty::Bare(t) => (t, None),
            Ty::List(_) => (
                Type::List,
                Some(ListBuilder::new(&mut fbb).finish().as_union_value()),
            ),
            Ty::Struct => (
                Type::Struct_,
                Some(Struct_Builder::new(&mut fbb).finish().as_union_value()),
            ),
        };
        let name = fbb.create_string(&format!("${}", i + 1));
        let mut f = FieldBuilder::new(&mut fbb);
        f.add_name(name);
        f.add_nullable(true);
        f.add_type_type(type_type);
        if let Some(table) = table {
            f.add_type_(table);
        }
        if let Some(children) = children {
            f.add_children(children);
        }
        if let Some(dictionary) = dictionary {
            f.add_dictionary(dictionary);
        }
        offsets.push(f.finish());
    }
    let fields = fbb.create_vector(&offsets);
    let mut schema = SchemaBuilder::new(&mut fbb);
    schema.add_endianness(endianness);
    schema.add_fields(fields);
    let schema = schema.finish().as_union_value();
    let mut message = MessageBuilder::new(&mut fbb);
    message.add_version(version);
    message.add_header_type(MessageHeader::Schema);
    message.add_header(schema);
    let message = message.finish();
    fbb.finish(message, None);
    fbb.finished_data().to_vec()
}

/// A record batch header: its length, nodes (length, nulls), buffers (offset, length),
/// variadic buffer counts, and whether it says its body is compressed.
#[derive(Clone, Debug)]
struct BatchHeader {
    length: i64,
    nodes: Vec<(i64, i64)>,
    buffers: Vec<(i64, i64)>,
    variadic: Option<Vec<i64>>,
    compressed: bool,
}

fn batch_message(h: &BatchHeader, dictionary_id: Option<i64>) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let nodes: Vec<FieldNode> = h.nodes.iter().map(|&(l, n)| FieldNode::new(l, n)).collect();
    let nodes = fbb.create_vector(&nodes);
    let buffers: Vec<ipc::Buffer> = h
        .buffers
        .iter()
        .map(|&(o, l)| ipc::Buffer::new(o, l))
        .collect();
    let buffers = fbb.create_vector(&buffers);
    let variadic = h.variadic.as_ref().map(|v| fbb.create_vector(v));
    let compression = h.compressed.then(|| {
        let mut c = BodyCompressionBuilder::new(&mut fbb);
        c.add_codec(CompressionType::LZ4_FRAME);
        c.finish()
    });
    let mut b = RecordBatchBuilder::new(&mut fbb);
    b.add_length(h.length);
    b.add_nodes(nodes);
    b.add_buffers(buffers);
    if let Some(v) = variadic {
        b.add_variadicBufferCounts(v);
    }
    if let Some(c) = compression {
        b.add_compression(c);
    }
    let batch = b.finish();
    let (header_type, header) = match dictionary_id {
        Some(id) => {
            let mut d = DictionaryBatchBuilder::new(&mut fbb);
            d.add_id(id);
            d.add_data(batch);
            (MessageHeader::DictionaryBatch, d.finish().as_union_value())
        }
        None => (MessageHeader::RecordBatch, batch.as_union_value()),
    };
    let mut message = MessageBuilder::new(&mut fbb);
    message.add_version(MetadataVersion::V5);
    message.add_header_type(header_type);
    message.add_header(header);
    let message = message.finish();
    fbb.finish(message, None);
    fbb.finished_data().to_vec()
}

fn ipc_data(header: Vec<u8>, body: Vec<u8>) -> FlightData {
    FlightData {
        data_header: header.into(),
        data_body: body.into(),
        ..Default::default()
    }
}

/// A valid schema of one Int64 column, and a valid batch of `rows` rows for it.
fn int64_schema() -> Vec<u8> {
    schema_message(&[Ty::Int(64)], Endianness::Little, MetadataVersion::V5)
}

fn int64_batch(rows: i64) -> BatchHeader {
    BatchHeader {
        length: rows,
        nodes: vec![(rows, 0)],
        buffers: vec![(0, 0), (0, rows * 8)],
        variadic: None,
        compressed: false,
    }
}

/// Parameters of two columns (Int64, Utf8) as arrow writes them.
fn real_parameters() -> Vec<FlightData> {
    let schema = Arc::new(ArrowSchema::new(vec![
        ArrowField::new("$1", DataType::Int64, true),
        ArrowField::new("$2", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(StringArray::from(vec!["a", "bb", "ccc"])),
        ],
    )
    .expect("batch");
    arrow_flight::utils::batches_to_flight_data(&schema, vec![batch]).expect("encode")
}

/// A malformed parameter stream (after the command), and what is wrong with it.
fn bad_parameters(rng: &mut Rng) -> (String, Vec<FlightData>) {
    let schema = || ipc_data(int64_schema(), vec![]);
    let body = |rows: usize| vec![0u8; rows * 8];
    let with_batch =
        |h: BatchHeader, body: Vec<u8>| vec![schema(), ipc_data(batch_message(&h, None), body)];
    let rows = 1 + rng.below(5) as i64;
    match rng.below(26) {
        0 => (
            "random header".into(),
            vec![ipc_data(rng.bytes(200), rng.bytes(64))],
        ),
        1 => {
            let mut h = int64_schema();
            let cut = rng.below(h.len() - 1);
            h.truncate(cut);
            ("truncated schema header".into(), vec![ipc_data(h, vec![])])
        }
        2 => {
            // The fields vector's length, a little-endian u32 right before its offsets,
            // set far past the header: the verifier must refuse it.
            let mut h = schema_message(
                &[Ty::Int(64), Ty::Utf8],
                Endianness::Little,
                MetadataVersion::V5,
            );
            let at = h
                .windows(4)
                .rposition(|w| w == [2, 0, 0, 0])
                .expect("the fields' count");
            let huge = rng.pick(&[u32::MAX, 1 << 30, 0x0100_0000]);
            h[at..at + 4].copy_from_slice(&huge.to_le_bytes());
            (
                format!("schema declaring {huge} fields"),
                vec![ipc_data(h, vec![])],
            )
        }
        3 => {
            let ty = rng.pick(&[
                Type::Int,
                Type::FloatingPoint,
                Type::Decimal,
                Type::Timestamp,
                Type::Date,
                Type::Time,
                Type::FixedSizeBinary,
            ]);
            (
                format!("{ty:?} without its table"),
                vec![ipc_data(
                    schema_message(&[Ty::Bare(ty)], Endianness::Little, MetadataVersion::V5),
                    vec![],
                )],
            )
        }
        4 => {
            let bits = rng.pick(&[0, 1, 7, 12, 128, -8, i32::MAX]);
            (
                format!("integer of {bits} bits"),
                vec![ipc_data(
                    schema_message(&[Ty::Int(bits)], Endianness::Little, MetadataVersion::V5),
                    vec![],
                )],
            )
        }
        5 => {
            let t = Type(22 + rng.below(200) as u8);
            (
                format!("unknown type {}", t.0),
                vec![ipc_data(
                    schema_message(&[Ty::Bare(t)], Endianness::Little, MetadataVersion::V5),
                    vec![],
                )],
            )
        }
        6 => {
            let ty = rng.pick(&[Ty::List(0), Ty::List(1), Ty::List(2), Ty::Struct]);
            (
                format!("nested {ty:?}"),
                vec![ipc_data(
                    schema_message(&[ty], Endianness::Little, MetadataVersion::V5),
                    vec![],
                )],
            )
        }
        7 => {
            let id = rng.huge();
            (
                format!("dictionary-encoded field {id}"),
                vec![ipc_data(
                    schema_message(
                        &[Ty::Dictionary(id)],
                        Endianness::Little,
                        MetadataVersion::V5,
                    ),
                    vec![],
                )],
            )
        }
        8 => {
            let id = rng.next() as i64;
            let h = int64_batch(rows);
            (
                format!("dictionary batch of unknown id {id}"),
                vec![
                    schema(),
                    ipc_data(batch_message(&h, Some(id)), body(rows as usize)),
                ],
            )
        }
        9 => (
            "batch before the schema".into(),
            vec![ipc_data(
                batch_message(&int64_batch(rows), None),
                body(rows as usize),
            )],
        ),
        10 => {
            let n = rng.huge();
            let mut h = int64_batch(rows);
            h.length = if rng.below(2) == 0 { n } else { -n };
            (
                format!("batch declaring {} rows", h.length),
                with_batch(h, body(rows as usize)),
            )
        }
        11 => {
            let mut h = int64_batch(rows);
            h.nodes[0] = match rng.below(3) {
                0 => (rng.huge(), 0),
                1 => (rows, rows + 1 + rng.below(10) as i64),
                _ => (rows, -1 - rng.below(10) as i64),
            };
            (
                format!("node {:?} in a batch of {rows}", h.nodes[0]),
                with_batch(h, body(rows as usize)),
            )
        }
        12 => {
            let mut h = int64_batch(rows);
            let k = rng.below(2);
            h.buffers[k] = match rng.below(4) {
                0 => (0, rng.huge()),
                1 => (rng.huge(), 8),
                2 => (-1 - rng.below(100) as i64, 8),
                _ => (0, rows * 8 + 1 + rng.below(1000) as i64),
            };
            (
                format!("buffer {k} at {:?}", h.buffers[k]),
                with_batch(h, body(rows as usize)),
            )
        }
        13 => {
            let mut h = int64_batch(rows);
            if rng.below(2) == 0 {
                h.buffers.truncate(rng.below(2));
            } else {
                h.buffers.extend((0..1 + rng.below(1000)).map(|_| (0, 0)));
            }
            (
                format!("{} buffers for one column", h.buffers.len()),
                with_batch(h, body(rows as usize)),
            )
        }
        14 => {
            let mut h = int64_batch(rows);
            if rng.below(2) == 0 {
                h.nodes.clear();
            } else {
                h.nodes.extend((0..1 + rng.below(1000)).map(|_| (rows, 0)));
            }
            (
                format!("{} nodes for one column", h.nodes.len()),
                with_batch(h, body(rows as usize)),
            )
        }
        15 => {
            let mut m = real_parameters();
            let full = m[1].data_body.len();
            // Past the last buffer's end (arrow pads buffers to 64 bytes: the strings'
            // data starts at byte 192).
            let cut = rng.below(192);
            m[1].data_body = m[1].data_body.slice(..cut);
            (format!("body cut to {cut} of {full} bytes"), m)
        }
        16 => {
            // The string column's offsets (0, 1, 3, 6) made to point past their data or
            // go backwards.
            let mut m = real_parameters();
            let mut body = m[1].data_body.to_vec();
            let at = body
                .windows(16)
                .position(|w| w == [0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 6, 0, 0, 0])
                .expect("the offsets");
            let (slot, value) = match rng.below(3) {
                0 => (3, 7 + rng.below(1 << 30) as i32),
                1 => (0, -1 - rng.below(1000) as i32),
                _ => (2, 0),
            };
            body[at + slot * 4..at + slot * 4 + 4].copy_from_slice(&value.to_le_bytes());
            m[1].data_body = body.into();
            (format!("offset {slot} set to {value}"), m)
        }
        17 => {
            let size = rng.pick(&[1i64 << 40, 1 << 62, i64::MAX, -2, -(1 << 40)]);
            let mut h = int64_batch(1);
            h.compressed = true;
            h.buffers = vec![(0, 0), (0, 16)];
            let mut b = size.to_le_bytes().to_vec();
            b.extend([0u8; 8]);
            (
                format!("compressed buffer declaring {size} bytes"),
                with_batch(h, b),
            )
        }
        18 => {
            let mut h = int64_batch(rows);
            h.variadic = Some((0..1 + rng.below(4)).map(|_| rng.huge()).collect());
            (
                format!("variadic counts {:?} with no view column", h.variadic),
                with_batch(h, body(rows as usize)),
            )
        }
        19 => {
            let (p, s, bits) = rng.pick(&[
                (0, 0, 128),
                (39, 2, 128),
                (100, 0, 256),
                (10, 11, 128),
                (10, -11, 128),
                (10, 2, 100),
                (300, 0, 128),
                (10, 200, 128),
            ]);
            (
                format!("DECIMAL({p}, {s}) in {bits} bits"),
                vec![ipc_data(
                    schema_message(
                        &[Ty::Decimal(p, s, bits)],
                        Endianness::Little,
                        MetadataVersion::V5,
                    ),
                    vec![],
                )],
            )
        }
        20 => (
            "big-endian schema".into(),
            vec![ipc_data(
                schema_message(&[Ty::Int(64)], Endianness::Big, MetadataVersion::V5),
                vec![],
            )],
        ),
        21 => {
            let v = rng.pick(&[
                MetadataVersion::V1,
                MetadataVersion::V2,
                MetadataVersion::V3,
                MetadataVersion(9),
            ]);
            (
                format!("metadata version {}", v.0),
                vec![ipc_data(
                    schema_message(&[Ty::Int(64)], Endianness::Little, v),
                    vec![],
                )],
            )
        }
        22 => {
            let ty = rng.pick(&[
                Ty::Float(3),
                Ty::Float(-1),
                Ty::Date(2),
                Ty::Date(-1),
                Ty::Time(0, 64),
                Ty::Time(3, 32),
                Ty::Time(9, 64),
                Ty::Timestamp(4),
                Ty::Timestamp(-3),
                Ty::FixedSizeBinary(0),
                Ty::FixedSizeBinary(-5),
                Ty::FixedSizeBinary(i32::MAX),
            ]);
            (
                format!("{ty:?}"),
                vec![ipc_data(
                    schema_message(&[ty], Endianness::Little, MetadataVersion::V5),
                    vec![],
                )],
            )
        }
        23 => {
            let other = ipc_data(
                schema_message(&[Ty::Utf8], Endianness::Little, MetadataVersion::V5),
                vec![],
            );
            ("a second, different schema".into(), vec![schema(), other])
        }
        24 => {
            // A header whose message type is not schema, batch or dictionary.
            let mut fbb = FlatBufferBuilder::new();
            let mut message = MessageBuilder::new(&mut fbb);
            message.add_version(MetadataVersion::V5);
            message.add_header_type(rng.pick(&[
                MessageHeader::NONE,
                MessageHeader::Tensor,
                MessageHeader::SparseTensor,
            ]));
            let message = message.finish();
            fbb.finish(message, None);
            (
                "a header of another message type".into(),
                vec![ipc_data(fbb.finished_data().to_vec(), vec![])],
            )
        }
        _ => {
            // Too many rows for a batch in total, without the body to hold them (a Null
            // column has no buffers).
            let n = rng.huge();
            let header = schema_message(
                &[Ty::Bare(Type::Null)],
                Endianness::Little,
                MetadataVersion::V5,
            );
            let h = BatchHeader {
                length: n,
                nodes: vec![(n, n)],
                buffers: vec![],
                variadic: None,
                compressed: false,
            };
            (
                format!("{n} null rows"),
                vec![
                    ipc_data(header, vec![]),
                    ipc_data(batch_message(&h, None), vec![]),
                ],
            )
        }
    }
}

/// The first DoPut message: the command, with no Arrow data.
fn command_message(cmd: Vec<u8>) -> FlightData {
    FlightData {
        flight_descriptor: Some(FlightDescriptor::new_cmd(cmd)),
        ..Default::default()
    }
}

fn generate(rng: &mut Rng, handle: &[u8]) -> Vec<Case> {
    let mut cases = vec![];
    let valid_query = statement("SELECT 1");
    let valid_action = ActionCreatePreparedStatementRequest {
        query: "SELECT 1".into(),
        transaction_id: None,
    }
    .as_any()
    .encode_to_vec();
    let prepared_put = CommandPreparedStatementQuery {
        prepared_statement_handle: handle.to_vec().into(),
    }
    .as_any()
    .encode_to_vec();
    for i in 0..1_300 {
        let c = match i % 13 {
            0 => {
                let (what, bytes) = garbage(rng, &valid_query);
                case(
                    format!("GetFlightInfo: {what}"),
                    Rpc::GetFlightInfo(bytes),
                    INVALID,
                )
            }
            1 => {
                // A known command whose body does not decode.
                let name = rng.pick(&[
                    "CommandStatementQuery",
                    "CommandGetTables",
                    "CommandGetDbSchemas",
                    "CommandPreparedStatementQuery",
                    "CommandGetSqlInfo",
                    "CommandGetPrimaryKeys",
                ]);
                let (what, bytes) = match rng.below(3) {
                    0 => ("bad wire type".to_string(), bad_wire_type(rng)),
                    1 => ("overlong field".to_string(), overlong_field(rng)),
                    // Field 1 of these is a string.
                    _ if matches!(
                        name,
                        "CommandStatementQuery" | "CommandGetTables" | "CommandGetDbSchemas"
                    ) =>
                    {
                        ("bad UTF-8".to_string(), bad_utf8(rng))
                    }
                    _ => ("overlong field".to_string(), overlong_field(rng)),
                };
                case(
                    format!("GetFlightInfo {name}: {what}"),
                    Rpc::GetFlightInfo(any(&sql_url(name), bytes)),
                    INVALID,
                )
            }
            2 => {
                let url: String = match rng.below(3) {
                    0 => format!("type.googleapis.com/evil.Command{}", rng.next()),
                    1 => sql_url(&format!("CommandNoSuch{}", rng.below(1000))),
                    _ => (0..rng.below(30))
                        .map(|_| (b' ' + rng.below(90) as u8) as char)
                        .collect(),
                };
                let rpc = match rng.below(3) {
                    0 => Rpc::GetFlightInfo(any(&url, rng.bytes(30))),
                    1 => Rpc::DoGet(any(&url, rng.bytes(30))),
                    _ => Rpc::DoPut(vec![command_message(any(&url, rng.bytes(30)))]),
                };
                case(format!("unknown type URL '{url}'"), rpc, INVALID)
            }
            3 => {
                // Commands sent to a call that does not take them.
                let ticket = TicketStatementQuery {
                    statement_handle: rng.bytes(16).into(),
                }
                .as_any()
                .encode_to_vec();
                let update = CommandStatementUpdate {
                    query: "SELECT 1".into(),
                    transaction_id: None,
                }
                .as_any()
                .encode_to_vec();
                let tables = CommandGetTables::default().as_any().encode_to_vec();
                match rng.below(4) {
                    0 => case(
                        "ticket sent to GetFlightInfo",
                        Rpc::GetFlightInfo(ticket),
                        INVALID,
                    ),
                    1 => case(
                        "query command as a ticket",
                        Rpc::DoGet(valid_query.clone()),
                        INVALID,
                    ),
                    2 => case("update command as a ticket", Rpc::DoGet(update), INVALID),
                    _ => case(
                        "GetTables sent to DoPut",
                        Rpc::DoPut(vec![command_message(tables)]),
                        INVALID,
                    ),
                }
            }
            4 => {
                let sql = bad_sql(rng);
                if rng.below(2) == 0 {
                    case(
                        format!("query {sql:?}"),
                        Rpc::GetFlightInfo(statement(&sql)),
                        INVALID,
                    )
                } else {
                    let body = ActionCreatePreparedStatementRequest {
                        query: sql.clone(),
                        transaction_id: None,
                    }
                    .as_any()
                    .encode_to_vec();
                    case(
                        format!("prepare {sql:?}"),
                        Rpc::DoAction("CreatePreparedStatement".into(), body),
                        INVALID,
                    )
                }
            }
            5 => {
                // Tickets of random bytes, protobuf-shaped garbage, or unknown handles.
                match rng.below(4) {
                    0 => {
                        let mut b = rng.bytes(64);
                        if b.is_empty() {
                            b.push(0xff);
                        }
                        // Random bytes may parse as an Any by chance; its type URL is then
                        // garbage too.
                        case("ticket of random bytes", Rpc::DoGet(b), INVALID)
                    }
                    1 => {
                        let (what, b) = garbage(rng, &valid_query);
                        case(format!("ticket: {what}"), Rpc::DoGet(b), INVALID)
                    }
                    2 => {
                        let t = TicketStatementQuery {
                            statement_handle: rng.bytes(48).into(),
                        }
                        .as_any()
                        .encode_to_vec();
                        case(
                            "ticket with a random handle",
                            Rpc::DoGet(t),
                            INVALID_OR_NOT_FOUND,
                        )
                    }
                    _ => {
                        let t = CommandPreparedStatementQuery {
                            prepared_statement_handle: rng.bytes(48).into(),
                        }
                        .as_any()
                        .encode_to_vec();
                        case(
                            "unknown prepared statement as a ticket",
                            Rpc::DoGet(t),
                            INVALID_OR_NOT_FOUND,
                        )
                    }
                }
            }
            6 => {
                let kind = rng.pick(&[
                    "CreatePreparedStatement",
                    "ClosePreparedStatement",
                    "CancelQuery",
                    "BeginTransaction",
                    "CancelFlightInfo",
                ]);
                let (what, body) = if rng.below(2) == 0 {
                    garbage(rng, &valid_action)
                } else {
                    // A body of the right type URL whose message does not decode.
                    let url = match kind {
                        "CreatePreparedStatement" => {
                            sql_url("ActionCreatePreparedStatementRequest")
                        }
                        "ClosePreparedStatement" => sql_url("ActionClosePreparedStatementRequest"),
                        "CancelQuery" => sql_url("ActionCancelQueryRequest"),
                        "BeginTransaction" => sql_url("ActionBeginTransactionRequest"),
                        _ => "type.googleapis.com/arrow.flight.protocol.CancelFlightInfoRequest"
                            .into(),
                    };
                    ("undecodable body".into(), any(&url, bad_wire_type(rng)))
                };
                let body = if kind == "CancelFlightInfo" {
                    bad_wire_type(rng)
                } else {
                    body
                };
                case(
                    format!("{kind}: {what}"),
                    Rpc::DoAction(kind.into(), body),
                    INVALID,
                )
            }
            7 => match rng.below(4) {
                0 => {
                    let b = ActionClosePreparedStatementRequest {
                        prepared_statement_handle: rng.bytes(32).into(),
                    }
                    .as_any()
                    .encode_to_vec();
                    case(
                        "close an unknown prepared statement",
                        Rpc::DoAction("ClosePreparedStatement".into(), b),
                        INVALID_OR_NOT_FOUND,
                    )
                }
                1 => {
                    let kind: String = (0..1 + rng.below(20))
                        .map(|_| (b'A' + rng.below(26) as u8) as char)
                        .collect();
                    case(
                        format!("unknown action {kind}"),
                        Rpc::DoAction(kind, rng.bytes(20)),
                        INVALID_OR_NOT_FOUND,
                    )
                }
                2 => {
                    let b = ActionBeginTransactionRequest {}.as_any().encode_to_vec();
                    case(
                        "begin a transaction",
                        Rpc::DoAction("BeginTransaction".into(), b),
                        UNSUPPORTED,
                    )
                }
                _ => {
                    let info = arrow_flight::sql::ActionCancelQueryRequest {
                        info: overlong_field(rng).into(),
                    }
                    .as_any()
                    .encode_to_vec();
                    case(
                        "cancel a FlightInfo that does not decode",
                        Rpc::DoAction("CancelQuery".into(), info),
                        INVALID,
                    )
                }
            },
            8 => {
                let (what, b) = garbage(rng, &valid_query);
                match rng.below(4) {
                    0 => case(
                        format!("DoPut command: {what}"),
                        Rpc::DoPut(vec![command_message(b)]),
                        INVALID,
                    ),
                    1 => case(
                        "DoPut without a descriptor",
                        Rpc::DoPut(vec![FlightData::default()]),
                        INVALID,
                    ),
                    2 => case("DoPut with no message", Rpc::DoPut(vec![]), INVALID),
                    _ => {
                        let cmd = CommandPreparedStatementQuery {
                            prepared_statement_handle: rng.bytes(24).into(),
                        }
                        .as_any()
                        .encode_to_vec();
                        let mut m = vec![command_message(cmd)];
                        m.extend(real_parameters());
                        case(
                            "bind to an unknown prepared statement",
                            Rpc::DoPut(m),
                            INVALID_OR_NOT_FOUND,
                        )
                    }
                }
            }
            _ => {
                // Most cases: corrupt parameters bound to a real prepared statement.
                let (what, data) = bad_parameters(rng);
                let mut m = vec![command_message(prepared_put.clone())];
                m.extend(data);
                case(format!("parameters: {what}"), Rpc::DoPut(m), INVALID)
            }
        };
        cases.push(c);
    }
    // Messages past the server's limit, and calls it does not serve.
    cases.push(case(
        "oversized command",
        Rpc::GetFlightInfo(statement(&format!(
            "SELECT '{}'",
            "x".repeat(2 * MAX_MESSAGE)
        ))),
        TOO_LARGE,
    ));
    let mut big = vec![
        command_message(prepared_put.clone()),
        ipc_data(int64_schema(), vec![]),
    ];
    big.push(ipc_data(
        batch_message(&int64_batch(1), None),
        vec![0; 2 * MAX_MESSAGE],
    ));
    cases.push(case(
        "oversized parameter batch",
        Rpc::DoPut(big),
        TOO_LARGE,
    ));
    cases.push(case("DoExchange", Rpc::DoExchange, UNSUPPORTED));
    cases.push(case("ListFlights", Rpc::ListFlights, UNSUPPORTED));
    cases.push(case(
        "GetSchema",
        Rpc::GetSchema(valid_query.clone()),
        UNSUPPORTED,
    ));
    cases.push(case(
        "PollFlightInfo",
        Rpc::PollFlightInfo(valid_query),
        UNSUPPORTED,
    ));
    cases
}

/// 1,300 malformed requests and a few oversized or unsupported ones: each is refused with
/// a code its case allows, never INTERNAL; then the same server answers a query and binds
/// parameters correctly.
#[tokio::test]
async fn malformed_requests_are_refused_and_the_server_keeps_serving() {
    let options = strata_server::Options {
        max_message_size: Some(MAX_MESSAGE),
        ..Default::default()
    };
    let server = TestServer::start_with(options, strata_catalog::Config::default()).await;
    let mut client = FlightServiceClient::new(server.channel().await);

    // A prepared statement to bind corrupt parameters to.
    let body = ActionCreatePreparedStatementRequest {
        query: "SELECT count(*) AS n FROM raw.sales WHERE month = ?".into(),
        transaction_id: None,
    }
    .as_any()
    .encode_to_vec();
    let results: Vec<arrow_flight::Result> = client
        .do_action(Action::new("CreatePreparedStatement", body))
        .await
        .expect("prepare")
        .into_inner()
        .try_collect()
        .await
        .expect("prepared");
    let prepared: ActionCreatePreparedStatementResult = Any::decode(results[0].body.as_ref())
        .expect("any")
        .unpack()
        .expect("unpack")
        .expect("a result");
    let handle = prepared.prepared_statement_handle.to_vec();

    let mut rng = Rng(0x5eed_2026_0026_0001);
    let cases = generate(&mut rng, &handle);
    assert!(cases.len() >= 1_000, "{}", cases.len());
    let mut failures = vec![];
    for (i, c) in cases.into_iter().enumerate() {
        match send(&mut client, c.rpc).await {
            Ok(()) => failures.push(format!("#{i} {}: accepted", c.name)),
            Err(status) if !c.allowed.contains(&status.code()) => failures.push(format!(
                "#{i} {}: {:?} {}",
                c.name,
                status.code(),
                status.message()
            )),
            Err(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} malformed requests were not refused as expected:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The same server still answers, on a new client too.
    let mut sql = server.client().await;
    let (_, batches) = crate::query(&mut sql, "SELECT count(*) AS n FROM raw.sales")
        .await
        .expect("still serving");
    assert_eq!(crate::pretty(&batches).matches("120").count(), 1);
    let mut prepared = sql
        .prepare("SELECT ? + 1 AS x".into(), None)
        .await
        .expect("prepare");
    let schema = Arc::new(ArrowSchema::new(vec![ArrowField::new(
        "$1",
        DataType::Int64,
        false,
    )]));
    let params =
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![41]))]).expect("params");
    prepared.set_parameters(params).expect("parameters");
    let info = prepared.execute().await.expect("execute");
    let batches = crate::fetch(&mut sql, &info).await.expect("fetch");
    assert!(
        crate::pretty(&batches).contains("| 42 |"),
        "{}",
        crate::pretty(&batches)
    );
    server.stop().await;
}

/// The abort seen before these checks: parameter messages declaring 2^40 of something
/// (rows, a buffer's length, a compressed buffer's size) are INVALID_ARGUMENT naming what
/// is wrong, and the server lives on.
#[tokio::test]
async fn declared_sizes_of_two_to_the_forty_are_refused() {
    let server = TestServer::start().await;
    let mut client = FlightServiceClient::new(server.channel().await);
    let mut sql = server.client().await;
    let handle = {
        // The handle, through a raw CreatePreparedStatement (the client type hides it).
        let body = ActionCreatePreparedStatementRequest {
            query: "SELECT ? AS x".into(),
            transaction_id: None,
        }
        .as_any()
        .encode_to_vec();
        let results: Vec<arrow_flight::Result> = client
            .do_action(Action::new("CreatePreparedStatement", body))
            .await
            .expect("prepare")
            .into_inner()
            .try_collect()
            .await
            .expect("prepared");
        let r: ActionCreatePreparedStatementResult = Any::decode(results[0].body.as_ref())
            .expect("any")
            .unpack()
            .expect("unpack")
            .expect("result");
        r.prepared_statement_handle.to_vec()
    };
    let cmd = CommandPreparedStatementQuery {
        prepared_statement_handle: handle.into(),
    }
    .as_any()
    .encode_to_vec();
    let huge = 1i64 << 40;
    let mut lengths = int64_batch(1);
    lengths.length = huge;
    let mut buffer = int64_batch(1);
    buffer.buffers[1] = (0, huge);
    let mut compressed = int64_batch(1);
    compressed.compressed = true;
    compressed.buffers = vec![(0, 0), (0, 16)];
    let mut compressed_body = huge.to_le_bytes().to_vec();
    compressed_body.extend([0u8; 8]);
    let cases = [
        (lengths, vec![0u8; 8], "rows"),
        (buffer, vec![0u8; 8], "ends past the message body"),
        (compressed, compressed_body, "decompressed"),
    ];
    for (header, body, expected) in cases {
        let messages = vec![
            command_message(cmd.clone()),
            ipc_data(int64_schema(), vec![]),
            ipc_data(batch_message(&header, None), body),
        ];
        let err = send(&mut client, Rpc::DoPut(messages))
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(expected), "{}", err.message());
    }
    let (_, batches) = crate::query(&mut sql, "SELECT count(*) AS n FROM raw.sales")
        .await
        .expect("still serving");
    assert_eq!(crate::pretty(&batches).matches("120").count(), 1);
    server.stop().await;
}
