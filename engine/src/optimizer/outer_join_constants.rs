//! An outer join's output claims no constants of the side whose unmatched rows it fills
//! with NULLs.
//!
//! DataFusion 55 carries the equivalence classes of both inputs into an outer join's output
//! unchanged, constants included. Below `LEFT JOIN (SELECT … WHERE y = 7) b`, `y` is 7 in
//! every row; the join's output claims so too, though its unmatched rows hold NULL there. A
//! sort on `y` above the join is then taken as met and removed: `ORDER BY y NULLS FIRST`
//! returned 7 before the NULLs, where DuckDB returns the NULLs first.
//!
//! [`OuterJoinConstants`] runs first, before the DataFusion rules that read orderings, and
//! puts a [`NoConstantsExec`] over each NULL-filled input of an outer join whose properties
//! claim a constant: the right input of a LEFT join, the left of a RIGHT join, both of a
//! FULL join. It passes rows, partitions, orderings and pushed-down filters through
//! unchanged and claims no constants, so the join claims none of that side. Inputs that
//! claim no constants (nearly all) are left alone.

use std::fmt;
use std::sync::Arc;

use datafusion::common::JoinType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, Statistics, internal_err};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::{
    CardinalityEffect, ChildrenPropertiesMode, ReplaceChildrenOptions,
    replace_children_if_necessary,
};
use datafusion::physical_plan::filter_pushdown::{FilterDescription, FilterPushdownPhase};
use datafusion::physical_plan::joins::{HashJoinExec, NestedLoopJoinExec, SortMergeJoinExec};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    SendableRecordBatchStream,
};

#[derive(Debug, Default)]
pub(crate) struct OuterJoinConstants;

impl PhysicalOptimizerRule for OuterJoinConstants {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|plan| {
            let Some(join_type) = outer_join_type(&plan) else {
                return Ok(Transformed::no(plan));
            };
            let (left_filled, right_filled) = match join_type {
                JoinType::Left => (false, true),
                JoinType::Right => (true, false),
                JoinType::Full => (true, true),
                _ => return Ok(Transformed::no(plan)),
            };
            let children: Vec<Arc<dyn ExecutionPlan>> =
                plan.children().into_iter().map(Arc::clone).collect();
            let [left, right] = children.as_slice() else {
                return Ok(Transformed::no(plan));
            };
            let (new_left, left_changed) = forget_constants(left, left_filled);
            let (new_right, right_changed) = forget_constants(right, right_filled);
            if !left_changed && !right_changed {
                return Ok(Transformed::no(plan));
            }
            Ok(Transformed::yes(replace_children_if_necessary(
                plan,
                vec![new_left, new_right],
            )?))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "outer_join_constants"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The join type of a join DataFusion may plan an outer join as.
fn outer_join_type(plan: &Arc<dyn ExecutionPlan>) -> Option<JoinType> {
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        return Some(*join.join_type());
    }
    if let Some(join) = plan.downcast_ref::<NestedLoopJoinExec>() {
        return Some(*join.join_type());
    }
    if let Some(join) = plan.downcast_ref::<SortMergeJoinExec>() {
        return Some(join.join_type());
    }
    None
}

/// `input` under a [`NoConstantsExec`] when NULLs fill its side and it claims constants.
fn forget_constants(
    input: &Arc<dyn ExecutionPlan>,
    filled: bool,
) -> (Arc<dyn ExecutionPlan>, bool) {
    if !filled
        || input.equivalence_properties().constants().is_empty()
        || input.downcast_ref::<NoConstantsExec>().is_some()
    {
        return (Arc::clone(input), false);
    }
    (Arc::new(NoConstantsExec::new(Arc::clone(input))), true)
}

/// Its input's rows, partitions and orderings, claiming no constant columns.
#[derive(Debug, Clone)]
pub struct NoConstantsExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl NoConstantsExec {
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let from = input.properties();
        // The input's orderings hold for its rows as they are; only the constants, which
        // the join above would pass on as its own, are left out.
        let equivalences = EquivalenceProperties::new_with_orderings(
            input.schema(),
            from.equivalence_properties().oeq_class().iter().cloned(),
        );
        let mut properties = PlanProperties::new(
            equivalences,
            from.output_partitioning().clone(),
            from.emission_type,
            from.boundedness,
        );
        properties.evaluation_type = from.evaluation_type;
        properties.scheduling_type = from.scheduling_type;
        Self {
            input,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for NoConstantsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoConstantsExec: NULLs fill this side of an outer join")
    }
}

impl ExecutionPlan for NoConstantsExec {
    fn name(&self) -> &str {
        "NoConstantsExec"
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
            return internal_err!("NoConstantsExec has one child, got {}", children.len());
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
        self.input.execute(partition, context)
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

    fn gather_filters_for_pushdown(
        &self,
        _phase: FilterPushdownPhase,
        parent_filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterDescription> {
        FilterDescription::from_children(parent_filters, &self.children())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{pretty, scratch_session};

    #[tokio::test]
    async fn a_sort_on_a_column_constant_below_a_left_join_still_sorts_its_nulls() {
        let (_dir, session) = scratch_session().await;
        // DuckDB: NULL, NULL, 7; and 7, NULL, NULL with NULLS LAST.
        let query = |nulls: &str| {
            format!(
                "SELECT b.y FROM (VALUES (1), (2), (3)) a(x) LEFT JOIN \
                 (SELECT * FROM (VALUES (1, 7), (2, 8)) v(k, y) WHERE y = 7) b ON b.k = a.x \
                 ORDER BY 1 NULLS {nulls}"
            )
        };
        let rows = |text: String| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with("| ") && !l.contains("| y"))
                .map(|l| l.trim_matches(|c| c == '|' || c == ' ').to_string())
                .collect()
        };
        let first = pretty(&session.sql(&query("FIRST")).await.expect("query"));
        assert_eq!(rows(first.clone()), ["", "", "7"], "{first}");
        let last = pretty(&session.sql(&query("LAST")).await.expect("query"));
        assert_eq!(rows(last.clone()), ["7", "", ""], "{last}");
        // A RIGHT join fills its left side; a FULL join both.
        let right = pretty(
            &session
                .sql(
                    "SELECT b.y FROM (SELECT * FROM (VALUES (1, 7), (2, 8)) v(k, y) WHERE y = 7) b \
                     RIGHT JOIN (VALUES (1), (2), (3)) a(x) ON b.k = a.x ORDER BY 1 NULLS FIRST",
                )
                .await
                .expect("query"),
        );
        assert_eq!(rows(right.clone()), ["", "", "7"], "{right}");
        let full = pretty(
            &session
                .sql(
                    "SELECT b.y FROM (SELECT * FROM (VALUES (1, 7), (2, 8)) v(k, y) WHERE y = 7) b \
                     FULL JOIN (SELECT * FROM (VALUES (1), (2), (3)) t(x) WHERE x = 3) a ON b.k = a.x \
                     ORDER BY 1 NULLS FIRST",
                )
                .await
                .expect("query"),
        );
        assert_eq!(rows(full.clone()), ["", "7"], "{full}");
    }
}
