//! The boundary between clients and the Flight SQL service: no panic escapes a call, and
//! what a client got wrong is its error, not the server's.
//!
//! - Each call's future, and every poll of the stream it answers with, runs under
//!   `catch_unwind`: a panic becomes INTERNAL with a short message, is logged, and the
//!   server keeps serving. Aborts (a failed allocation) cannot be caught; they are
//!   prevented by validating what clients send (see `ipc`).
//! - Commands and tickets are read before the service dispatches them: bytes that are not a
//!   protobuf `Any`, a Flight SQL command whose body does not decode, a type URL no Flight
//!   SQL server knows, or a command sent to the wrong call are INVALID_ARGUMENT naming what
//!   is wrong. arrow-flight's dispatch would answer some of these INTERNAL, others
//!   UNIMPLEMENTED; where it reads the bytes itself (DoPut, actions), its INTERNAL for an
//!   undecodable body is turned into INVALID_ARGUMENT.

use std::any::Any as PanicPayload;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::{Any, Command};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::{FutureExt, Stream, StreamExt};
use prost::Message;
use tonic::{Code, Request, Response, Status, Streaming};

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A Flight service whose calls cannot panic their way out, and whose answers to malformed
/// requests are INVALID_ARGUMENT.
pub(crate) struct Guarded<S> {
    inner: S,
}

impl<S> Guarded<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

/// Runs a call; a panic in it becomes INTERNAL, and a client's decode error reported as
/// INTERNAL becomes INVALID_ARGUMENT.
async fn call<T>(
    name: &'static str,
    future: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(result) => result.map_err(client_error),
        Err(payload) => Err(panicked(name, payload.as_ref())),
    }
}

/// A call's answer stream, each poll under `catch_unwind`: after a panic the stream ends
/// with INTERNAL.
fn guard_stream<T: 'static>(
    name: &'static str,
    response: Response<impl Stream<Item = Result<T, Status>> + Send + 'static>,
) -> Response<Boxed<T>> {
    response.map(|stream| {
        let stream = AssertUnwindSafe(stream)
            .catch_unwind()
            .map(move |item| match item {
                Ok(result) => result.map_err(client_error),
                Err(payload) => Err(panicked(name, payload.as_ref())),
            });
        Box::pin(stream) as Boxed<T>
    })
}

/// A panic as the status the client gets; it is logged with its message, which the client
/// does not see.
fn panicked(name: &str, payload: &(dyn PanicPayload + Send)) -> Status {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    tracing::error!("{name} panicked: {message}");
    Status::internal(format!(
        "the server failed on this {name} request (an internal error, logged); the server keeps serving"
    ))
}

/// arrow-flight's dispatch reports a command or action body that does not decode as
/// INTERNAL with the Debug form of a parse error; it is the client's error.
fn client_error(status: Status) -> Status {
    if status.code() == Code::Internal && status.message().starts_with("ParseError(") {
        let detail = status
            .message()
            .trim_start_matches("ParseError(\"")
            .trim_end_matches("\")");
        return Status::invalid_argument(format!("the request cannot be read: {detail}"));
    }
    if status.code() == Code::Unimplemented {
        let message = status.message();
        // A command the dispatch has no handler for in this call.
        if let Some((call, type_url)) = message.split_once(": The defined request is invalid: ") {
            return misplaced(type_url, call);
        }
        // A DoPut with no first message, or none holding a descriptor.
        if let Some(error) = message.strip_prefix("Unhandled Error: ") {
            return Status::invalid_argument(format!(
                "{error} DoPut's first message carries a FlightDescriptor with a Flight SQL command"
            ));
        }
    }
    status
}

/// A command the call does not take: unknown to Flight SQL, or meant for another call.
fn misplaced(type_url: &str, call: &str) -> Status {
    match type_url.strip_prefix(FLIGHT_SQL) {
        Some(name) if !name.is_empty() => {
            Status::invalid_argument(format!("{name} is not a command for {call}"))
        }
        _ => unknown_command(type_url),
    }
}

const FLIGHT_SQL: &str = "type.googleapis.com/arrow.flight.protocol.sql.";

fn unknown_command(type_url: &str) -> Status {
    Status::invalid_argument(format!(
        "unknown command '{type_url}': this server takes the Flight SQL commands (type.googleapis.com/arrow.flight.protocol.sql.…)"
    ))
}

/// Which call a command is read for: each takes only some commands.
#[derive(Clone, Copy)]
enum Call {
    GetFlightInfo,
    DoGet,
}

/// Reads a command (a GetFlightInfo descriptor's `cmd`, a DoGet ticket) as the dispatch
/// will, refusing what it cannot read or should not be sent to this call.
fn check_command(bytes: &[u8], call: Call) -> Result<(), Status> {
    let what = match call {
        Call::GetFlightInfo => "the descriptor's command",
        Call::DoGet => "the ticket",
    };
    if bytes.is_empty() {
        return Err(Status::invalid_argument(format!(
            "{what} is empty; send a Flight SQL command{}",
            match call {
                Call::GetFlightInfo => " (a FlightDescriptor of type CMD)",
                Call::DoGet => " (a ticket of a FlightInfo of this server)",
            }
        )));
    }
    let any = Any::decode(bytes).map_err(|e| {
        Status::invalid_argument(format!(
            "{what} is not a Flight SQL command (a protobuf Any): {e}"
        ))
    })?;
    let type_url = any.type_url.clone();
    let command = Command::try_from(any).map_err(|e| {
        Status::invalid_argument(format!("{what} ('{type_url}') cannot be read: {e}"))
    })?;
    let metadata = matches!(
        command,
        Command::CommandGetCatalogs(_)
            | Command::CommandGetDbSchemas(_)
            | Command::CommandGetTables(_)
            | Command::CommandGetTableTypes(_)
            | Command::CommandGetSqlInfo(_)
            | Command::CommandGetPrimaryKeys(_)
            | Command::CommandGetExportedKeys(_)
            | Command::CommandGetImportedKeys(_)
            | Command::CommandGetCrossReference(_)
            | Command::CommandGetXdbcTypeInfo(_)
            | Command::CommandPreparedStatementQuery(_)
    );
    let fits = metadata
        || match call {
            Call::GetFlightInfo => matches!(
                command,
                Command::CommandStatementQuery(_) | Command::CommandStatementSubstraitPlan(_)
            ),
            Call::DoGet => matches!(command, Command::TicketStatementQuery(_)),
        };
    if fits {
        return Ok(());
    }
    if let Command::Unknown(_) = command {
        return Err(match call {
            Call::GetFlightInfo => unknown_command(&type_url),
            Call::DoGet => Status::invalid_argument(format!(
                "unknown ticket '{type_url}': DoGet takes the tickets of FlightInfos this server gave; ask GetFlightInfo for one"
            )),
        });
    }
    Err(match call {
        Call::GetFlightInfo => misplaced(&type_url, "GetFlightInfo"),
        Call::DoGet => Status::invalid_argument(format!(
            "{} is not a ticket; DoGet takes the tickets of FlightInfos this server gave",
            type_url.trim_start_matches(FLIGHT_SQL)
        )),
    })
}

#[tonic::async_trait]
impl<S: FlightService> FlightService for Guarded<S> {
    type HandshakeStream = Boxed<HandshakeResponse>;
    type ListFlightsStream = Boxed<FlightInfo>;
    type DoGetStream = Boxed<FlightData>;
    type DoPutStream = Boxed<PutResult>;
    type DoActionStream = Boxed<arrow_flight::Result>;
    type ListActionsStream = Boxed<ActionType>;
    type DoExchangeStream = Boxed<FlightData>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        let response = call("Handshake", self.inner.handshake(request)).await?;
        Ok(guard_stream("Handshake", response))
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        let response = call("ListFlights", self.inner.list_flights(request)).await?;
        Ok(guard_stream("ListFlights", response))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        check_command(&request.get_ref().cmd, Call::GetFlightInfo)?;
        call("GetFlightInfo", self.inner.get_flight_info(request)).await
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        call("PollFlightInfo", self.inner.poll_flight_info(request)).await
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        call("GetSchema", self.inner.get_schema(request)).await
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        check_command(&request.get_ref().ticket, Call::DoGet)?;
        let response = call("DoGet", self.inner.do_get(request)).await?;
        Ok(guard_stream("DoGet", response))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let response = call("DoPut", self.inner.do_put(request)).await?;
        Ok(guard_stream("DoPut", response))
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        let response = call("DoExchange", self.inner.do_exchange(request)).await?;
        Ok(guard_stream("DoExchange", response))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let response = call("DoAction", self.inner.do_action(request)).await?;
        Ok(guard_stream("DoAction", response))
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        let response = call("ListActions", self.inner.list_actions(request)).await?;
        Ok(guard_stream("ListActions", response))
    }
}

#[cfg(test)]
mod tests {
    use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt, TicketStatementQuery};

    use super::*;

    fn code(bytes: &[u8], call: Call) -> Option<Code> {
        check_command(bytes, call).err().map(|s| s.code())
    }

    #[test]
    fn commands_are_checked_for_their_call() {
        let query = CommandStatementQuery {
            query: "SELECT 1".into(),
            transaction_id: None,
        }
        .as_any()
        .encode_to_vec();
        assert_eq!(code(&query, Call::GetFlightInfo), None);
        assert_eq!(code(&query, Call::DoGet), Some(Code::InvalidArgument));
        let ticket = TicketStatementQuery {
            statement_handle: b"x".to_vec().into(),
        }
        .as_any()
        .encode_to_vec();
        assert_eq!(code(&ticket, Call::DoGet), None);
        assert_eq!(
            code(&ticket, Call::GetFlightInfo),
            Some(Code::InvalidArgument)
        );
        for bad in [&b""[..], b"\xff\xff\xff", b"\x0a\x05abc"] {
            assert_eq!(code(bad, Call::DoGet), Some(Code::InvalidArgument));
        }
        let unknown = Any {
            type_url: "type.googleapis.com/nothing.Known".into(),
            value: vec![].into(),
        }
        .encode_to_vec();
        assert_eq!(
            code(&unknown, Call::GetFlightInfo),
            Some(Code::InvalidArgument)
        );
        // A known command whose body is not that message.
        let broken = Any {
            type_url: CommandStatementQuery::type_url().into(),
            value: vec![0x0a, 0x7f, 1].into(),
        }
        .encode_to_vec();
        assert_eq!(
            code(&broken, Call::GetFlightInfo),
            Some(Code::InvalidArgument)
        );
    }

    #[test]
    fn decode_errors_of_the_dispatch_are_the_clients() {
        let s = client_error(Status::internal(
            "ParseError(\"Unable to decode Any value: buffer underflow\")",
        ));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("buffer underflow"), "{}", s.message());
        let s = client_error(Status::unimplemented(
            "do_put: The defined request is invalid: type.googleapis.com/x.Y",
        ));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("x.Y"), "{}", s.message());
        let s = client_error(Status::unimplemented(format!(
            "do_put: The defined request is invalid: {FLIGHT_SQL}CommandGetTables"
        )));
        assert_eq!(s.message(), "CommandGetTables is not a command for do_put");
        let s = client_error(Status::unimplemented(
            "Unhandled Error: Command is missing.",
        ));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            client_error(Status::internal("disk on fire")).code(),
            Code::Internal
        );
    }
}
