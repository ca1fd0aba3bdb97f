//! Running queries somewhere else than in this process: on a cluster.
//!
//! The session plans a query as always (catalog reads, strata's logical and physical rules)
//! and hands the physical plan to its [`Remote`], which runs it and streams its rows back.
//! Plans travel as datafusion-proto messages: the scans strata's tables plan are DataFusion's
//! own Parquet, CSV and JSON scans, which datafusion-proto encodes, and [`StrataCodec`]
//! encodes the nodes and expressions of strata's own that a plan may hold. The rules whose
//! nodes cannot travel yet ([`CLUSTER_OFF_RULES`]) are switched off in a session with a
//! remote. Statements that write, and plans that read no files, run in this process.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::{AggregateUDF, Operator, ScalarUDF, WindowUDF};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, NegativeExpr};
use datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx;
use datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

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
    "conjunctions_on_rows_left",
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
        if node.downcast_ref::<DataSourceExec>().is_some_and(|d| {
            d.data_source()
                .downcast_ref::<datafusion::datasource::physical_plan::FileScanConfig>()
                .is_some()
        }) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Tags strata's encodings. A tag starts with 0xff, which no protobuf message starts with
/// (field 31 of wire type 7 does not exist), so it is never mistaken for another codec's.
const NO_CONSTANTS: &[u8] = b"\xffstrata.no_constants";
const CHECKED_SUM: &[u8] = b"\xffstrata.checked_sum";
const COUNTED_ARRAY_AGG: &[u8] = b"\xffstrata.counted_array_agg";
const CHECKED: &[u8] = b"\xffstrata.checked:";

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
