//! Tickets: what a DoGet runs, carried whole in the ticket, so that any server on the same
//! warehouse can answer it and nothing is held between GetFlightInfo and DoGet.
//!
//! A ticket holds either the SQL of queries to stream (one per row of bound parameters),
//! or the result of a statement that already ran when GetFlightInfo was asked (DDL, DML:
//! they run exactly once, however often the ticket is fetched). Each has its own id, by
//! which CancelFlightInfo finds the query. A result too large to travel in a ticket (gRPC
//! clients take messages of 4 MiB) is kept by the server that ran the statement instead.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow_flight::sql::{Any, ProstMessageExt, TicketStatementQuery};
use arrow_flight::{FlightEndpoint, FlightInfo, Ticket};
use bytes::Bytes;
use prost::Message;
use tonic::Status;

/// The contents of a ticket, inside `TicketStatementQuery.statement_handle`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TicketData {
    /// Tells strata's tickets from others.
    #[prost(string, tag = "1")]
    pub magic: String,
    /// Unique per GetFlightInfo: the key for cancelling.
    #[prost(string, tag = "2")]
    pub id: String,
    /// Queries to stream, one after the other.
    #[prost(string, repeated, tag = "3")]
    pub queries: Vec<String>,
    /// The result of a statement that already ran, as an Arrow IPC stream.
    #[prost(bytes = "bytes", optional, tag = "4")]
    pub result: Option<Bytes>,
    /// The statement already ran, and its result is kept by the server under the id.
    #[prost(bool, tag = "5")]
    pub kept: bool,
}

/// Results larger than this are kept by the server rather than put in the ticket.
const MAX_RESULT_IN_TICKET: usize = 1 << 20;

/// Results kept past this total size are dropped, oldest first.
const MAX_KEPT_BYTES: usize = 256 << 20;

const MAGIC: &str = "strata/1";

impl TicketData {
    /// A ticket that streams these queries.
    pub fn queries(queries: Vec<String>) -> Self {
        Self {
            magic: MAGIC.into(),
            id: new_id(),
            queries,
            result: None,
            kept: false,
        }
    }

    /// A ticket for a statement's result: in the ticket, or kept in `kept` if large.
    pub fn holding(
        schema: &Schema,
        batches: &[RecordBatch],
        kept: &KeptResults,
    ) -> Result<Self, Status> {
        let mut bytes = vec![];
        {
            let mut writer = StreamWriter::try_new(&mut bytes, schema).map_err(internal)?;
            for batch in batches {
                writer.write(batch).map_err(internal)?;
            }
            writer.finish().map_err(internal)?;
        }
        let id = new_id();
        if bytes.len() > MAX_RESULT_IN_TICKET {
            kept.keep(&id, bytes.into());
            return Ok(Self {
                magic: MAGIC.into(),
                id,
                queries: vec![],
                result: None,
                kept: true,
            });
        }
        Ok(Self {
            magic: MAGIC.into(),
            id,
            queries: vec![],
            result: Some(bytes.into()),
            kept: false,
        })
    }

    /// Whether the statement has run already (its result is held or kept).
    pub fn ran(&self) -> bool {
        self.result.is_some() || self.kept
    }

    /// Reads a ticket's `statement_handle`.
    pub fn decode(handle: &[u8]) -> Result<Self, Status> {
        match Self::decode_bytes(handle) {
            Some(data) if data.magic == MAGIC => Ok(data),
            _ => Err(Status::not_found(
                "unknown ticket: it was not made by this strata server; ask for a new one with GetFlightInfo",
            )),
        }
    }

    fn decode_bytes(handle: &[u8]) -> Option<Self> {
        <Self as Message>::decode(handle).ok()
    }

    /// The ticket of a FlightInfo's endpoint, if it is one of strata's.
    pub fn from_ticket(ticket: &Ticket) -> Option<Self> {
        let any = Any::decode(ticket.ticket.as_ref()).ok()?;
        let statement: TicketStatementQuery = any.unpack().ok()??;
        Self::decode(&statement.statement_handle).ok()
    }

    /// The result held, as a schema and batches.
    pub fn stored_result(bytes: &Bytes) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
        let reader =
            StreamReader::try_new(std::io::Cursor::new(bytes.as_ref()), None).map_err(internal)?;
        let schema = reader.schema();
        let batches = reader.collect::<Result<Vec<_>, _>>().map_err(internal)?;
        Ok((schema, batches))
    }

    /// A FlightInfo with one endpoint whose ticket is this.
    pub fn flight_info(
        &self,
        schema: &Schema,
        descriptor: arrow_flight::FlightDescriptor,
        total_records: i64,
    ) -> Result<FlightInfo, Status> {
        let statement = TicketStatementQuery {
            statement_handle: self.encode_to_vec().into(),
        };
        let ticket = Ticket::new(statement.as_any().encode_to_vec());
        Ok(FlightInfo::new()
            .try_with_schema(schema)
            .map_err(internal)?
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
            .with_descriptor(descriptor)
            .with_total_records(total_records)
            .with_ordered(true))
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

/// Results of statements too large for their tickets, by ticket id.
#[derive(Debug, Default)]
pub(crate) struct KeptResults {
    state: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    by_id: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
}

impl KeptResults {
    fn keep(&self, id: &str, result: Bytes) {
        let mut kept = self.state.lock().unwrap_or_else(|p| p.into_inner());
        kept.bytes += result.len();
        kept.by_id.insert(id.to_string(), result);
        kept.order.push_back(id.to_string());
        while kept.bytes > MAX_KEPT_BYTES && kept.order.len() > 1 {
            let Some(oldest) = kept.order.pop_front() else {
                break;
            };
            if let Some(dropped) = kept.by_id.remove(&oldest) {
                kept.bytes -= dropped.len();
            }
        }
    }

    /// A kept result, as an Arrow IPC stream.
    pub fn get(&self, id: &str) -> Result<Bytes, Status> {
        let kept = self.state.lock().unwrap_or_else(|p| p.into_inner());
        kept.by_id.get(id).cloned().ok_or_else(|| {
            Status::not_found(
                "the result of this statement is no longer kept (or another server ran it); run the statement again",
            )
        })
    }
}

/// The schema with no columns: the result of statements that return none.
pub(crate) fn empty_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

#[cfg(test)]
mod tests {
    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Field};

    use super::*;

    fn batch(text: &str) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("t", DataType::Utf8, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![text]))]).expect("batch")
    }

    #[test]
    fn small_results_travel_in_the_ticket_large_ones_are_kept() {
        let kept = KeptResults::default();
        let small = batch("ok");
        let ticket = TicketData::holding(&small.schema(), std::slice::from_ref(&small), &kept)
            .expect("small");
        assert!(ticket.result.is_some() && !ticket.kept && ticket.ran());
        let decoded = TicketData::decode(&ticket.encode_to_vec()).expect("decode");
        assert_eq!(decoded, ticket);

        let large = batch(&"x".repeat(MAX_RESULT_IN_TICKET + 1));
        let ticket = TicketData::holding(&large.schema(), std::slice::from_ref(&large), &kept)
            .expect("large");
        assert!(ticket.result.is_none() && ticket.kept && ticket.ran());
        assert!(ticket.encode_to_vec().len() < 1024);
        let (_, batches) =
            TicketData::stored_result(&kept.get(&ticket.id).expect("kept")).expect("read back");
        assert_eq!(batches, vec![large]);
        assert_eq!(
            kept.get("unknown").expect_err("not kept").code(),
            tonic::Code::NotFound
        );
    }
}
