//! Tickets are handles. GetFlightInfo plans a query (or classifies and checks a statement)
//! and keeps the work server-side, in the client's session, under an id of 128 random
//! bits; the ticket (`TicketStatementQuery.statement_handle`, so Flight SQL clients take
//! it) holds only that id. DoGet runs only tickets this server issued to the same client
//! and that have not expired; anything else is NOT_FOUND, and nothing in a ticket is ever
//! read as SQL or Arrow data.
//!
//! - A query's ticket may be fetched any number of times until it expires: each fetch runs
//!   the plan GetFlightInfo made.
//! - A statement's ticket (DDL, DML, SHOW ZONES, …) runs the statement once, at its first
//!   fetch; its result is kept under the ticket, and later fetches get it again.
//!
//! A client holds at most [`MAX_TICKETS`] tickets; past that the oldest are forgotten.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::sql::{Any, ProstMessageExt, TicketStatementQuery};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use datafusion::logical_expr::LogicalPlan;
use prost::Message;
use tonic::Status;

use crate::sessions::random_id;

/// Tickets a client holds at most; past this the oldest are forgotten.
pub(crate) const MAX_TICKETS: usize = 4096;

/// What a ticket runs.
pub(crate) enum Work {
    /// Queries: the first one planned and optimized; the others (one per further row of
    /// bound parameters) are planned when the first has streamed.
    Query {
        plan: LogicalPlan,
        rest: Vec<String>,
    },
    /// A statement that is not a query (one per row of bound parameters): run once, by the
    /// first fetch, which keeps its outcome here.
    Statement {
        statements: Vec<String>,
        outcome: tokio::sync::Mutex<Option<Result<Ran, Status>>>,
    },
}

/// What a statement gave: its rows (a count, a listing), collected.
#[derive(Debug, Clone)]
pub(crate) struct Ran {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// A ticket this server issued.
pub(crate) struct Issued {
    pub id: String,
    pub work: Work,
    expires: Instant,
}

impl Work {
    /// Statements to run once.
    pub fn statement(statements: Vec<String>) -> Self {
        Self::Statement {
            statements,
            outcome: tokio::sync::Mutex::new(None),
        }
    }
}

impl Issued {
    /// A FlightInfo with one endpoint whose ticket is this one's handle. `schema` is `None`
    /// when it is known only once the statement has run: the FlightInfo then holds none,
    /// and clients take the stream's.
    pub fn flight_info(
        &self,
        schema: Option<&Schema>,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let statement = TicketStatementQuery {
            statement_handle: self.id.clone().into_bytes().into(),
        };
        let ticket = Ticket::new(statement.as_any().encode_to_vec());
        let mut info = FlightInfo::new();
        if let Some(schema) = schema {
            info = info
                .try_with_schema(schema)
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(info
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
            .with_descriptor(descriptor)
            .with_total_records(-1)
            .with_ordered(true))
    }
}

/// The handle in a Flight ticket, if it is a `TicketStatementQuery`.
pub(crate) fn handle_of(ticket: &Ticket) -> Option<Vec<u8>> {
    let any = Any::decode(ticket.ticket.as_ref()).ok()?;
    let statement: TicketStatementQuery = any.unpack().ok()??;
    Some(statement.statement_handle.to_vec())
}

/// The answer to a ticket that is not one of this client's live ones.
pub(crate) fn unknown_ticket() -> Status {
    Status::not_found(
        "unknown ticket: this server did not issue it to this client, or it expired; ask for a new one with GetFlightInfo",
    )
}

/// The tickets of one client.
pub(crate) struct Tickets {
    expiry: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    by_id: HashMap<String, Arc<Issued>>,
    order: VecDeque<String>,
}

impl Tickets {
    pub fn new(expiry: Duration) -> Self {
        Self {
            expiry,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps work under a new id.
    pub fn issue(&self, work: Work) -> Arc<Issued> {
        let now = Instant::now();
        let issued = Arc::new(Issued {
            id: random_id(),
            work,
            expires: now + self.expiry,
        });
        let mut state = self.state();
        // Tickets are issued in order and expire after the same time: the expired ones
        // are at the front.
        while let Some(oldest) = state.order.front() {
            let expired = state.by_id.get(oldest).is_none_or(|t| t.expires <= now);
            if !expired && state.order.len() < MAX_TICKETS {
                break;
            }
            if let Some(oldest) = state.order.pop_front() {
                state.by_id.remove(&oldest);
            }
        }
        state.by_id.insert(issued.id.clone(), Arc::clone(&issued));
        state.order.push_back(issued.id.clone());
        issued
    }

    /// The live ticket of a handle, or NOT_FOUND.
    pub fn get(&self, handle: &[u8]) -> Result<Arc<Issued>, Status> {
        let id = std::str::from_utf8(handle).map_err(|_| unknown_ticket())?;
        let state = self.state();
        match state.by_id.get(id) {
            Some(issued) if issued.expires > Instant::now() => Ok(Arc::clone(issued)),
            _ => Err(unknown_ticket()),
        }
    }
}

/// The schema with no columns: the result of statements that return none.
pub(crate) fn empty_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> Work {
        Work::statement(vec!["DROP TABLE t".into()])
    }

    #[test]
    fn only_issued_live_tickets_are_found() {
        let tickets = Tickets::new(Duration::from_secs(60));
        let issued = tickets.issue(statement());
        assert_eq!(issued.id.len(), 32);
        let found = tickets.get(issued.id.as_bytes()).expect("issued");
        assert!(Arc::ptr_eq(&found, &issued));
        for forged in [
            &b"SELECT 1"[..],
            &[0xff, 0xfe][..],
            random_id().as_bytes(),
            b"",
        ] {
            let err = tickets.get(forged).err().expect("forged");
            assert_eq!(err.code(), tonic::Code::NotFound);
        }
        let info = issued
            .flight_info(None, FlightDescriptor::default())
            .expect("info");
        let ticket = info.endpoint[0].ticket.as_ref().expect("ticket");
        assert_eq!(handle_of(ticket), Some(issued.id.clone().into_bytes()));
        assert!(info.schema.is_empty());
        assert_eq!(info.total_records, -1);
    }

    #[test]
    fn tickets_expire_and_are_bounded() {
        let expired = Tickets::new(Duration::ZERO);
        let issued = expired.issue(statement());
        assert!(expired.get(issued.id.as_bytes()).is_err());

        let tickets = Tickets::new(Duration::from_secs(60));
        let first = tickets.issue(statement());
        for _ in 0..MAX_TICKETS {
            tickets.issue(statement());
        }
        assert!(tickets.get(first.id.as_bytes()).is_err());
        assert_eq!(tickets.state().by_id.len(), MAX_TICKETS);
    }
}
