//! Running queries somewhere else than in this process: on a cluster.
//!
//! The session plans a query as always (catalog reads, strata's logical and physical rules)
//! and hands the physical plan to its [`Remote`], which runs it and streams its rows back.
//! Plans travel as datafusion-proto messages: the scans strata's tables plan are DataFusion's
//! own Parquet and CSV scans, which datafusion-proto encodes (Delta tables too: a session
//! with a remote scans them as plain Parquet, see `providers::delta_parquet`), and
//! [`StrataCodec`] encodes what is strata's own: its NDJSON scans, and the nodes and
//! expressions its rules put in a plan. [`prepare`] makes the rest of a plan fit to leave
//! this process. The rules whose nodes cannot travel yet ([`CLUSTER_OFF_RULES`]) are
//! switched off in a session with a remote. Statements that write, and plans that read no
//! files, run in this process. A task's error comes back as a [`RemoteError`], which shows
//! as the same error would in this process.

use std::sync::Arc;

use arrow::datatypes::Schema;
use async_trait::async_trait;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::physical_planning_context::ScalarSubqueryResults;
use datafusion::logical_expr::{AggregateUDF, Operator, ScalarUDF, WindowUDF};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, NegativeExpr};
use datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx;
use datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::proto::{
    ExecutionPlanDecode, ExecutionPlanDecodeCtx, ExecutionPlanEncode, ExecutionPlanEncodeCtx,
};
use datafusion_proto::physical_plan::{
    AsExecutionPlan, PhysicalExtensionCodec, PhysicalPlanDecodeContext,
    PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf;
use datafusion_proto::protobuf::physical_plan_node::PhysicalPlanType;

pub use crate::error::RemoteError;
use crate::formats::ndjson::{JsonReadOptions, NdjsonSource};
use crate::optimizer::conjunctions_on_rows_left::Conjunction;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TransformedResult};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;

use crate::arithmetic::Checked;
use crate::arithmetic::sum::CheckedSum;
use crate::optimizer::outer_join_constants::NoConstantsExec;

/// Where the physical plans of a session's queries run when not in this process.
#[async_trait]
pub trait Remote: Send + Sync + std::fmt::Debug {
    /// Runs `plan`, planned in `state`, and streams its rows.
    async fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        state: &SessionState,
    ) -> DFResult<SendableRecordBatchStream>;

    /// Where the last query this remote ran ran, for the footer and `\d`: e.g. "on the
    /// cluster at 127.0.0.1:50050 (2 executors, 5 tasks)".
    fn last_run(&self) -> Option<String>;
}

/// strata's optimizer rules whose nodes or expressions cannot travel to a cluster yet: a
/// session with a remote switches them off (`strata.optimizer.<rule> = false`).
/// `shared_ctes` computes CTEs in this process, so it is off as well.
pub const CLUSTER_OFF_RULES: &[&str] = &[
    "shared_ctes",
    "key_column_filters",
    "dynamic_filter_row_pushdown",
    "faster_expressions",
    "split_switched_scans",
    "compact_merge_inputs",
    "array_join_maps",
    "top_k_owned_strings",
    "list_groups_in_order",
];

/// Whether `plan` reads files: only such plans go to a remote; the rest (constants, the
/// catalog's own tables, EXPLAIN) are answered in this process.
pub fn reads_files(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut found = false;
    let _ = plan.apply(|node| {
        if node
            .downcast_ref::<DataSourceExec>()
            .is_some_and(|d| d.data_source().downcast_ref::<FileScanConfig>().is_some())
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Makes a plan that reads files ready to run on a remote: a scan of a table's committed
/// files (a view named `strata-files://…`, known only to this process) reads the same files
/// from the store they are in. Scans a remote would read wrongly are refused: the codec of
/// compressed CSV drops the compression, so an executor would read gzip as text.
///
/// The one row a `SELECT` of constants reads (DataFusion's placeholder row) becomes the
/// same row in memory: Ballista runs a union of such a branch and a file scan below a join
/// to its end only some of the time (the query waits forever otherwise), while the same
/// row as an in-memory scan runs every time.
pub(crate) fn prepare(plan: Arc<dyn ExecutionPlan>) -> DFResult<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if node.downcast_ref::<PlaceholderRowExec>().is_some() {
            return Ok(Transformed::yes(rows_in_memory(&node)?));
        }
        let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
            return Ok(Transformed::no(node));
        };
        let Some(scan) = exec.data_source().downcast_ref::<FileScanConfig>() else {
            return Ok(Transformed::no(node));
        };
        if scan.file_compression_type.is_compressed()
            && scan.file_source().downcast_ref::<NdjsonSource>().is_none()
        {
            let file = scan
                .file_groups
                .iter()
                .flat_map(|g| g.files())
                .next()
                .map(|f| format!(" such as '{}'", f.object_meta.location))
                .unwrap_or_default();
            return Err(DataFusionError::External(Box::new(crate::error::Error::Unsupported(
                format!(
                    "compressed {} files{file} cannot be read on a cluster yet; query them without --cluster, or write them into a Parquet or Delta table first",
                    scan.file_source().file_type().to_uppercase()
                ),
            ))));
        }
        let url = scan.object_store_url.as_str();
        if !url.starts_with(crate::providers::fileset::SCHEME) {
            return Ok(Transformed::no(node));
        }
        let set = url::Url::parse(url)
            .ok()
            .and_then(|u| crate::providers::fileset::lookup(&u))
            .ok_or_else(|| {
                DataFusionError::Internal(format!("the file set of {url} is no longer known"))
            })?;
        let mut real = scan.clone();
        real.object_store_url = ObjectStoreUrl::parse(set.real.as_str())?;
        let exec = exec.clone().with_data_source(Arc::new(real));
        Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
    })
    .data()
}

/// A placeholder row's partitions (one row each, of NULLs) as an in-memory scan.
fn rows_in_memory(placeholder: &Arc<dyn ExecutionPlan>) -> DFResult<Arc<dyn ExecutionPlan>> {
    let schema = placeholder.schema();
    // Nothing reads the row's values (a placeholder's batches have NULL columns of its own,
    // whatever its schema says), so a column that may not be NULL holds its type's default.
    let columns = schema
        .fields()
        .iter()
        .map(|f| match f.is_nullable() {
            true => Ok(arrow::array::new_null_array(f.data_type(), 1)),
            false => ScalarValue::new_default(f.data_type())?.to_array_of_size(1),
        })
        .collect::<DFResult<Vec<_>>>()?;
    let row = arrow::array::RecordBatch::try_new_with_options(
        Arc::clone(&schema),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    let partitions = placeholder
        .properties()
        .output_partitioning()
        .partition_count();
    let scan: Arc<dyn ExecutionPlan> =
        MemorySourceConfig::try_new_exec(&vec![vec![row]; partitions], schema, None)?;
    Ok(scan)
}

/// Tags strata's encodings. A tag starts with 0xff, which no protobuf message starts with
/// (field 31 of wire type 7 does not exist), so it is never mistaken for another codec's.
const NO_CONSTANTS: &[u8] = b"\xffstrata.no_constants";
const CHECKED_SUM: &[u8] = b"\xffstrata.checked_sum";
const COUNTED_ARRAY_AGG: &[u8] = b"\xffstrata.counted_array_agg";
const CHECKED: &[u8] = b"\xffstrata.checked:";
const CONJUNCTION: &[u8] = b"\xffstrata.conjunction";
/// An NDJSON scan: the tag, its read options as one line of JSON, then the scan as a
/// datafusion-proto JSON scan node.
const NDJSON_SCAN: &[u8] = b"\xffstrata.ndjson_scan:";

/// The physical codec for strata's own nodes, expressions and functions, over another codec
/// (the cluster's) for everything else.
#[derive(Debug)]
pub struct StrataCodec {
    inner: Arc<dyn PhysicalExtensionCodec>,
}

impl StrataCodec {
    /// strata's codec, handing what is not strata's to `inner`.
    pub fn new(inner: Arc<dyn PhysicalExtensionCodec>) -> Self {
        Self { inner }
    }
}

impl PhysicalExtensionCodec for StrataCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if buf == NO_CONSTANTS {
            let [input] = inputs else {
                return Err(DataFusionError::Internal(format!(
                    "NoConstantsExec has one input, not {}",
                    inputs.len()
                )));
            };
            return Ok(Arc::new(NoConstantsExec::new(Arc::clone(input))));
        }
        if let Some(scan) = buf.strip_prefix(NDJSON_SCAN) {
            return decode_ndjson_scan(scan, ctx, self, proto_converter);
        }
        self.inner.try_decode(buf, inputs, ctx, proto_converter)
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DFResult<()> {
        if node.downcast_ref::<NoConstantsExec>().is_some() {
            buf.extend_from_slice(NO_CONSTANTS);
            return Ok(());
        }
        if let Some((scan, source)) = ndjson_scan(&node) {
            buf.extend_from_slice(NDJSON_SCAN);
            buf.extend_from_slice(&encode_ndjson_scan(scan, source, self, proto_converter)?);
            return Ok(());
        }
        self.inner.try_encode(node, buf, proto_converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> DFResult<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> DFResult<()> {
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_expr(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn PhysicalExpr>],
        ctx: &PhysicalExprDecodeCtx<'_>,
    ) -> DFResult<Arc<dyn PhysicalExpr>> {
        if buf == CONJUNCTION {
            return Conjunction::from_conditions(inputs.to_vec());
        }
        match buf.strip_prefix(CHECKED) {
            Some(kind) => decode_checked(kind, inputs),
            None => self.inner.try_decode_expr(buf, inputs, ctx),
        }
    }

    fn try_encode_expr(
        &self,
        node: &Arc<dyn PhysicalExpr>,
        buf: &mut Vec<u8>,
        ctx: &PhysicalExprEncodeCtx<'_>,
    ) -> DFResult<()> {
        if node.downcast_ref::<Conjunction>().is_some() {
            buf.extend_from_slice(CONJUNCTION);
            return Ok(());
        }
        match node.downcast_ref::<Checked>() {
            Some(checked) => {
                buf.extend_from_slice(CHECKED);
                buf.extend_from_slice(&encode_checked(checked)?);
                Ok(())
            }
            None => self.inner.try_encode_expr(node, buf, ctx),
        }
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> DFResult<Arc<AggregateUDF>> {
        if buf == CHECKED_SUM {
            return Ok(Arc::new(crate::arithmetic::sum::udaf()));
        }
        if buf == COUNTED_ARRAY_AGG {
            return Ok(Arc::new(crate::array_agg::udaf()));
        }
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> DFResult<()> {
        let inner: &dyn std::any::Any = node.inner().as_ref();
        if inner.downcast_ref::<CheckedSum>().is_some() {
            buf.extend_from_slice(CHECKED_SUM);
            return Ok(());
        }
        if inner
            .downcast_ref::<crate::array_agg::CountedArrayAgg>()
            .is_some()
        {
            buf.extend_from_slice(COUNTED_ARRAY_AGG);
            return Ok(());
        }
        self.inner.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> DFResult<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> DFResult<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

/// A checked expression as its kind: the operator and whether the binary expression fails
/// on overflow (its children travel as the extension's inputs).
fn encode_checked(checked: &Checked) -> DFResult<Vec<u8>> {
    let inner = checked.inner();
    if inner.downcast_ref::<NegativeExpr>().is_some() {
        return Ok(b"neg".to_vec());
    }
    let Some(binary) = inner.downcast_ref::<BinaryExpr>() else {
        return Err(DataFusionError::Internal(format!(
            "a checked expression of an unknown kind cannot travel: {inner}"
        )));
    };
    let op = match binary.op() {
        Operator::Plus => "+",
        Operator::Minus => "-",
        Operator::Multiply => "*",
        other => {
            return Err(DataFusionError::Internal(format!(
                "a checked {other} cannot travel"
            )));
        }
    };
    // BinaryExpr has no getter for the flag; a copy with it set compares equal when it is.
    let failing = BinaryExpr::new(
        Arc::clone(binary.left()),
        *binary.op(),
        Arc::clone(binary.right()),
    )
    .with_fail_on_overflow(true);
    let flag = if failing == *binary { "!" } else { "" };
    Ok(format!("{op}{flag}").into_bytes())
}

fn decode_checked(
    kind: &[u8],
    inputs: &[Arc<dyn PhysicalExpr>],
) -> DFResult<Arc<dyn PhysicalExpr>> {
    let bad = || {
        DataFusionError::Internal(format!(
            "a checked expression '{}' with {} inputs cannot be decoded",
            String::from_utf8_lossy(kind),
            inputs.len()
        ))
    };
    let inner: Arc<dyn PhysicalExpr> = match (kind, inputs) {
        (b"neg", [arg]) => Arc::new(NegativeExpr::new(Arc::clone(arg))),
        (kind, [left, right]) => {
            let (op, failing) = match kind {
                b"+" => (Operator::Plus, false),
                b"+!" => (Operator::Plus, true),
                b"-" => (Operator::Minus, false),
                b"-!" => (Operator::Minus, true),
                b"*" => (Operator::Multiply, false),
                b"*!" => (Operator::Multiply, true),
                _ => return Err(bad()),
            };
            Arc::new(
                BinaryExpr::new(Arc::clone(left), op, Arc::clone(right))
                    .with_fail_on_overflow(failing),
            )
        }
        _ => return Err(bad()),
    };
    Ok(Arc::new(Checked::new(inner)))
}

/// The file scan and NDJSON source of a scan of strata's NDJSON files.
fn ndjson_scan(node: &Arc<dyn ExecutionPlan>) -> Option<(&FileScanConfig, &NdjsonSource)> {
    let scan = node
        .downcast_ref::<DataSourceExec>()?
        .data_source()
        .downcast_ref::<FileScanConfig>()?;
    let source = scan.file_source().downcast_ref::<NdjsonSource>()?;
    Some((scan, source))
}

/// An NDJSON scan's read options (the session's read counters stay behind: an executor
/// counts into counters of its own) and its file scan.
fn encode_ndjson_scan(
    scan: &FileScanConfig,
    source: &NdjsonSource,
    codec: &dyn PhysicalExtensionCodec,
    proto_converter: &dyn PhysicalProtoConverterExtension,
) -> DFResult<Vec<u8>> {
    let options = source.options();
    let header = serde_json::json!({
        "table": options.table,
        "location": options.location,
        "skip_malformed": options.skip_malformed,
        "by_path": options.by_path,
    });
    let encoder = PlanEncoder {
        codec,
        proto_converter,
    };
    let conf = scan.try_to_proto(&ExecutionPlanEncodeCtx::new(&encoder))?;
    let node = protobuf::PhysicalPlanNode {
        physical_plan_type: Some(PhysicalPlanType::JsonScan(protobuf::JsonScanExecNode {
            base_conf: Some(conf),
        })),
    };
    let mut buf = header.to_string().into_bytes();
    buf.push(b'\n');
    node.try_encode(&mut buf)?;
    Ok(buf)
}

fn decode_ndjson_scan(
    buf: &[u8],
    ctx: &TaskContext,
    codec: &dyn PhysicalExtensionCodec,
    proto_converter: &dyn PhysicalProtoConverterExtension,
) -> DFResult<Arc<dyn ExecutionPlan>> {
    let bad =
        |what: &str| DataFusionError::Internal(format!("an NDJSON scan cannot be decoded: {what}"));
    let newline = buf
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no options"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&buf[..newline]).map_err(|e| bad(&e.to_string()))?;
    let text = |key: &str| header[key].as_str().unwrap_or_default().to_string();
    let flag = |key: &str| header[key].as_bool().unwrap_or_default();
    let options = Arc::new(JsonReadOptions {
        table: text("table"),
        location: text("location"),
        skip_malformed: flag("skip_malformed"),
        counters: Arc::default(),
        by_path: flag("by_path"),
    });
    let node = protobuf::PhysicalPlanNode::try_decode(&buf[newline + 1..])?;
    let Some(PhysicalPlanType::JsonScan(protobuf::JsonScanExecNode {
        base_conf: Some(conf),
    })) = &node.physical_plan_type
    else {
        return Err(bad("not a JSON scan"));
    };
    let source = Arc::new(NdjsonSource::new(
        FileScanConfig::parse_table_schema_from_proto(conf)?,
        options,
    ));
    let context = PhysicalPlanDecodeContext::new(ctx, codec);
    let decoder = PlanDecoder {
        ctx: &context,
        proto_converter,
    };
    let scan =
        FileScanConfig::try_from_proto(conf, &ExecutionPlanDecodeCtx::new(&decoder), source)?;
    Ok(DataSourceExec::from_data_source(scan))
}

/// Encodes the parts of a file scan (its expressions, statistics) through the cluster's
/// codec, as datafusion-proto does for the scans it knows.
struct PlanEncoder<'a> {
    codec: &'a dyn PhysicalExtensionCodec,
    proto_converter: &'a dyn PhysicalProtoConverterExtension,
}

impl ExecutionPlanEncode for PlanEncoder<'_> {
    fn encode_plan(&self, plan: &Arc<dyn ExecutionPlan>) -> DFResult<protobuf::PhysicalPlanNode> {
        self.proto_converter
            .execution_plan_to_proto(plan, self.codec)
    }

    fn encode_expr(&self, expr: &Arc<dyn PhysicalExpr>) -> DFResult<protobuf::PhysicalExprNode> {
        self.proto_converter
            .physical_expr_to_proto(expr, self.codec)
    }

    fn encode_udf(&self, udf: &ScalarUDF) -> DFResult<Option<Vec<u8>>> {
        let mut buf = vec![];
        self.codec.try_encode_udf(udf, &mut buf)?;
        Ok((!buf.is_empty()).then_some(buf))
    }

    fn encode_udaf(&self, udaf: &AggregateUDF) -> DFResult<Option<Vec<u8>>> {
        let mut buf = vec![];
        self.codec.try_encode_udaf(udaf, &mut buf)?;
        Ok((!buf.is_empty()).then_some(buf))
    }

    fn encode_udwf(&self, udwf: &WindowUDF) -> DFResult<Option<Vec<u8>>> {
        let mut buf = vec![];
        self.codec.try_encode_udwf(udwf, &mut buf)?;
        Ok((!buf.is_empty()).then_some(buf))
    }
}

/// Decodes the parts of a file scan through the cluster's codec.
struct PlanDecoder<'a, 'ctx> {
    ctx: &'a PhysicalPlanDecodeContext<'ctx>,
    proto_converter: &'a dyn PhysicalProtoConverterExtension,
}

impl ExecutionPlanDecode for PlanDecoder<'_, '_> {
    fn decode_plan(&self, node: &protobuf::PhysicalPlanNode) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.proto_converter.proto_to_execution_plan(node, self.ctx)
    }

    fn decode_plan_with_scalar_subquery_results(
        &self,
        node: &protobuf::PhysicalPlanNode,
        results: ScalarSubqueryResults,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let scoped = self.ctx.with_scalar_subquery_results(results);
        self.proto_converter.proto_to_execution_plan(node, &scoped)
    }

    fn decode_expr(
        &self,
        node: &protobuf::PhysicalExprNode,
        input_schema: &Schema,
    ) -> DFResult<Arc<dyn PhysicalExpr>> {
        self.proto_converter
            .proto_to_physical_expr(node, input_schema, self.ctx)
    }

    fn task_ctx(&self) -> &TaskContext {
        self.ctx.task_ctx()
    }

    fn decode_udf(&self, name: &str, payload: Option<&[u8]>) -> DFResult<Arc<ScalarUDF>> {
        match payload {
            Some(buf) => self.ctx.codec().try_decode_udf(name, buf),
            None => self
                .ctx
                .task_ctx()
                .udf(name)
                .or_else(|_| self.ctx.codec().try_decode_udf(name, &[])),
        }
    }

    fn decode_udaf(&self, name: &str, payload: Option<&[u8]>) -> DFResult<Arc<AggregateUDF>> {
        match payload {
            Some(buf) => self.ctx.codec().try_decode_udaf(name, buf),
            None => self
                .ctx
                .task_ctx()
                .udaf(name)
                .or_else(|_| self.ctx.codec().try_decode_udaf(name, &[])),
        }
    }

    fn decode_udwf(&self, name: &str, payload: Option<&[u8]>) -> DFResult<Arc<WindowUDF>> {
        match payload {
            Some(buf) => self.ctx.codec().try_decode_udwf(name, buf),
            None => self
                .ctx
                .task_ctx()
                .udwf(name)
                .or_else(|_| self.ctx.codec().try_decode_udwf(name, &[])),
        }
    }
}
