//! Under a memory limit, the batches a sort-preserving merge holds are counted at the size
//! of the strings they use, not of every buffer they share.
//!
//! A sorted run hands its rows on in slices of a batch, and with string views
//! (`Utf8View`, which strata's scans produce) every slice points into the data buffers of
//! the whole run. DataFusion 55's `SortPreservingMergeExec` reserves memory for each batch
//! it holds, and for the cursor over a single sort key, at the size of all buffers the
//! batch points into (apache/datafusion#25271). Sorting 300,000 rows of 32-character
//! strings (15 MB) then failed under a 48 MiB limit with the merge "holding" 43 MB, though
//! the sorts below it had spilled what they could; at 32 MiB the failure was certain.
//!
//! [`CompactMergeInputs`] puts a [`CompactViewsExec`] over each input of a sort-preserving
//! merge whose rows have view columns, when the session has a memory limit (without one,
//! nothing is counted and the plan is left alone). It copies a view column's strings into
//! buffers of their own only when the buffers it points into are more than twice the bytes
//! it uses and at least 64 KiB more, so a batch that owns its strings passes untouched.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, Statistics, internal_err};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::{
    CardinalityEffect, ChildrenPropertiesMode, ReplaceChildrenOptions,
    replace_children_if_necessary,
};
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;

use super::StrataOptions;

#[derive(Debug, Default)]
pub(crate) struct CompactMergeInputs;

impl PhysicalOptimizerRule for CompactMergeInputs {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !StrataOptions::memory_limited(config) {
            return Ok(plan);
        }
        plan.transform_up(|plan| {
            if plan.downcast_ref::<SortPreservingMergeExec>().is_none() {
                return Ok(Transformed::no(plan));
            }
            let input = Arc::clone(plan.children()[0]);
            if input.downcast_ref::<CompactViewsExec>().is_some() || !has_views(&input) {
                return Ok(Transformed::no(plan));
            }
            let compacted: Arc<dyn ExecutionPlan> = Arc::new(CompactViewsExec::new(input));
            Ok(Transformed::yes(replace_children_if_necessary(
                plan,
                vec![compacted],
            )?))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "compact_merge_inputs"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn has_views(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.schema()
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Utf8View | DataType::BinaryView))
}

/// Its input's batches, with each view column whose buffers are mostly unused copied into
/// buffers of its own.
#[derive(Debug, Clone)]
pub struct CompactViewsExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl CompactViewsExec {
    fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = Arc::clone(input.properties());
        Self { input, properties }
    }
}

impl DisplayAs for CompactViewsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompactViewsExec: strings in buffers of their own")
    }
}

impl ExecutionPlan for CompactViewsExec {
    fn name(&self) -> &str {
        "CompactViewsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("CompactViewsExec has one child, got {}", children.len());
        }
        Ok(Arc::new(Self::new(children.swap_remove(0))))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let schema = input.schema();
        let compacted = input.map(|batch| batch.and_then(|b| Ok(compact(b)?)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, compacted)))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(Arc::clone(&input_stats[0]))
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }
}

/// Buffers this many bytes larger than what a column uses, and more than twice it, are
/// copied away from.
const SLACK: usize = 64 * 1024;

/// `batch` with each mostly-unused view column copied into buffers of its own.
fn compact(batch: RecordBatch) -> datafusion::arrow::error::Result<RecordBatch> {
    let mut columns: Option<Vec<ArrayRef>> = None;
    for (i, column) in batch.columns().iter().enumerate() {
        let copied: Option<ArrayRef> = match column.data_type() {
            DataType::Utf8View => {
                let views = column.as_string_view();
                wasteful(views.data_buffers(), views.total_buffer_bytes_used())
                    .then(|| Arc::new(views.gc()) as ArrayRef)
            }
            DataType::BinaryView => {
                let views = column.as_binary_view();
                wasteful(views.data_buffers(), views.total_buffer_bytes_used())
                    .then(|| Arc::new(views.gc()) as ArrayRef)
            }
            _ => None,
        };
        if let Some(copied) = copied {
            columns.get_or_insert_with(|| batch.columns().to_vec())[i] = copied;
        }
    }
    match columns {
        None => Ok(batch),
        Some(columns) => RecordBatch::try_new(batch.schema(), columns),
    }
}

fn wasteful(buffers: &[datafusion::arrow::buffer::Buffer], used: usize) -> bool {
    let held: usize = buffers.iter().map(|b| b.capacity()).sum();
    held > used.saturating_mul(2).saturating_add(SLACK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringViewArray;

    #[test]
    fn slices_of_a_big_run_are_copied_and_owned_batches_pass() {
        let strings: Vec<String> = (0..100_000).map(|i| format!("{i:0>32}")).collect();
        let run = StringViewArray::from_iter_values(strings.iter());
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
            datafusion::arrow::datatypes::Field::new("s", DataType::Utf8View, false),
        ]));
        let whole = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(run)]).expect("batch");
        // The whole run uses its buffers: left as it is.
        let same = compact(whole.clone()).expect("compacted");
        assert!(Arc::ptr_eq(same.column(0), whole.column(0)));
        // A slice of 8,192 rows points into 3.2 MB of buffers for 262 KB of strings.
        let slice = whole.slice(0, 8_192);
        let before = slice.get_array_memory_size();
        let copied = compact(slice.clone()).expect("compacted");
        let after = copied.get_array_memory_size();
        assert!(after * 4 < before, "{after} vs {before}");
        assert_eq!(
            copied.column(0).as_string_view().value(8_191),
            slice.column(0).as_string_view().value(8_191)
        );
    }
}
