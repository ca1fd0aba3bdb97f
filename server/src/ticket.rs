//! Tickets: what a DoGet runs, carried whole in the ticket, so that any server on the same
//! warehouse can answer it and nothing is held between GetFlightInfo and DoGet.
//!
//! A ticket holds either the SQL of queries to stream (one per row of bound parameters),
//! or the result of a statement that already ran when GetFlightInfo was asked (DDL, DML:
//! they run exactly once, however often the ticket is fetched). Each has its own id, by
//! which CancelFlightInfo finds the query.

use std::sync::Arc;

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
}

const MAGIC: &str = "strata/1";

impl TicketData {
    /// A ticket that streams these queries.
    pub fn queries(queries: Vec<String>) -> Self {
        Self {
            magic: MAGIC.into(),
            id: new_id(),
            queries,
            result: None,
        }
    }

    /// A ticket that holds a statement's result.
    pub fn holding(schema: &Schema, batches: &[RecordBatch]) -> Result<Self, Status> {
        let mut bytes = vec![];
        {
            let mut writer = StreamWriter::try_new(&mut bytes, schema).map_err(internal)?;
            for batch in batches {
                writer.write(batch).map_err(internal)?;
            }
            writer.finish().map_err(internal)?;
        }
        Ok(Self {
            magic: MAGIC.into(),
            id: new_id(),
            queries: vec![],
            result: Some(bytes.into()),
        })
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

/// The schema with no columns: the result of statements that return none.
pub(crate) fn empty_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}
