//! strata's optimizer: its rules in the order they run, each with the reason for its place,
//! and a switch for each, `strata.optimizer.<rule>` (on by default).
//!
//! DataFusion's own physical rules run as DataFusion orders them; strata's go before, between
//! or after them at the places [`RULES`] names. A rule that is switched off (`SET
//! strata.optimizer.cheapest_join_order = false`) leaves the plan as it finds it, so a wrong
//! answer or a slow plan can be traced to a rule by switching rules off one at a time; the
//! switches show in `SHOW ALL` and `information_schema.df_settings`.
//!
//! One file per rule, named after it; `decimal_arith`, `like_segments`, `key_bitmap` and
//! `key_lists` are parts of the rules that use them (`faster_expressions`,
//! `dynamic_filter_row_pushdown`, `key_column_filters`). `plannable_subqueries` is no
//! switchable rule: it rewrites subqueries DataFusion cannot plan, so it decides whether a
//! query answers, and runs with the analyzer rules.

pub(crate) mod array_join_maps;
pub(crate) mod build_fewer_rows;
pub(crate) mod cheap_conditions_first;
pub(crate) mod cheapest_join_order;
pub(crate) mod compact_merge_inputs;
pub(crate) mod conjunctions_on_rows_left;
pub(crate) mod decimal_arith;
pub(crate) mod distinct_build_rows;
pub(crate) mod dynamic_filter_row_pushdown;
pub(crate) mod faster_expressions;
pub(crate) mod key_bitmap;
pub(crate) mod key_column_filters;
pub(crate) mod key_lists;
pub(crate) mod like_segments;
pub(crate) mod list_groups_in_order;
pub(crate) mod outer_join_constants;
pub(crate) mod plain_anti_join_on_non_null_keys;
pub(crate) mod plannable_subqueries;
pub(crate) mod shared_ctes;
pub(crate) mod single_distinct_keeps_types;
pub(crate) mod split_switched_scans;
pub(crate) mod spread_files_across_partitions;
pub(crate) mod string_filter_selectivity;
pub(crate) mod three_valued_in_subqueries;
pub(crate) mod top_k_owned_strings;

use std::any::Any;
use std::sync::Arc;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::optimizer::OptimizerRule;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

use crate::error::{Error, Result};

/// Where a rule runs relative to DataFusion's physical rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Before statements are planned: a rewrite of the statement itself.
    Statement,
    /// Where a table provider plans its scan: how a kind of table is read.
    Scan,
    /// Before every DataFusion physical rule.
    First,
    /// Right before the DataFusion rule of this name.
    Before(&'static str),
    /// Right after the DataFusion rule of this name.
    After(&'static str),
    /// After every DataFusion physical rule.
    Last,
    /// Among DataFusion's logical optimizer rules, right before the one of this name.
    BeforeLogical(&'static str),
}

/// One of strata's rules: its name (the name of its switch and of its file), where it runs
/// and why there.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    /// What the rule does, in one line (the description of its switch).
    pub does: &'static str,
    pub place: Place,
    pub reason: &'static str,
    make: Option<fn() -> Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
    make_logical: Option<fn() -> Arc<dyn OptimizerRule + Send + Sync>>,
}

const fn statement(name: &'static str, does: &'static str, reason: &'static str) -> Rule {
    Rule {
        name,
        does,
        place: Place::Statement,
        reason,
        make: None,
        make_logical: None,
    }
}

const fn scan(name: &'static str, does: &'static str, reason: &'static str) -> Rule {
    Rule {
        name,
        does,
        place: Place::Scan,
        reason,
        make: None,
        make_logical: None,
    }
}

const fn physical(
    name: &'static str,
    does: &'static str,
    place: Place,
    reason: &'static str,
    make: fn() -> Arc<dyn PhysicalOptimizerRule + Send + Sync>,
) -> Rule {
    Rule {
        name,
        does,
        place,
        reason,
        make: Some(make),
        make_logical: None,
    }
}

const fn logical(
    name: &'static str,
    does: &'static str,
    place: Place,
    reason: &'static str,
    make: fn() -> Arc<dyn OptimizerRule + Send + Sync>,
) -> Rule {
    Rule {
        name,
        does,
        place,
        reason,
        make: None,
        make_logical: Some(make),
    }
}

/// strata's rules in the order they run. Rules at the same place run in the order listed.
pub const RULES: &[Rule] = &[
    scan(
        "delta_scans_as_parquet",
        "scans a Delta table's files with DataFusion's Parquet scan, with the partition values and statistics of its log",
        "when a Delta table is scanned: the same files of the same version, read faster than through deltalake's scan; tables with deletion vectors or column mapping keep deltalake's scan",
    ),
    statement(
        "shared_ctes",
        "computes a CTE named more than once once, and plans the query over its rows",
        "before planning: DataFusion inlines a CTE wherever it is named, so one named twice must be computed first",
    ),
    logical(
        "three_valued_in_subqueries",
        "plans IN and NOT IN subqueries that NULLs or correlation make DataFusion get wrong as EXISTS and scalar subqueries",
        Place::BeforeLogical("decorrelate_predicate_subquery"),
        "before DataFusion turns IN subqueries into joins, which it makes two-valued or fails to plan",
        || Arc::new(three_valued_in_subqueries::ThreeValuedInSubqueries),
    ),
    logical(
        "single_distinct_keeps_types",
        "splits an aggregate with one count(DISTINCT …) in two as DataFusion does, keeping its output types",
        Place::BeforeLogical("single_distinct_aggregation_to_group_by"),
        "in place of DataFusion's rule, which it runs and whose changed sum types it casts back",
        || Arc::new(single_distinct_keeps_types::SingleDistinctKeepsTypes::default()),
    ),
    physical(
        "string_filter_selectivity",
        "estimates the rows string filters keep from the columns' distinct counts",
        Place::First,
        "first: every later rule that reads row estimates sees the string filters' selectivities",
        || Arc::new(string_filter_selectivity::StringFilterSelectivity),
    ),
    physical(
        "outer_join_constants",
        "keeps an outer join from claiming constants of the side it fills with NULLs",
        Place::First,
        "first: DataFusion's rules that remove sorts read the constants the joins claim",
        || Arc::new(outer_join_constants::OuterJoinConstants),
    ),
    physical(
        "plain_anti_join_on_non_null_keys",
        "plans NOT IN on keys the files prove free of NULLs as a plain anti join",
        Place::Before("join_selection"),
        "before join selection, which may then swap the anti joins it makes plain to hash the small side",
        || Arc::new(plain_anti_join_on_non_null_keys::PlainAntiJoinOnNonNullKeys),
    ),
    physical(
        "cheapest_join_order",
        "runs inner joins in the order estimated cheapest, not the FROM order",
        Place::Before("join_selection"),
        "before join selection, which then picks build sides for the order chosen here",
        || Arc::new(cheapest_join_order::CheapestJoinOrder),
    ),
    physical(
        "build_fewer_rows",
        "hashes the side of a partitioned hash join with fewer estimated rows",
        Place::After("join_selection"),
        "right after join selection's choice of build sides by bytes, before repartitions are placed around the joins",
        || Arc::new(build_fewer_rows::BuildFewerRows),
    ),
    physical(
        "distinct_build_rows",
        "a semi, anti or mark join that only asks whether a build row exists hashes the build side's distinct rows, where they are mostly not distinct",
        Place::After("join_selection"),
        "once the build sides are chosen (after build_fewer_rows), before repartitions are placed around the joins",
        || Arc::new(distinct_build_rows::DistinctBuildRows),
    ),
    physical(
        "top_k_owned_strings",
        "under a memory limit, a top-K sort over string views keeps its rows' strings as strings of its own, so it holds about k rows",
        Place::Before("FilterPushdown(Post)"),
        "before DataFusion hands the sort's dynamic filter down, which the rule's StringsExec passes to the scan as a filter on the scan's own columns",
        || Arc::new(top_k_owned_strings::TopKOwnedStrings),
    ),
    physical(
        "key_column_filters",
        "splits the join filters of multi-column joins per key column, for scans below other joins",
        Place::Last,
        "after DataFusion has placed its joins' dynamic filters, which it splits per key column",
        || Arc::new(key_column_filters::KeyColumnFilters),
    ),
    physical(
        "dynamic_filter_row_pushdown",
        "has Parquet scans evaluate join filters row by row while reading",
        Place::Last,
        "after the key column filters, so that scans evaluate those row by row too",
        || Arc::new(dynamic_filter_row_pushdown::DynamicFilterRowPushdown),
    ),
    physical(
        "cheap_conditions_first",
        "evaluates a filter's cheap conditions before its expensive ones",
        Place::Last,
        "once filters are final: it orders their conditions",
        || Arc::new(cheap_conditions_first::CheapConditionsFirst),
    ),
    physical(
        "faster_expressions",
        "rewrites decimal arithmetic and multi-part LIKE patterns into faster forms",
        Place::Last,
        "after the conditions are ordered: it rewrites single expressions in place",
        || Arc::new(faster_expressions::FasterExpressions),
    ),
    physical(
        "conjunctions_on_rows_left",
        "evaluates each condition of a conjunction only on the rows still in",
        Place::Last,
        "after the rules that read filters' conditions: it hides them in one expression",
        || Arc::new(conjunctions_on_rows_left::ConjunctionsOnRowsLeft),
    ),
    physical(
        "spread_files_across_partitions",
        "gives every partition of a filtered scan a share of every file",
        Place::Last,
        "once scans are final: it lays out their files across partitions",
        || Arc::new(spread_files_across_partitions::SpreadFilesAcrossPartitions),
    ),
    physical(
        "split_switched_scans",
        "reads file ranges whose join filters are all off without the row filter",
        Place::Last,
        "after every rule that lays out a scan's files",
        || Arc::new(split_switched_scans::SplitSwitchedScans::default()),
    ),
    physical(
        "list_groups_in_order",
        "under a memory limit, a grouped array_agg runs over rows sorted by its group keys, so it holds one group's list at a time",
        Place::Last,
        "once DataFusion has placed its sorts: the sort it adds is one no DataFusion rule may remove",
        || Arc::new(list_groups_in_order::ListGroupsInOrder),
    ),
    physical(
        "compact_merge_inputs",
        "under a memory limit, copies the strings of the batches a sort-preserving merge holds into buffers of their own",
        Place::Last,
        "after every rule that places or removes merges",
        || Arc::new(compact_merge_inputs::CompactMergeInputs),
    ),
    physical(
        "array_join_maps",
        "looks up hash join keys in an array when one integer key is dense enough",
        Place::Last,
        "last: its wrappers hide the joins from rules that look for them",
        || Arc::new(array_join_maps::ArrayJoinMaps),
    ),
];

/// The names of strata's rules, in the order they run.
pub fn rule_names() -> impl Iterator<Item = &'static str> {
    RULES.iter().map(|r| r.name)
}

/// DataFusion's physical rules with strata's at their places, each behind its switch.
pub(crate) fn physical_rules(
    mut rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> Result<Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>> {
    let position = |rules: &[Arc<dyn PhysicalOptimizerRule + Send + Sync>], name: &str| {
        rules.iter().position(|r| r.name() == name).ok_or_else(|| {
            Error::Unsupported(format!(
                "internal: strata's optimizer places a rule next to DataFusion's '{name}', which this DataFusion does not have"
            ))
        })
    };
    let mut first = 0;
    for (index, rule) in RULES.iter().enumerate() {
        let Some(make) = rule.make else {
            continue;
        };
        let switched: Arc<dyn PhysicalOptimizerRule + Send + Sync> = Arc::new(Switched {
            index,
            rule: make(),
        });
        match rule.place {
            Place::Statement | Place::Scan | Place::BeforeLogical(_) => {}
            Place::First => {
                rules.insert(first, switched);
                first += 1;
            }
            Place::Before(anchor) => {
                let at = position(&rules, anchor)?;
                rules.insert(at, switched);
            }
            Place::After(anchor) => {
                let at = position(&rules, anchor)?;
                // After the anchor and the strata rules already placed after it.
                let mut at = at + 1;
                while rules.get(at).is_some_and(|r| is_strata(r.name())) {
                    at += 1;
                }
                rules.insert(at, switched);
            }
            Place::Last => rules.push(switched),
        }
    }
    Ok(rules)
}

/// DataFusion's logical optimizer rules with strata's at their places. Each of strata's
/// checks its switch itself.
pub(crate) fn logical_rules(
    mut rules: Vec<Arc<dyn OptimizerRule + Send + Sync>>,
) -> Result<Vec<Arc<dyn OptimizerRule + Send + Sync>>> {
    for rule in RULES {
        let (Some(make), Place::BeforeLogical(anchor)) = (rule.make_logical, rule.place) else {
            continue;
        };
        let at = rules.iter().position(|r| r.name() == anchor).ok_or_else(|| {
            Error::Unsupported(format!(
                "internal: strata's optimizer places a rule before DataFusion's '{anchor}', which this DataFusion does not have"
            ))
        })?;
        rules.insert(at, make());
    }
    Ok(rules)
}

fn is_strata(name: &str) -> bool {
    RULES.iter().any(|r| r.name == name)
}

/// A rule that runs only when its switch is on.
#[derive(Debug)]
struct Switched {
    index: usize,
    rule: Arc<dyn PhysicalOptimizerRule + Send + Sync>,
}

impl PhysicalOptimizerRule for Switched {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if enabled_at(config, self.index) {
            self.rule.optimize(plan, config)
        } else {
            Ok(plan)
        }
    }

    fn name(&self) -> &str {
        self.rule.name()
    }

    fn schema_check(&self) -> bool {
        self.rule.schema_check()
    }
}

/// Whether the rule of this name is switched on in these options.
pub(crate) fn enabled(config: &ConfigOptions, name: &str) -> bool {
    RULES
        .iter()
        .position(|r| r.name == name)
        .is_none_or(|index| enabled_at(config, index))
}

fn enabled_at(config: &ConfigOptions, index: usize) -> bool {
    config
        .extensions
        .get::<StrataOptions>()
        .is_none_or(|o| o.rules.get(index).copied().unwrap_or(true))
}

/// strata's settings in DataFusion's configuration, under the prefix `strata`:
/// `strata.optimizer.<rule>` for each of [`RULES`].
#[derive(Debug, Clone)]
pub struct StrataOptions {
    /// Whether each rule of [`RULES`] runs, by index.
    rules: Vec<bool>,
    /// Whether the session runs under a memory limit (set by the session, not a setting):
    /// rules that make memory accounting exact at some cost run only then.
    memory_limited: bool,
    /// Whether the session's queries run on a cluster (set by the session, not a setting):
    /// scans and joins are then planned in forms a cluster runs right.
    on_cluster: bool,
}

impl Default for StrataOptions {
    fn default() -> Self {
        Self {
            rules: vec![true; RULES.len()],
            memory_limited: false,
            on_cluster: false,
        }
    }
}

impl StrataOptions {
    /// The options of a session with or without a memory limit.
    pub fn with_memory_limit(limited: bool) -> Self {
        Self {
            memory_limited: limited,
            ..Self::default()
        }
    }

    /// Whether the session planning with `config` has a memory limit: the rules that act
    /// only under one ask this.
    pub(crate) fn memory_limited(config: &ConfigOptions) -> bool {
        config
            .extensions
            .get::<StrataOptions>()
            .is_some_and(|o| o.memory_limited)
    }
}

/// Marks the options of a session whose queries run on a cluster.
pub(crate) fn set_on_cluster(config: &mut ConfigOptions) {
    if let Some(options) = config.extensions.get_mut::<StrataOptions>() {
        options.on_cluster = true;
    }
}

/// Whether these are the options of a session whose queries run on a cluster.
pub(crate) fn on_cluster(config: &ConfigOptions) -> bool {
    config
        .extensions
        .get::<StrataOptions>()
        .is_some_and(|o| o.on_cluster)
}

impl ConfigExtension for StrataOptions {
    const PREFIX: &'static str = "strata";
}

impl ExtensionOptions for StrataOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> DFResult<()> {
        let unknown = || {
            DataFusionError::Configuration(format!(
                "strata has no setting 'strata.{key}'; its settings are strata.optimizer.<rule>, for the rules {}",
                rule_names().collect::<Vec<_>>().join(", ")
            ))
        };
        let rule = key.strip_prefix("optimizer.").ok_or_else(unknown)?;
        let index = RULES
            .iter()
            .position(|r| r.name == rule)
            .ok_or_else(unknown)?;
        let on = match value.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "1" => true,
            "false" | "off" | "0" => false,
            other => {
                return Err(DataFusionError::Configuration(format!(
                    "strata.optimizer.{rule} is true or false, not '{other}'"
                )));
            }
        };
        self.rules[index] = on;
        Ok(())
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        RULES
            .iter()
            .zip(&self.rules)
            .map(|(rule, on)| ConfigEntry {
                key: format!("{}.optimizer.{}", Self::PREFIX, rule.name),
                value: Some(on.to_string()),
                description: rule.does,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
