//! The Flight SQL service on arrow-flight's `FlightSqlService`: statements and prepared
//! statements, metadata, cancellation. Queries are planned when a client asks for their
//! FlightInfo and streamed by DoGet batch by batch as DataFusion produces them; other
//! statements run when their FlightInfo (or their DoPut) is asked for.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
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
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use strata_engine::{CATALOG_NAME, Output, Session};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Auth, HandshakeStream};
use crate::error::{datafusion_status, status};
use crate::metadata;
use crate::prepared::{Prepared, PreparedStatements};
use crate::running::RunningQueries;
use crate::statement::{Kind, bind, classify, number_placeholders};
use crate::ticket::{KeptResults, TicketData, empty_schema};

/// The action that cancels the query of a FlightInfo (Flight's own, not Flight SQL's).
const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

type DoGetStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;
type Batches = BoxStream<'static, Result<RecordBatch, FlightError>>;

/// strata's Flight SQL service. Cloning shares it.
#[derive(Clone)]
pub(crate) struct StrataFlightSql {
    inner: Arc<Inner>,
}

struct Inner {
    /// One session for all clients: USE and SET are refused, since they would change it
    /// for everyone.
    session: Arc<Session>,
    read_only: bool,
    auth: Auth,
    prepared: PreparedStatements,
    running: RunningQueries,
    /// Results of statements too large to travel in their tickets.
    kept: KeptResults,
    sql_info: SqlInfoData,
    xdbc_types: XdbcTypeInfoData,
}

impl StrataFlightSql {
    pub fn new(
        session: Arc<Session>,
        read_only: bool,
        auth: Auth,
        running: RunningQueries,
    ) -> Result<Self, Status> {
        Ok(Self {
            inner: Arc::new(Inner {
                session,
                read_only,
                auth,
                prepared: PreparedStatements::default(),
                running,
                kept: KeptResults::default(),
                sql_info: metadata::sql_info(read_only)?,
                xdbc_types: metadata::xdbc_types()?,
            }),
        })
    }

    fn session(&self) -> &Session {
        &self.inner.session
    }

    /// Refuses what this server does not run: USE and SET always, writes when read-only.
    fn check(&self, kind: Kind) -> Result<(), Status> {
        if kind == Kind::SessionState {
            return Err(Status::invalid_argument(
                "USE, SET and RESET are not available over Flight SQL: all clients of a server share one session, so they would change it for everyone. Name tables with their zone (raw.sales) instead; strata serve takes the default zone from --zone",
            ));
        }
        if self.inner.read_only && !kind.reads_only() {
            return Err(Status::permission_denied(
                "this server is read-only (strata serve --read-only): only queries run here",
            ));
        }
        Ok(())
    }

    /// Reads the catalog's latest commits, so tables made by other processes are seen.
    async fn refresh(&self) -> Result<(), Status> {
        self.session()
            .catalog()
            .refresh()
            .await
            .map_err(|e| status(e.into()))?;
        Ok(())
    }

    /// Plans a query (its tables must exist) without running it.
    async fn plan(&self, sql: &str) -> Result<datafusion::dataframe::DataFrame, Status> {
        self.refresh().await?;
        self.session().plan_query(sql).await.map_err(status)
    }

    /// Plans and starts a query: its schema (the one GetFlightInfo gave) and its batches.
    async fn open(&self, sql: &str) -> Result<(SchemaRef, Batches), Status> {
        let df = self.plan(sql).await?;
        let stream = self.session().execute_query(df).await.map_err(status)?;
        // The rows' own schema: the planned query's, as coerced (see `query_schema`).
        let schema = stream.schema();
        let batches = stream
            .map_err(|e| FlightError::Tonic(Box::new(datafusion_status(e))))
            .boxed();
        Ok((schema, batches))
    }

    /// Runs a statement that is not a streamed query; its result is small (a count, a
    /// listing) and is collected.
    async fn run_now(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
        match self.session().execute(sql).await.map_err(status)? {
            Output::Done(_) => Ok((empty_schema(), vec![])),
            Output::Rows(stream) => {
                let schema = stream.schema();
                let batches = stream.try_collect().await.map_err(datafusion_status)?;
                Ok((schema, batches))
            }
        }
    }

    /// Runs a statement sent as an update; returns the rows it changed.
    async fn update(&self, sql: &str, kind: Kind) -> Result<i64, Status> {
        match self.session().execute(sql).await.map_err(status)? {
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

    /// The FlightInfo of statements (one per row of bound parameters). Queries are planned
    /// for their schema and run by DoGet; other statements run now, once, and their ticket
    /// holds the result, with the rows they changed as the FlightInfo's record count.
    async fn flight_info(
        &self,
        kind: Kind,
        statements: Vec<String>,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        self.check(kind)?;
        if kind == Kind::Query {
            let first = statements
                .first()
                .ok_or_else(|| Status::invalid_argument("no statement to run"))?;
            let df = self.plan(first).await?;
            let schema = query_schema(df)?;
            return TicketData::queries(statements).flight_info(&schema, descriptor, -1);
        }
        let mut schema: Option<SchemaRef> = None;
        let mut batches = vec![];
        let mut affected = 0;
        for sql in &statements {
            let (s, b) = self.run_now(sql).await?;
            affected += affected_rows(&s, &b);
            // Results of one statement run with several parameter rows are put together.
            if schema.as_ref() != Some(&s) {
                batches.clear();
                schema = Some(s);
            }
            batches.extend(b);
        }
        let schema = schema.unwrap_or_else(empty_schema);
        let records = match kind {
            Kind::Write => affected,
            _ => batches.iter().map(|b| b.num_rows() as i64).sum(),
        };
        TicketData::holding(&schema, &batches, &self.inner.kept)?.flight_info(
            &crate::encode::wire_schema(&schema),
            descriptor,
            records,
        )
    }

    /// Streams what a ticket holds.
    async fn serve_ticket(&self, ticket: TicketData) -> Result<Response<DoGetStream>, Status> {
        let result = match (&ticket.result, ticket.kept) {
            (Some(result), _) => Some(result.clone()),
            (None, true) => Some(self.inner.kept.get(&ticket.id)?),
            (None, false) => None,
        };
        if let Some(result) = result {
            let (schema, batches) = TicketData::stored_result(&result)?;
            let batches = futures::stream::iter(batches.into_iter().map(Ok)).boxed();
            return Ok(Response::new(encode(schema, batches)));
        }
        let registration = self.inner.running.start(&ticket.id)?;
        let mut queries = ticket.queries.into_iter();
        let first = queries
            .next()
            .ok_or_else(|| Status::invalid_argument("the ticket holds no query"))?;
        let (schema, first) = self.open(&first).await?;
        let this = self.clone();
        let expected = Arc::clone(&schema);
        // Further queries (more rows of parameters) start when the one before has ended.
        let rest = futures::stream::iter(queries)
            .then(move |sql| {
                let this = this.clone();
                let expected = Arc::clone(&expected);
                async move {
                    let (schema, batches) = this.open(&sql).await?;
                    if schema != expected {
                        return Err(Status::invalid_argument(
                            "the rows of parameters give results of different types; bind values of one type per parameter",
                        ));
                    }
                    Ok(batches)
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

    /// Cancels the queries of a FlightInfo's endpoints.
    fn cancel(&self, info: &FlightInfo) -> Result<CancelStatus, Status> {
        let tickets: Vec<TicketData> = info
            .endpoint
            .iter()
            .filter_map(|e| e.ticket.as_ref())
            .filter_map(TicketData::from_ticket)
            .collect();
        if tickets.is_empty() {
            return Err(Status::not_found(
                "the FlightInfo names no query of this server",
            ));
        }
        let mut outcome = CancelStatus::NotCancellable;
        for ticket in tickets {
            // A statement whose result is in its ticket has run already.
            if !ticket.ran() {
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
/// Views are announced as the plain strings they travel as (see `encode`).
fn query_schema(df: datafusion::dataframe::DataFrame) -> Result<SchemaRef, Status> {
    let plan = df.into_optimized_plan().map_err(datafusion_status)?;
    Ok(Arc::new(crate::encode::wire_schema(
        plan.schema().as_arrow(),
    )))
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
    // The first message may carry only the command, with no Arrow data.
    let data = stream
        .try_filter(|d| futures::future::ready(!d.data_header.is_empty()))
        .map_err(|s| FlightError::Tonic(Box::new(s)));
    let batches: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(data)
        .try_collect()
        .await
        .map_err(|e| Status::invalid_argument(format!("cannot read the parameters: {e}")))?;
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let batch = arrow::compute::concat_batches(&first.schema(), &batches)
        .map_err(|e| Status::invalid_argument(format!("cannot read the parameters: {e}")))?;
    Ok((batch.num_rows() > 0).then_some(batch))
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

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let kind = classify(&query.query)?;
        let info = self
            .flight_info(kind, vec![query.query], request.into_inner())
            .await?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let prepared = self.inner.prepared.get(&cmd.prepared_statement_handle)?;
        let statements = bind(&prepared.sql, prepared.bound().as_ref())?;
        let info = self
            .flight_info(prepared.kind, statements, request.into_inner())
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
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let ticket = TicketData::decode(&ticket.statement_handle)?;
        self.serve_ticket(ticket).await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        // Some clients fetch a prepared statement's command as the ticket itself.
        let prepared = self.inner.prepared.get(&query.prepared_statement_handle)?;
        let statements = bind(&prepared.sql, prepared.bound().as_ref())?;
        if prepared.kind == Kind::Query {
            self.check(prepared.kind)?;
            return self.serve_ticket(TicketData::queries(statements)).await;
        }
        let info = self
            .flight_info(prepared.kind, statements, FlightDescriptor::default())
            .await?;
        let ticket = info
            .endpoint
            .first()
            .and_then(|e| e.ticket.as_ref())
            .and_then(TicketData::from_ticket)
            .ok_or_else(|| Status::internal("no result for the statement"))?;
        self.serve_ticket(ticket).await
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
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.refresh().await?;
        let mut builder = query.into_builder();
        for zone in metadata::zones(self.session()) {
            builder.append(CATALOG_NAME, zone);
        }
        one_batch(builder.build())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.refresh().await?;
        let batch = metadata::tables(self.session(), query).await?;
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
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let kind = classify(&ticket.query)?;
        self.check(kind)?;
        self.update(&ticket.query, kind).await
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
        let prepared = self.inner.prepared.get(&query.prepared_statement_handle)?;
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
        let prepared = self.inner.prepared.get(&query.prepared_statement_handle)?;
        self.check(prepared.kind)?;
        // Parameters come with the update (ADBC), or were bound before (arrow-flight's client).
        let parameters = match read_parameters(request.into_inner()).await? {
            Some(p) => Some(p),
            None => prepared.bound(),
        };
        let mut total = 0;
        for sql in bind(&prepared.sql, parameters.as_ref())? {
            total += self.update(&sql, prepared.kind).await?;
        }
        Ok(total)
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let kind = classify(&query.query)?;
        self.check(kind)?;
        let (sql, count) = number_placeholders(&query.query)?;
        let mut parameter_types = std::collections::HashMap::new();
        let dataset_schema = if kind == Kind::Query {
            let df = self.plan(&sql).await?;
            parameter_types = df
                .logical_plan()
                .get_parameter_types()
                .map_err(datafusion_status)?;
            // With parameters of unknown types the plan may not get through the optimizer;
            // the schema before it is the best known then.
            let before = Arc::new(crate::encode::wire_schema(df.schema().as_arrow()));
            query_schema(df).unwrap_or(before)
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
        let handle = self.inner.prepared.insert(Prepared::new(sql, kind));
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle,
            ..result
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        self.inner.prepared.remove(&query.prepared_statement_handle)
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        _request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let info = FlightInfo::decode(query.info.as_ref())
            .map_err(|e| Status::invalid_argument(format!("not a FlightInfo: {e}")))?;
        // CancelQuery's results have the numbers of CancelFlightInfo's.
        Ok(ActionCancelQueryResult {
            result: self.cancel(&info)? as i32,
        })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let action = request.into_inner();
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
            status: self.cancel(&info)? as i32,
        };
        let body = arrow_flight::Result {
            body: result.encode_to_vec().into(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(body)]))))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(vec![Ok(ActionType {
            r#type: CANCEL_FLIGHT_INFO.into(),
            description: "Cancels the running query of a FlightInfo.\n
                Request Message: CancelFlightInfoRequest\n
                Response Message: CancelFlightInfoResult"
                .into(),
        })])
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
