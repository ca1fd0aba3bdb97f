//! The Flight SQL service on arrow-flight's `FlightSqlService`: statements and prepared
//! statements, metadata, cancellation, each in the calling client's session. Queries are
//! planned when a client asks for their FlightInfo, kept under the ticket, and streamed by
//! DoGet batch by batch as DataFusion produces them; other statements are checked when
//! their FlightInfo is asked for and run by DoGet (or by their DoPut update), where they
//! can be cancelled.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightData,
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, IpcMessage, SchemaAsIpc,
    Ticket,
};
use datafusion::logical_expr::LogicalPlan;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use strata_engine::{CATALOG_NAME, Output, Session};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Auth, HandshakeStream};
use crate::error::{datafusion_status, status};
use crate::metadata;
use crate::prepared::Prepared;
use crate::running::RunningQueries;
use crate::sessions::{Client, Sessions, random_id};
use crate::statement::{Kind, bind, classify, number_placeholders};
use crate::ticket::{Issued, Ran, Work, empty_schema, handle_of, unknown_ticket};

/// The action that cancels the query of a FlightInfo (Flight's own, not Flight SQL's).
const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

/// The action that ends the client's session (Flight's own).
const CLOSE_SESSION: &str = "CloseSession";

/// What a statement's ticket answers when the DoGet running it ended before it did.
const INTERRUPTED: &str = "the statement was interrupted when the call running it ended, and may or may not have taken effect; check, then run it again";

type DoGetStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;
type Batches = BoxStream<'static, Result<RecordBatch, FlightError>>;

/// Flight's `CloseSessionResult`: 1 is CLOSED.
#[derive(Clone, PartialEq, prost::Message)]
struct CloseSessionResult {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// strata's Flight SQL service. Cloning shares it.
#[derive(Clone)]
pub(crate) struct StrataFlightSql {
    inner: Arc<Inner>,
}

struct Inner {
    /// Each client's session, tickets and prepared statements.
    sessions: Arc<Sessions>,
    read_only: bool,
    auth: Auth,
    running: RunningQueries,
    sql_info: SqlInfoData,
    xdbc_types: XdbcTypeInfoData,
}

/// The client of a call, which the identifying layer (see `auth`) put into its extensions.
fn client<T>(request: &Request<T>) -> Result<Arc<Client>, Status> {
    request
        .extensions()
        .get::<Arc<Client>>()
        .cloned()
        .ok_or_else(|| Status::internal("the call reached the service without a session"))
}

impl StrataFlightSql {
    pub fn new(
        sessions: Arc<Sessions>,
        read_only: bool,
        auth: Auth,
        running: RunningQueries,
    ) -> Result<Self, Status> {
        Ok(Self {
            inner: Arc::new(Inner {
                sessions,
                read_only,
                auth,
                running,
                sql_info: metadata::sql_info(read_only)?,
                xdbc_types: metadata::xdbc_types()?,
            }),
        })
    }

    /// Refuses writes when the server is read-only.
    fn check(&self, kind: Kind) -> Result<(), Status> {
        if self.inner.read_only && !kind.reads_only() {
            return Err(Status::permission_denied(
                "this server is read-only (strata serve --read-only): only queries run here",
            ));
        }
        Ok(())
    }

    /// Reads the catalog's latest commits, so tables made by other processes are seen.
    async fn refresh(&self) -> Result<(), Status> {
        self.inner
            .sessions
            .base()
            .catalog()
            .refresh()
            .await
            .map_err(|e| status(e.into()))?;
        Ok(())
    }

    /// Plans a query (its tables must exist) without running it.
    async fn plan(
        &self,
        session: &Session,
        sql: &str,
    ) -> Result<datafusion::dataframe::DataFrame, Status> {
        self.refresh().await?;
        session.plan_query(sql).await.map_err(status)
    }

    /// Plans and optimizes a query: the plan DoGet runs, and its rows' schema.
    async fn plan_optimized(
        &self,
        session: &Session,
        sql: &str,
    ) -> Result<(LogicalPlan, SchemaRef), Status> {
        let df = self.plan(session, sql).await?;
        let plan = df.into_optimized_plan().map_err(datafusion_status)?;
        let schema = plan_schema(&plan);
        Ok((plan, schema))
    }

    /// Runs a statement that is not a streamed query; its result is small (a count, a
    /// listing) and is collected.
    async fn run_now(session: &Session, sql: &str) -> Result<Ran, Status> {
        match session.execute(sql).await.map_err(status)? {
            Output::Done(_) => Ok(Ran {
                schema: empty_schema(),
                batches: vec![],
            }),
            Output::Rows(stream) => {
                let schema = stream.schema();
                let batches = stream.try_collect().await.map_err(datafusion_status)?;
                Ok(Ran { schema, batches })
            }
        }
    }

    /// Runs a statement once per row of parameters; the results are put together.
    async fn run_all(session: &Session, statements: &[String]) -> Result<Ran, Status> {
        let mut schema: Option<SchemaRef> = None;
        let mut batches = vec![];
        for sql in statements {
            let ran = Self::run_now(session, sql).await?;
            if schema.as_ref() != Some(&ran.schema) {
                batches.clear();
                schema = Some(ran.schema);
            }
            batches.extend(ran.batches);
        }
        Ok(Ran {
            schema: schema.unwrap_or_else(empty_schema),
            batches,
        })
    }

    /// Runs a statement sent as an update; returns the rows it changed.
    async fn update(session: &Session, sql: &str, kind: Kind) -> Result<i64, Status> {
        match session.execute(sql).await.map_err(status)? {
            Output::Done(_) => Ok(0),
            // A query sent as an update: its rows are counted, not kept.
            Output::Rows(stream) if kind == Kind::Query => {
                let rows = stream
                    .map_ok(|b| b.num_rows() as i64)
                    .try_fold(0i64, |a, n| async move { Ok(a + n) })
                    .await
                    .map_err(datafusion_status)?;
                Ok(rows)
            }
            Output::Rows(stream) => {
                let schema = stream.schema();
                let batches: Vec<RecordBatch> =
                    stream.try_collect().await.map_err(datafusion_status)?;
                Ok(affected_rows(&schema, &batches))
            }
        }
    }

    /// Runs updates (one per row of parameters), registered as running so that shutting
    /// down stops them; a client stops one by ending its call.
    async fn updates(
        &self,
        session: &Session,
        statements: Vec<String>,
        kind: Kind,
    ) -> Result<i64, Status> {
        let registration = self.inner.running.start(&random_id())?;
        let run = async {
            let mut total = 0;
            for sql in &statements {
                total += Self::update(session, sql, kind).await?;
            }
            Ok(total)
        };
        tokio::select! {
            () = registration.cancelled() => Err(Status::cancelled("statement cancelled")),
            total = run => total,
        }
    }

    /// Keeps the work of statements (one per row of bound parameters) under a new ticket
    /// of the client: queries planned, other statements classified and checked, to run
    /// when the ticket is fetched. Returns the ticket and the schema known now.
    async fn issue(
        &self,
        client: &Client,
        kind: Kind,
        statements: Vec<String>,
    ) -> Result<(Arc<Issued>, Option<SchemaRef>), Status> {
        self.check(kind)?;
        if statements.is_empty() {
            return Err(Status::invalid_argument("no statement to run"));
        }
        if kind != Kind::Query {
            return Ok((client.tickets.issue(Work::statement(statements)), None));
        }
        let mut statements = statements.into_iter();
        let first = statements.next().unwrap_or_default();
        let (plan, schema) = self.plan_optimized(&client.session, &first).await?;
        let work = Work::Query {
            plan,
            rest: statements.collect(),
        };
        Ok((client.tickets.issue(work), Some(schema)))
    }

    /// The FlightInfo of statements: its ticket names the work `issue` kept. A query's
    /// carries the schema of its rows; other statements' carry none (clients read it from
    /// the stream), and no record count.
    async fn flight_info(
        &self,
        client: &Client,
        kind: Kind,
        statements: Vec<String>,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let (issued, schema) = self.issue(client, kind, statements).await?;
        issued.flight_info(schema.as_deref(), descriptor)
    }

    /// Streams what a ticket runs: a query's plan, or a statement's kept outcome (running
    /// it first if no fetch has yet).
    async fn serve(
        &self,
        client: Arc<Client>,
        issued: Arc<Issued>,
    ) -> Result<Response<DoGetStream>, Status> {
        let (plan, rest) = match &issued.work {
            Work::Query { plan, rest } => (plan, rest.clone()),
            Work::Statement {
                statements,
                outcome,
            } => {
                let ran = self
                    .run_once(&client.session, &issued.id, statements, outcome)
                    .await?;
                let batches = futures::stream::iter(ran.batches.into_iter().map(Ok)).boxed();
                return Ok(Response::new(encode(ran.schema, batches)));
            }
        };
        let registration = self.inner.running.start(&issued.id)?;
        let stream = client
            .session
            .execute_optimized(plan)
            .await
            .map_err(status)?;
        // The rows' own schema: the optimized plan's (see `plan_schema`).
        let schema = stream.schema();
        let first = stream
            .map_err(|e| FlightError::Tonic(Box::new(datafusion_status(e))))
            .boxed();
        let this = self.clone();
        let expected = Arc::clone(&schema);
        // Further queries (more rows of parameters) are planned and started when the one
        // before has ended.
        let rest = futures::stream::iter(rest)
            .then(move |sql| {
                let this = this.clone();
                let client = Arc::clone(&client);
                let expected = Arc::clone(&expected);
                async move {
                    let (plan, _) = this.plan_optimized(&client.session, &sql).await?;
                    let stream = client
                        .session
                        .execute_optimized(&plan)
                        .await
                        .map_err(status)?;
                    if stream.schema() != expected {
                        return Err(Status::invalid_argument(
                            "the rows of parameters give results of different types; bind values of one type per parameter",
                        ));
                    }
                    Ok(stream.map_err(|e| FlightError::Tonic(Box::new(datafusion_status(e)))))
                }
            })
            .map_err(|s| FlightError::Tonic(Box::new(s)))
            .try_flatten();
        let batches = first.chain(rest).boxed();
        Ok(Response::new(encode(
            schema,
            registration.guard(batches).boxed(),
        )))
    }

    /// Runs a statement's ticket once, registered as running so that CancelFlightInfo can
    /// stop it; later fetches get the same outcome.
    async fn run_once(
        &self,
        session: &Session,
        id: &str,
        statements: &[String],
        outcome: &tokio::sync::Mutex<Option<Result<Ran, Status>>>,
    ) -> Result<Ran, Status> {
        let mut slot = outcome.lock().await;
        if let Some(done) = slot.as_ref() {
            return done.clone();
        }
        let result = match self.inner.running.start(id) {
            Err(refused) => Err(refused),
            Ok(registration) => {
                // Stays if this call ends before the statement does (the client went away).
                *slot = Some(Err(Status::aborted(INTERRUPTED)));
                tokio::select! {
                    () = registration.cancelled() => Err(Status::cancelled("statement cancelled")),
                    ran = Self::run_all(session, statements) => ran,
                }
            }
        };
        *slot = Some(result.clone());
        result
    }

    /// Cancels what the tickets of a FlightInfo run, if they are the client's.
    fn cancel(&self, client: &Client, info: &FlightInfo) -> Result<CancelStatus, Status> {
        let issued: Vec<Arc<Issued>> = info
            .endpoint
            .iter()
            .filter_map(|e| e.ticket.as_ref())
            .filter_map(handle_of)
            .filter_map(|handle| client.tickets.get(&handle).ok())
            .collect();
        if issued.is_empty() {
            return Err(Status::not_found(
                "the FlightInfo names no live ticket this server issued to this client",
            ));
        }
        let mut outcome = CancelStatus::NotCancellable;
        for ticket in issued {
            // A statement that has run is done; one running holds its outcome's lock.
            let ran = match &ticket.work {
                Work::Query { .. } => false,
                Work::Statement { outcome, .. } => {
                    outcome.try_lock().is_ok_and(|done| done.is_some())
                }
            };
            if !ran {
                self.inner.running.cancel(&ticket.id);
                outcome = CancelStatus::Cancelled;
            }
        }
        Ok(outcome)
    }

    /// The FlightInfo of a metadata command: its ticket is the command itself.
    fn metadata_info(
        &self,
        command: Any,
        schema: &Schema,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(command.encode_to_vec());
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }
}

/// The stream of a result: its schema first, then its batches as they come.
fn encode(schema: SchemaRef, batches: Batches) -> DoGetStream {
    crate::encode::encode(schema, batches)
}

/// One batch of metadata as a DoGet stream.
fn one_batch<E: std::fmt::Display>(
    batch: Result<RecordBatch, E>,
) -> Result<Response<DoGetStream>, Status> {
    let batch = batch.map_err(|e| Status::internal(e.to_string()))?;
    let schema = batch.schema();
    Ok(Response::new(encode(
        schema,
        futures::stream::iter([Ok(batch)]).boxed(),
    )))
}

/// The answer to a key command: strata tables have no keys.
fn no_keys(schema: &SchemaRef) -> Result<Response<DoGetStream>, Status> {
    one_batch(Ok::<_, Status>(RecordBatch::new_empty(Arc::clone(schema))))
}

/// The schema of a query's rows: that of its plan after analysis and optimization. The plan
/// as the SQL planner leaves it types a CASE or a UNION by its first branch, before type
/// coercion: an integer where the rows hold decimals, which clients then read as integers.
/// The schema a plan's rows travel with: views are announced as the plain strings they
/// travel as (see `encode`).
fn plan_schema(plan: &LogicalPlan) -> SchemaRef {
    Arc::new(crate::encode::wire_schema(plan.schema().as_arrow()))
}

/// The rows a statement changed, from its result: the `count` strata's writes return, or
/// MERGE's inserted, updated and deleted; otherwise the rows of the result.
fn affected_rows(schema: &Schema, batches: &[RecordBatch]) -> i64 {
    let columns: Vec<usize> = match schema.index_of("count") {
        Ok(i) => vec![i],
        Err(_) => ["inserted", "updated", "deleted"]
            .iter()
            .filter_map(|c| schema.index_of(c).ok())
            .collect(),
    };
    let integer = |i: &usize| schema.field(*i).data_type().is_integer();
    if columns.is_empty() || !columns.iter().all(integer) {
        return batches.iter().map(|b| b.num_rows() as i64).sum();
    }
    let mut total = 0i64;
    for batch in batches {
        for &i in &columns {
            let Ok(values) = arrow::compute::cast(batch.column(i), &DataType::Int64) else {
                continue;
            };
            if let Some(values) = values.as_any().downcast_ref::<Int64Array>() {
                total += values.iter().flatten().sum::<i64>();
            }
        }
    }
    total
}

/// Parameters sent with a DoPut, as one batch (none if no rows came).
async fn read_parameters(stream: PeekableFlightDataStream) -> Result<Option<RecordBatch>, Status> {
    crate::ipc::read_parameters(stream).await
}

/// A schema in the IPC form prepared statement results carry.
fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

#[tonic::async_trait]
impl FlightSqlService for StrataFlightSql {
    type FlightService = StrataFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        self.inner.auth.handshake(request.metadata())
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        _message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Err(unknown_ticket())
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let client = client(&request)?;
        let kind = classify(&query.query)?;
        let info = self
            .flight_info(&client, kind, vec![query.query], request.into_inner())
            .await?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let client = client(&request)?;
        let prepared = client.prepared.get(&cmd.prepared_statement_handle)?;
        let statements = bind(&prepared.sql, prepared.bound().as_ref())?;
        let info = self
            .flight_info(&client, prepared.kind, statements, request.into_inner())
            .await?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(query.as_any(), &schema, request.into_inner())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(query.as_any(), &schema, request.into_inner())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(query.as_any(), &schema, request.into_inner())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(query.as_any(), &schema, request.into_inner())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.inner.sql_info).schema();
        self.metadata_info(query.as_any(), &schema, request.into_inner())
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(
            query.as_any(),
            &metadata::PRIMARY_KEYS,
            request.into_inner(),
        )
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(
            query.as_any(),
            &metadata::FOREIGN_KEYS,
            request.into_inner(),
        )
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(
            query.as_any(),
            &metadata::FOREIGN_KEYS,
            request.into_inner(),
        )
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(
            query.as_any(),
            &metadata::FOREIGN_KEYS,
            request.into_inner(),
        )
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&self.inner.xdbc_types).schema();
        self.metadata_info(query.as_any(), &schema, request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let client = client(&request)?;
        let issued = client.tickets.get(&ticket.statement_handle)?;
        self.serve(client, issued).await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        // Some clients fetch a prepared statement's command as the ticket itself: it runs
        // as if GetFlightInfo had been asked first.
        let client = client(&request)?;
        let prepared = client.prepared.get(&query.prepared_statement_handle)?;
        let statements = bind(&prepared.sql, prepared.bound().as_ref())?;
        let (issued, _) = self.issue(&client, prepared.kind, statements).await?;
        self.serve(client, issued).await
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(CATALOG_NAME);
        one_batch(builder.build())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let client = client(&request)?;
        self.refresh().await?;
        let mut builder = query.into_builder();
        for zone in metadata::zones(&client.session) {
            builder.append(CATALOG_NAME, zone);
        }
        one_batch(builder.build())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let client = client(&request)?;
        self.refresh().await?;
        let batch = metadata::tables(&client.session, query).await?;
        one_batch(Ok::<_, Status>(batch))
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let mut builder = query.into_builder();
        builder.append(metadata::TABLE);
        builder.append(metadata::VIEW);
        one_batch(builder.build())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        one_batch(query.into_builder(&self.inner.sql_info).build())
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        no_keys(&metadata::PRIMARY_KEYS)
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        no_keys(&metadata::FOREIGN_KEYS)
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        no_keys(&metadata::FOREIGN_KEYS)
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        no_keys(&metadata::FOREIGN_KEYS)
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        one_batch(query.into_builder(&self.inner.xdbc_types).build())
    }

    async fn do_put_statement_update(
        &self,
        ticket: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let client = client(&request)?;
        let kind = classify(&ticket.query)?;
        self.check(kind)?;
        self.updates(&client.session, vec![ticket.query], kind)
            .await
    }

    async fn do_put_statement_ingest(
        &self,
        _ticket: CommandStatementIngest,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(Status::unimplemented(
            "bulk ingestion is not supported; write with INSERT INTO … VALUES (?, …) and parameters, or CREATE TABLE … AS",
        ))
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let client = client(&request)?;
        let prepared = client.prepared.get(&query.prepared_statement_handle)?;
        let parameters = read_parameters(request.into_inner()).await?;
        prepared.bind(parameters);
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let client = client(&request)?;
        let prepared = client.prepared.get(&query.prepared_statement_handle)?;
        self.check(prepared.kind)?;
        // Parameters come with the update (ADBC), or were bound before (arrow-flight's client).
        let parameters = match read_parameters(request.into_inner()).await? {
            Some(p) => Some(p),
            None => prepared.bound(),
        };
        let statements = bind(&prepared.sql, parameters.as_ref())?;
        self.updates(&client.session, statements, prepared.kind)
            .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let client = client(&request)?;
        let kind = classify(&query.query)?;
        self.check(kind)?;
        let (sql, count) = number_placeholders(&query.query)?;
        let mut parameter_types = std::collections::HashMap::new();
        let dataset_schema = if kind == Kind::Query {
            let df = self.plan(&client.session, &sql).await?;
            parameter_types = df
                .logical_plan()
                .get_parameter_types()
                .map_err(datafusion_status)?;
            // With parameters of unknown types the plan may not get through the optimizer;
            // the schema before it is the best known then.
            let before = Arc::new(crate::encode::wire_schema(df.schema().as_arrow()));
            df.into_optimized_plan()
                .map(|plan| plan_schema(&plan))
                .unwrap_or(before)
        } else {
            empty_schema()
        };
        let parameter_schema = Arc::new(Schema::new(
            (1..=count)
                .map(|i| {
                    let name = format!("${i}");
                    let data_type = parameter_types
                        .get(&name)
                        .cloned()
                        .flatten()
                        .unwrap_or(DataType::Null);
                    Field::new(name, data_type, true)
                })
                .collect::<Vec<_>>(),
        ));
        let result = ActionCreatePreparedStatementResult {
            prepared_statement_handle: bytes::Bytes::new(),
            dataset_schema: schema_bytes(&dataset_schema)?,
            parameter_schema: schema_bytes(&parameter_schema)?,
        };
        let handle = client.prepared.insert(Prepared::new(sql, kind));
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle,
            ..result
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        client(&request)?
            .prepared
            .remove(&query.prepared_statement_handle)
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let client = client(&request)?;
        let info = FlightInfo::decode(query.info.as_ref())
            .map_err(|e| Status::invalid_argument(format!("not a FlightInfo: {e}")))?;
        // CancelQuery's results have the numbers of CancelFlightInfo's.
        Ok(ActionCancelQueryResult {
            result: self.cancel(&client, &info)? as i32,
        })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let client = client(&request)?;
        let action = request.into_inner();
        if action.r#type == CLOSE_SESSION {
            self.inner.sessions.close(&client);
            let result = CloseSessionResult { status: 1 };
            let body = arrow_flight::Result {
                body: result.encode_to_vec().into(),
            };
            return Ok(Response::new(Box::pin(futures::stream::iter([Ok(body)]))));
        }
        if action.r#type != CANCEL_FLIGHT_INFO {
            return Err(Status::invalid_argument(format!(
                "unknown action '{}'",
                action.r#type
            )));
        }
        let cancel = CancelFlightInfoRequest::decode(action.body.as_ref())
            .map_err(|e| Status::invalid_argument(format!("not a CancelFlightInfoRequest: {e}")))?;
        let info = cancel
            .info
            .ok_or_else(|| Status::invalid_argument("the request holds no FlightInfo"))?;
        let result = CancelFlightInfoResult {
            status: self.cancel(&client, &info)? as i32,
        };
        let body = arrow_flight::Result {
            body: result.encode_to_vec().into(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(body)]))))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(vec![
            Ok(ActionType {
                r#type: CANCEL_FLIGHT_INFO.into(),
                description: "Cancels the running query of a FlightInfo.\n
                Request Message: CancelFlightInfoRequest\n
                Response Message: CancelFlightInfoResult"
                    .into(),
            }),
            Ok(ActionType {
                r#type: CLOSE_SESSION.into(),
                description:
                    "Ends the client's session, with its tickets and prepared statements.\n
                Request Message: CloseSessionRequest\n
                Response Message: CloseSessionResult"
                        .into(),
            }),
        ])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

#[cfg(test)]
mod tests {
    use arrow::array::UInt64Array;

    use super::*;

    #[test]
    fn counts_affected_rows() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("inserted", DataType::UInt64, false),
            Field::new("updated", DataType::UInt64, false),
            Field::new("deleted", DataType::UInt64, false),
        ]));
        let one = |n: u64| Arc::new(UInt64Array::from(vec![n])) as Arc<dyn Array>;
        let batch =
            RecordBatch::try_new(Arc::clone(&schema), vec![one(2), one(3), one(1)]).expect("batch");
        assert_eq!(affected_rows(&schema, &[batch]), 6);
        assert_eq!(affected_rows(&Schema::empty(), &[]), 0);
    }
}
