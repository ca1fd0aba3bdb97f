//! A partitioned hash join hashes the side with fewer estimated rows.
//!
//! DataFusion's join selection puts the input with fewer estimated bytes on the build side.
//! Byte estimates after semi and anti joins can be far off (a side of a few thousand rows
//! given as many bytes as one of millions), while row estimates hold up better, and building
//! costs per row. [`BuildFewerRows`] runs right after join selection, while join reordering
//! is on, on partitioned hash joins that can swap their sides, are not NULL-aware, and have
//! row estimates for both sides (an estimate of no rows counts as none):
//!
//! - a probe side of at least [`SHARE_RATIO`] times the rows of a build side of at most
//!   [`SHARE_MAX_THRESHOLDS`] times DataFusion's single-partition row threshold meets that
//!   build side hashed once and shared (`CollectLeft`), instead of being repartitioned;
//! - otherwise a build side of at least [`RATIO`] times the probe side's rows is swapped with
//!   it, and the new build side is shared (`CollectLeft`) when it is within the
//!   single-partition row threshold, partitioned otherwise.
//!
//! Joins already in `CollectLeft` mode are left alone: their build side passed DataFusion's
//! size thresholds. Neither change alters what the join yields: a swapped join gives back its
//! columns in their order.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

/// How many times more rows the build side must be estimated to have than
/// the probe side before the two are swapped; the margin keeps the rule to
/// estimates that disagree clearly with the byte-based choice.
const RATIO: usize = 8;

/// How many times more rows the probe side must be estimated to have than the build side
/// before the build side is hashed once and shared by all partitions (`CollectLeft`)
/// instead of both sides being repartitioned: repartitioning hashes and copies every probe
/// row only to meet the build side, which costs more than one thread hashing a build side
/// that much smaller.
const SHARE_RATIO: usize = 16;

/// The largest build side shared that way, as a multiple of DataFusion's single-partition
/// row threshold (`hash_join_single_partition_threshold_rows`): one thread hashes a shared
/// table, where partitions would hash their shares side by side, so a build side estimated
/// larger stays partitioned. The bound is on the estimate; a build side that is larger in
/// fact than estimated is still hashed once, only more slowly.
const SHARE_MAX_THRESHOLDS: usize = 2;

#[derive(Debug, Default)]
pub(crate) struct BuildFewerRows;

impl PhysicalOptimizerRule for BuildFewerRows {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !config.optimizer.join_reordering {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if *join.partition_mode() != PartitionMode::Partitioned
                || !join.join_type().supports_swap()
                || join.null_aware
            {
                return Ok(Transformed::no(node));
            }
            let rows = |plan: &Arc<dyn ExecutionPlan>| {
                StatisticsContext::new()
                    .compute(plan.as_ref(), &StatisticsArgs::new())
                    .ok()
                    .and_then(|s| s.num_rows.get_value().copied())
            };
            let (Some(build), Some(probe)) = (rows(join.left()), rows(join.right())) else {
                return Ok(Transformed::no(node));
            };
            // An estimate of no rows at all is a guess, not a measure.
            if build > 0
                && probe >= build.saturating_mul(SHARE_RATIO)
                && build
                    <= config
                        .optimizer
                        .hash_join_single_partition_threshold_rows
                        .saturating_mul(SHARE_MAX_THRESHOLDS)
            {
                // The probe side dwarfs the build side: hash the build side once and
                // share it, rather than repartition the probe side to meet it.
                return Ok(Transformed::yes(
                    join.builder()
                        .with_partition_mode(PartitionMode::CollectLeft)
                        .build_exec()?,
                ));
            }
            if probe == 0 || build < probe.saturating_mul(RATIO) {
                return Ok(Transformed::no(node));
            }
            // A build side as small as DataFusion's single-partition threshold is hashed
            // once and shared, so the large side is not repartitioned to meet it.
            let mode = if probe <= config.optimizer.hash_join_single_partition_threshold_rows {
                PartitionMode::CollectLeft
            } else {
                PartitionMode::Partitioned
            };
            Ok(Transformed::yes(join.swap_inputs(mode)?))
        })
        .data()
    }

    fn name(&self) -> &str {
        "build_fewer_rows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::{JoinType, NullEquality};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::physical_expr::expressions::col;

    fn rows(name: &str, n: i64) -> Arc<dyn ExecutionPlan> {
        let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from_iter_values(0..n))],
        )
        .expect("batch");
        MemorySourceConfig::try_new_exec(&[vec![batch]], schema, None).expect("source")
    }

    fn join(build: i64, probe: i64, join_type: JoinType) -> Arc<dyn ExecutionPlan> {
        let (left, right) = (rows("a", build), rows("b", probe));
        let on = vec![(
            col("a", &left.schema()).expect("a"),
            col("b", &right.schema()).expect("b"),
        )];
        Arc::new(
            HashJoinExec::try_new(
                left,
                right,
                on,
                None,
                &join_type,
                None,
                PartitionMode::Partitioned,
                NullEquality::NullEqualsNothing,
                false,
            )
            .expect("join"),
        )
    }

    fn build_rows(plan: &Arc<dyn ExecutionPlan>) -> Option<usize> {
        let mut found = None;
        plan.apply(|node| {
            if let Some(j) = node.downcast_ref::<HashJoinExec>() {
                found = StatisticsContext::new()
                    .compute(j.left().as_ref(), &StatisticsArgs::new())
                    .ok()
                    .and_then(|s| s.num_rows.get_value().copied());
                return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .expect("walk");
        found
    }

    fn mode(plan: &Arc<dyn ExecutionPlan>) -> Option<PartitionMode> {
        let mut found = None;
        plan.apply(|node| {
            if let Some(j) = node.downcast_ref::<HashJoinExec>() {
                found = Some(*j.partition_mode());
                return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .expect("walk");
        found
    }

    #[test]
    fn a_small_new_build_side_is_shared_a_large_one_partitioned() {
        let mut config = ConfigOptions::default();
        config.optimizer.hash_join_single_partition_threshold_rows = 10;
        let swapped = BuildFewerRows
            .optimize(join(1000, 20, JoinType::Inner), &config)
            .expect("rule");
        assert_eq!(build_rows(&swapped), Some(20));
        assert_eq!(mode(&swapped), Some(PartitionMode::Partitioned));
    }

    #[test]
    fn the_side_with_far_fewer_rows_is_built() {
        let config = ConfigOptions::default();
        for join_type in [JoinType::Inner, JoinType::LeftAnti, JoinType::LeftSemi] {
            let plan = join(1000, 20, join_type);
            let swapped = BuildFewerRows.optimize(plan, &config).expect("rule");
            assert_eq!(build_rows(&swapped), Some(20), "{join_type}");
            assert_eq!(
                mode(&swapped),
                Some(PartitionMode::CollectLeft),
                "{join_type}"
            );
            // The output keeps its columns in their order.
            assert_eq!(swapped.schema().field(0).name(), "a", "{join_type}");
        }
    }

    #[test]
    fn close_estimates_keep_datafusions_choice() {
        let config = ConfigOptions::default();
        let plan = join(100, 20, JoinType::Inner);
        let kept = BuildFewerRows.optimize(plan, &config).expect("rule");
        assert_eq!(build_rows(&kept), Some(100));
        let mut off = ConfigOptions::default();
        off.optimizer.join_reordering = false;
        let plan = join(1000, 20, JoinType::Inner);
        let kept = BuildFewerRows.optimize(plan, &off).expect("rule");
        assert_eq!(build_rows(&kept), Some(1000));
    }

    #[test]
    fn a_probe_side_far_larger_than_a_modest_build_side_meets_a_shared_table() {
        let config = ConfigOptions::default();
        let shared = BuildFewerRows
            .optimize(join(20, 1000, JoinType::Inner), &config)
            .expect("rule");
        assert_eq!(build_rows(&shared), Some(20));
        assert_eq!(mode(&shared), Some(PartitionMode::CollectLeft));
        assert_eq!(shared.schema().field(0).name(), "a");
        // 10 times as many probe rows is not enough.
        let kept = BuildFewerRows
            .optimize(join(20, 200, JoinType::Inner), &config)
            .expect("rule");
        assert_eq!(mode(&kept), Some(PartitionMode::Partitioned));
        // Nor is a build side over twice the single-partition row threshold.
        let mut small = ConfigOptions::default();
        small.optimizer.hash_join_single_partition_threshold_rows = 5;
        let kept = BuildFewerRows
            .optimize(join(20, 1000, JoinType::Inner), &small)
            .expect("rule");
        assert_eq!(mode(&kept), Some(PartitionMode::Partitioned));
    }
}
