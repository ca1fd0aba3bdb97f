//! A bound on how deeply a statement's expressions nest. Parts of DataFusion's planner,
//! optimizer and executor walk expression trees recursively, and some of those walks are
//! quadratic in the depth: a chain of thousands of `+`, `OR` or `||` terms would take
//! minutes to plan or overflow a thread's stack. Past [`MAX_EXPRESSION_DEPTH`] levels a
//! statement is refused with an error naming the limit, before anything plans it.

use std::ops::ControlFlow;

use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Expr, Visit, Visitor};

use super::Statement;

/// The most levels an expression may nest: a chain of `a + b + …` of this many terms, or
/// functions and operators nested this deep. DuckDB's default `max_expression_depth` is the
/// same.
pub const MAX_EXPRESSION_DEPTH: usize = 1000;

/// The stack the check (and the drop of a statement it refuses) runs on: the walk stops at
/// the limit, but the statement it refuses may nest far deeper, and dropping it recurses.
const CHECK_STACK: usize = 256 * 1024 * 1024;

/// Counts the expressions open on the way down, and stops as soon as there are too many.
struct Depth {
    open: usize,
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.open += 1;
        if self.open > MAX_EXPRESSION_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.open -= 1;
        ControlFlow::Continue(())
    }
}

fn too_deep<V: Visit>(node: &V) -> bool {
    node.visit(&mut Depth { open: 0 }).is_break()
}

fn df_too_deep(statement: &DFStatement) -> bool {
    match statement {
        DFStatement::Statement(s) => too_deep(s.as_ref()),
        DFStatement::Explain(e) => df_too_deep(&e.statement),
        DFStatement::CopyTo(c) => match &c.source {
            CopyToSource::Query(q) => too_deep(q.as_ref()),
            CopyToSource::Relation(_) => false,
        },
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => false,
    }
}

/// Whether some expression of the statement nests deeper than [`MAX_EXPRESSION_DEPTH`].
pub(super) fn exceeds_limit(statement: &Statement) -> bool {
    match statement {
        Statement::DataFusion(s) => df_too_deep(s),
        Statement::CreateTableAs(c) => too_deep(c.query.as_ref()),
        Statement::Insert(s) => too_deep(s.as_ref()),
        Statement::Update(s) => too_deep(s.as_ref()),
        Statement::Delete(s) => too_deep(s.as_ref()),
        Statement::Merge(s) => too_deep(s.as_ref()),
        Statement::Check(c) => c.subject.as_ref().is_some_and(|q| too_deep(q.as_ref())),
        _ => false,
    }
}

/// Runs `f` on a stack of its own, large enough for parsing and checking any statement and
/// for dropping one the check refuses. The stack is reserved address space; only the pages
/// a statement touches are used.
pub(super) fn on_large_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::grow(CHECK_STACK, f)
}

/// The error for a statement the check refuses.
pub(super) fn error(line: u64) -> crate::error::Error {
    crate::error::Error::Unsupported(format!(
        "the statement at line {line} has an expression nested more than {MAX_EXPRESSION_DEPTH} \
         levels deep (a chain of more than {MAX_EXPRESSION_DEPTH} terms joined by operators, or \
         calls and operators nested that deep), and strata plans at most \
         {MAX_EXPRESSION_DEPTH} levels. Shorten the expression: write a long OR of equalities \
         as x IN (…), a long sum as a sum over rows, or split it into steps in a CTE"
    ))
}
