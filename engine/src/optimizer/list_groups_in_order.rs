//! Under a memory limit, a grouped `array_agg` runs over rows sorted by its group keys, so it
//! holds one group's list at a time rather than every group's.
//!
//! DataFusion 55 aggregates in two steps, a partial aggregate in each input partition and a
//! final one after a repartition by the group keys, and spills an aggregate that outgrows
//! its share of the limit in batches of `batch_size` groups, whatever their bytes. An
//! `array_agg` over few groups holding long lists spills them all in one batch, and merging
//! the spill files back needs the largest batch of each file at once: `SELECT k,
//! array_agg(s) … GROUP BY k` over 1,000 groups of 640 MB of strings asked for 508 MB in one
//! piece under a 512 MiB limit, and grew to 2.2 GB before it failed. Its partial step gains
//! nothing either: a list's partial state is as large as the rows it was built from.
//!
//! [`ListGroupsInOrder`] plans such an aggregate as one step over its input sorted by the
//! group keys, in one partition. The sort spills rows (it holds no list), and the
//! aggregate, seeing its input ordered by its keys, emits each group as soon as its rows
//! are over. Where a node above relies on the
//! aggregate's partitions (a partitioned join on its keys), its rows are repartitioned by
//! the keys first and each partition sorted and aggregated on its own; elsewhere its output
//! is one partition (repartitioning a stream of lists would gather them into batches of
//! 8,192 rows again). A single group
//! whose list outgrows the limit is still refused, with the error that says to raise it.
//! The cost: one sort and one partition aggregating, where each partition aggregated (a
//! list's partial step saves nothing). It acts only under a memory limit (without one nothing is counted, and the hash
//! aggregate is faster), on aggregates with one grouping set, whose lists are not ordered
//! (an `array_agg(… ORDER BY …)` keeps the sort its ordering asked for).

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::{
    Distribution, ExecutionPlan, ExecutionPlanProperties, Partitioning,
};

use super::StrataOptions;
use super::top_k_owned_strings::{StringsExec, ViewsExec, owned};

#[derive(Debug, Default)]
pub(crate) struct ListGroupsInOrder;

/// The aggregates whose state grows with every row they take.
const LIST_AGGREGATES: &[&str] = &["array_agg"];

impl PhysicalOptimizerRule for ListGroupsInOrder {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !StrataOptions::memory_limited(config) {
            return Ok(plan);
        }
        rewrite(plan, false)
    }

    fn name(&self) -> &str {
        "list_groups_in_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` with its list aggregates in order. `keep_partitions` says whether a node above
/// relies on `plan`'s partitions (a partitioned join or aggregate, through nodes that keep
/// their input's partitions).
fn rewrite(plan: Arc<dyn ExecutionPlan>, keep_partitions: bool) -> Result<Arc<dyn ExecutionPlan>> {
    let resets = plan.downcast_ref::<RepartitionExec>().is_some()
        || plan.downcast_ref::<CoalescePartitionsExec>().is_some()
        || plan.downcast_ref::<SortPreservingMergeExec>().is_some();
    let required = plan.input_distribution_requirements();
    let children = plan.children();
    let mut changed = false;
    let mut new_children = Vec::with_capacity(children.len());
    for (index, child) in children.into_iter().enumerate() {
        let keep = match required.child_distribution(index) {
            Some(Distribution::SinglePartition) => false,
            Some(Distribution::UnspecifiedDistribution) | None => !resets && keep_partitions,
            // Partitioned by keys.
            Some(_) => true,
        };
        let new = rewrite(Arc::clone(child), keep)?;
        changed |= !Arc::ptr_eq(&new, child);
        new_children.push(new);
    }
    let plan = if changed {
        replace_children_if_necessary(plan, new_children)?
    } else {
        plan
    };
    let Some(aggregate) = plan.downcast_ref::<AggregateExec>() else {
        return Ok(plan);
    };
    match in_order(aggregate, keep_partitions)? {
        Some(new) if new.schema() == plan.schema() => Ok(new),
        _ => Ok(plan),
    }
}

/// `aggregate` (the final step of a two-step aggregate holding lists, or a one-step one)
/// as one step over its rows sorted by its group keys; `None` where the rule does not
/// apply. Where nothing above relies on its partitions, one sort and one aggregate in one
/// partition; otherwise its rows are repartitioned by the keys, as the final step's input
/// was, and each partition sorted and aggregated on its own.
fn in_order(
    aggregate: &AggregateExec,
    keep_partitions: bool,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let first = match aggregate.mode() {
        AggregateMode::FinalPartitioned | AggregateMode::Final => {
            match partial_below(aggregate.input()) {
                Some(partial) => partial,
                None => return Ok(None),
            }
        }
        AggregateMode::SinglePartitioned | AggregateMode::Single => aggregate,
        _ => return Ok(None),
    };
    let group_by = first.group_expr();
    let holds_lists = first
        .aggr_expr()
        .iter()
        .any(|a| LIST_AGGREGATES.contains(&a.fun().name()));
    let ordered_lists = first.aggr_expr().iter().any(|a| !a.order_bys().is_empty());
    if !holds_lists || ordered_lists || group_by.expr().is_empty() || !group_by.is_single() {
        return Ok(None);
    }
    let partitions = aggregate.properties().partitioning.partition_count();
    let keys = group_by.input_exprs();
    let input = Arc::clone(first.input());
    let Some(ordering) = LexOrdering::new(
        keys.iter()
            .map(|k| PhysicalSortExpr::new_default(Arc::clone(k))),
    ) else {
        return Ok(None);
    };
    let in_order = input
        .equivalence_properties()
        .ordering_satisfy(ordering.clone())?;
    if in_order && input.output_partitioning().partition_count() == 1 {
        // Already in order: the aggregate emits each group as it ends.
        return Ok(None);
    }
    let (input, mode) = if keep_partitions && partitions > 1 {
        let hashed = first.mode() == &AggregateMode::SinglePartitioned
            && input.output_partitioning().partition_count() == partitions;
        let input: Arc<dyn ExecutionPlan> = if hashed {
            input
        } else {
            Arc::new(RepartitionExec::try_new(
                input,
                Partitioning::Hash(keys.clone(), partitions),
            )?)
        };
        (
            sorted_rows(input, &keys, ordering, false)?,
            AggregateMode::SinglePartitioned,
        )
    } else {
        (
            sorted_rows(input, &keys, ordering, true)?,
            AggregateMode::Single,
        )
    };
    let single = AggregateExec::try_new(
        mode,
        group_by.clone(),
        first.aggr_expr().to_vec(),
        first.filter_expr().to_vec(),
        input,
        first.input_schema(),
    )?;
    Ok(Some(Arc::new(single)))
}

/// `input`'s rows sorted by `ordering` (over `keys`): by one sort over all its rows where
/// `one_partition`, otherwise in each partition. One sort is the shape that holds to the
/// limit best: with a sort in each partition each takes its share of the limit, and the
/// first to merge its spill files takes what the others have not used yet (under 32 MiB
/// the merge of one of two sorts held 24 MB while the other could not get room for one
/// batch). Where no key is an expression over a string view column, the rows' views are
/// cast to strings of their own before the sort and back after it, so that the batches the
/// sort holds are counted (and spilled) at their rows' bytes, not at the pages their views
/// point into.
fn sorted_rows(
    input: Arc<dyn ExecutionPlan>,
    keys: &[Arc<dyn PhysicalExpr>],
    ordering: LexOrdering,
    one_partition: bool,
) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = input.schema();
    let is_view = |c: &Column| owned(schema.field(c.index()).data_type()).is_some();
    let views = schema
        .fields()
        .iter()
        .any(|f| owned(f.data_type()).is_some());
    let keys_allow = keys
        .iter()
        .all(|k| k.downcast_ref::<Column>().is_some() || !collect_columns(k).iter().any(is_view));
    let owned_strings = views && keys_allow;
    let mut input: Arc<dyn ExecutionPlan> = if owned_strings {
        Arc::new(StringsExec::new(input))
    } else {
        input
    };
    if one_partition && input.output_partitioning().partition_count() > 1 {
        input = Arc::new(CoalescePartitionsExec::new(input));
    }
    let mut sorted: Arc<dyn ExecutionPlan> =
        Arc::new(SortExec::new(ordering.clone(), input).with_preserve_partitioning(!one_partition));
    if owned_strings {
        sorted = Arc::new(ViewsExec::new(sorted, schema, ordering)?);
    }
    Ok(sorted)
}

/// The partial aggregate below a final one, through the repartition or coalesce between
/// them.
fn partial_below(plan: &Arc<dyn ExecutionPlan>) -> Option<&AggregateExec> {
    let mut plan = plan;
    loop {
        if let Some(repartition) = plan.downcast_ref::<RepartitionExec>() {
            plan = repartition.input();
        } else if let Some(coalesce) = plan.downcast_ref::<CoalescePartitionsExec>() {
            plan = coalesce.input();
        } else {
            break;
        }
    }
    plan.downcast_ref::<AggregateExec>()
        .filter(|a| a.mode() == &AggregateMode::Partial)
}
