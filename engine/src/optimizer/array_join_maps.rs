//! Hash joins on one integer key look their keys up in an array when the estimates say it pays.
//!
//! DataFusion can build a join's table as an array indexed by `key - min` (its "perfect
//! hash join", `ArrayMap`) instead of a hash table: no hashing of either side's keys, no
//! hash-table inserts, no equality check after a lookup. It does so only when the build
//! side's keys are dense (more than 15% of the range taken) or their range is under 1,024,
//! because the array has a 4-byte slot for every value in the range. Between the two lies a
//! common join of a star schema: a date-filtered slice of a large table's keys (one key in a
//! hundred, say) probed by many more rows, where clearing the array once costs less than
//! hashing every probe and build row.
//!
//! [`ArrayJoinMaps`] weighs that for each hash join on one key of an integer type, from the
//! plan's estimates: the range of the build side's key from its column statistics, and the
//! rows on either side. When the rows' saving outweighs clearing the arrays (one per
//! partition of a partitioned join; see [`pays`]) and they fit in [`MAX_ARRAY_BYTES`], the
//! join is wrapped in an [`ArrayJoinMapExec`], which runs it with DataFusion's range
//! threshold raised to that size. Joins on several keys, on other types or without
//! estimates are left to DataFusion. DataFusion still checks the real range once the build
//! side is in, so a wrong estimate never gives a larger array, and the answer is the same
//! either way: only the lookup structure changes.
//!
//! The threshold is a session option that the join reads when it runs, so the wrapper hands
//! its join a copy of the task context with the option changed. Joins below it would see the
//! raised threshold too; those with a key DataFusion could put in an array get a wrapper that
//! sets the session's own value back.

use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, internal_err};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

use crate::optimizer::key_bitmap::as_i128;
use datafusion::physical_plan::{
    ChildStats, ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan,
    ExecutionPlanProperties, PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
    Statistics,
};

/// The most memory the arrays of one join may take, all partitions together: also the most a
/// wrong estimate can cost, in memory and in slots cleared.
pub(crate) const MAX_ARRAY_BYTES: u64 = 64 * 1024 * 1024;

/// What a probe row and a build row save when the table is an array, and what a slot of the
/// array costs to clear, in tenths of a nanosecond. Only their ratios matter: a join gets an
/// array when its rows save more than its slots cost ([`pays`]). A slot cost set too high
/// only leaves joins hashed, as DataFusion would have them; the values were measured once
/// (benches/results/optimizer-rules.md).
const PROBE_SAVING: u128 = 80;
const BUILD_SAVING: u128 = 400;
const SLOT_COST: u128 = 15;

#[derive(Debug, Default)]
pub(crate) struct ArrayJoinMaps;

impl PhysicalOptimizerRule for ArrayJoinMaps {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Run twice, the rule would wrap its own wrappers: start from the plain plan.
        let plan = plan
            .transform_up(|node| {
                Ok(match wrapped_join(&node) {
                    Some(choice) => Transformed::yes(Arc::clone(&choice.input)),
                    None => Transformed::no(node),
                })
            })
            .data()?;
        let session = config.execution.perfect_hash_join_small_build_threshold;
        choose(plan, session, session)
    }

    fn name(&self) -> &str {
        "array_join_maps"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn wrapped_join(plan: &Arc<dyn ExecutionPlan>) -> Option<&ArrayJoinMapExec> {
    plan.downcast_ref::<ArrayJoinMapExec>()
}

/// Rewrites `plan`, which runs with `inherited` as the range threshold, wrapping the joins
/// whose threshold should differ from it.
fn choose(
    plan: Arc<dyn ExecutionPlan>,
    inherited: usize,
    session: usize,
) -> Result<Arc<dyn ExecutionPlan>> {
    let wanted = match plan
        .downcast_ref::<HashJoinExec>()
        .and_then(|join| Some((join, array_key(join)?)))
    {
        Some((join, key)) => array_threshold(join, key).unwrap_or(session),
        None => inherited,
    };
    let children: Vec<Arc<dyn ExecutionPlan>> = plan.children().into_iter().cloned().collect();
    let mut changed = false;
    let mut rewritten = Vec::with_capacity(children.len());
    for child in children {
        let new = choose(Arc::clone(&child), wanted, session)?;
        changed |= !Arc::ptr_eq(&new, &child);
        rewritten.push(new);
    }
    let plan = if changed {
        plan.replace_children(
            rewritten,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
        )?
    } else {
        plan
    };
    if wanted == inherited {
        Ok(plan)
    } else {
        Ok(Arc::new(ArrayJoinMapExec::new(plan, wanted)))
    }
}

/// The index of the build side's key column, when the join has one key of an integer type
/// (the keys DataFusion can put in an array).
fn array_key(join: &HashJoinExec) -> Option<usize> {
    let [(left, _)] = join.on() else {
        return None;
    };
    let column = left.downcast_ref::<Column>()?;
    let schema = join.left().schema();
    let field = schema.fields().get(column.index())?;
    field.data_type().is_integer().then_some(column.index())
}

/// The range threshold that makes this join build an array, when the plan's estimates say
/// the array pays and fits.
fn array_threshold(join: &HashJoinExec, key: usize) -> Option<usize> {
    let left = estimate(join.left())?;
    let right = estimate(join.right())?;
    let stats = left.column_statistics.get(key)?;
    let (min, max) = (
        as_i128(stats.min_value.get_value()?)?,
        as_i128(stats.max_value.get_value()?)?,
    );
    let slots = u128::try_from(max.checked_sub(min)?.checked_add(1)?).ok()?;
    let build_rows = left.num_rows.get_value().copied().unwrap_or(0) as u128;
    let probe_rows = right.num_rows.get_value().copied().unwrap_or(0) as u128;
    let maps = match join.partition_mode() {
        PartitionMode::Partitioned => join.left().output_partitioning().partition_count().max(1),
        _ => 1,
    } as u128;
    let threshold = (MAX_ARRAY_BYTES as u128 / 4 / maps) as usize;
    pays(slots, maps, build_rows, probe_rows).then_some(threshold)
}

/// Whether arrays of `slots` slots, `maps` of them, save more than they cost to clear.
pub(crate) fn pays(slots: u128, maps: u128, build_rows: u128, probe_rows: u128) -> bool {
    let fits = slots.saturating_mul(maps).saturating_mul(4) <= MAX_ARRAY_BYTES as u128;
    let saving = probe_rows
        .saturating_mul(PROBE_SAVING)
        .saturating_add(build_rows.saturating_mul(BUILD_SAVING));
    fits && saving > slots.saturating_mul(maps).saturating_mul(SLOT_COST)
}

fn estimate(plan: &Arc<dyn ExecutionPlan>) -> Option<Arc<Statistics>> {
    StatisticsContext::new()
        .compute(plan.as_ref(), &StatisticsArgs::new())
        .ok()
}

/// Runs its join (and the plan below it) with DataFusion's perfect-hash-join range
/// threshold set to `threshold`.
#[derive(Debug, Clone)]
pub struct ArrayJoinMapExec {
    input: Arc<dyn ExecutionPlan>,
    threshold: usize,
}

impl ArrayJoinMapExec {
    fn new(input: Arc<dyn ExecutionPlan>, threshold: usize) -> Self {
        Self { input, threshold }
    }
}

impl DisplayAs for ArrayJoinMapExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ArrayJoinMapExec: key ranges under {} as arrays",
            self.threshold
        )
    }
}

impl ExecutionPlan for ArrayJoinMapExec {
    fn name(&self) -> &str {
        "ArrayJoinMapExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
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
            return internal_err!("ArrayJoinMapExec has one child, got {}", children.len());
        }
        Ok(Arc::new(Self::new(children.swap_remove(0), self.threshold)))
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
        let mut config = context.session_config().clone();
        config
            .options_mut()
            .execution
            .perfect_hash_join_small_build_threshold = self.threshold;
        let context = TaskContext::new(
            context.task_id(),
            context.session_id(),
            config,
            context.scalar_functions().clone(),
            context.higher_order_functions().clone(),
            context.aggregate_functions().clone(),
            context.window_functions().clone(),
            context.runtime_env(),
        );
        self.input.execute(partition, Arc::new(context))
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{physical_plan, pretty, scratch_session, shown};

    /// How many of the plan's joins built an array, after it ran.
    fn arrays_built(plan: &Arc<dyn ExecutionPlan>) -> usize {
        let own = plan
            .downcast_ref::<HashJoinExec>()
            .and_then(|join| join.metrics())
            .and_then(|m| m.sum_by_name("array_map_created_count"))
            .map_or(0, |v| v.as_usize());
        own + plan.children().into_iter().map(arrays_built).sum::<usize>()
    }

    #[tokio::test]
    async fn a_sparse_build_side_probed_by_many_rows_is_an_array() {
        let (_dir, session) = scratch_session().await;
        // 200 dimension keys spread over a range of 20,000 (1% taken: DataFusion alone
        // would hash them), probed by 60,000 fact rows.
        session
            .sql(
                "CREATE TABLE processed.fact AS SELECT value % 20000 AS k, value AS v FROM generate_series(1, 60000);
                 CREATE TABLE processed.dim AS SELECT value AS k FROM generate_series(100, 20000, 100)",
            )
            .await
            .expect("tables");
        let query = "SELECT count(*) AS n, sum(v) AS s FROM processed.fact JOIN processed.dim ON fact.k = dim.k";
        let plan = physical_plan(&session, query).await;
        assert!(
            shown(&plan).contains("ArrayJoinMapExec"),
            "{}",
            shown(&plan)
        );
        let ctx = session.context().task_ctx();
        let answer = datafusion::physical_plan::collect(Arc::clone(&plan), ctx)
            .await
            .expect("run");
        assert_eq!(arrays_built(&plan), 1, "{}", shown(&plan));
        let expected = session
            .sql("SELECT count(*) AS n, sum(v) AS s FROM processed.fact WHERE k % 100 = 0 AND k >= 100")
            .await
            .expect("query");
        assert_eq!(pretty(&answer), pretty(&expected));
    }

    #[tokio::test]
    async fn a_sparse_build_side_probed_by_few_rows_stays_hashed() {
        let (_dir, session) = scratch_session().await;
        session
            .sql(
                "CREATE TABLE processed.fact AS SELECT value * 100 AS k, value AS v FROM generate_series(1, 300);
                 CREATE TABLE processed.dim AS SELECT value AS k FROM generate_series(100, 20000, 100)",
            )
            .await
            .expect("tables");
        let query = "SELECT count(*) AS n FROM processed.fact JOIN processed.dim ON fact.k = dim.k";
        let plan = physical_plan(&session, query).await;
        assert!(
            !shown(&plan).contains("ArrayJoinMapExec"),
            "{}",
            shown(&plan)
        );
        let answer =
            datafusion::physical_plan::collect(Arc::clone(&plan), session.context().task_ctx())
                .await
                .expect("run");
        assert_eq!(arrays_built(&plan), 0);
        assert!(pretty(&answer).contains("| 200 |"), "{}", pretty(&answer));
    }

    #[test]
    fn an_array_pays_for_many_probe_rows_over_a_modest_range() {
        // A build side of 1% of a 6 M key range, probed by 25 times as many rows.
        assert!(pays(6_000_000, 1, 57_000, 1_450_000));
        // The same range in two partitions, probed by fewer rows than it holds: clearing
        // the arrays costs more than the lookups save.
        assert!(!pays(6_000_000, 2, 31_000, 29_000));
        // A range of 100 M keys would take 400 MiB.
        assert!(!pays(100_000_000, 1, 10_000_000, 1_000_000_000));
        // Estimates of no rows never pay.
        assert!(!pays(1_000, 1, 0, 0));
    }
}
