//! Statements whose aggregates DataFusion names alike because of a cast.
//!
//! DataFusion names a cast after what it casts, so `sum(x)` and `sum(CAST(x AS INT))` are
//! both `sum(t.x)`, and a query holding both fails to plan ("Projections require unique
//! expression names", "Schema contains duplicate unqualified field name"), aliases or not:
//! the aggregate below the projection holds both under one name. DuckDB names the second
//! `sum(CAST(x AS INTEGER))` and answers. [`statement_to_plan`] plans a statement as it is
//! and, only when it fails so, once more with each cast inside a function's arguments named
//! after its type too (`CASE WHEN 'INT' IS NOT NULL THEN CAST(x AS INT) END`, which the
//! optimizer folds back to the cast) and each unaliased select item holding one named after
//! its SQL text, as DuckDB names it.

use std::ops::ControlFlow;

use datafusion::common::Result;
use datafusion::error::DataFusionError;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, Query, SelectItem, SetExpr, Value, Visit, VisitMut, Visitor, VisitorMut,
};

/// Plans `statement`; if two of its columns are named alike, plans it again with its casts
/// named after their types (see the module documentation).
pub(crate) async fn statement_to_plan(
    state: &SessionState,
    statement: DFStatement,
) -> Result<LogicalPlan> {
    let renamed = casts_in_functions(&statement).then(|| renamed(statement.clone()));
    match state.statement_to_plan(statement).await {
        Err(error) if named_alike(&error) => match renamed {
            Some(renamed) => state.statement_to_plan(renamed).await.map_err(|_| error),
            None => Err(error),
        },
        other => other,
    }
}

/// Whether `error` says two columns have one name.
fn named_alike(error: &DataFusionError) -> bool {
    let message = error.to_string();
    message.contains("Projections require unique expression names")
        || message.contains("Schema contains duplicate unqualified field name")
        || message.contains("Schema contains duplicate qualified field name")
}

/// Finds a cast inside a function's arguments.
#[derive(Default)]
struct Finder {
    functions: usize,
}

impl Visitor for Finder {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::Function(_) => self.functions += 1,
            Expr::Cast { .. } if self.functions > 0 => return ControlFlow::Break(()),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if matches!(expr, Expr::Function(_)) {
            self.functions -= 1;
        }
        ControlFlow::Continue(())
    }
}

fn holds_cast_in_function<V: Visit>(node: &V) -> bool {
    node.visit(&mut Finder::default()).is_break()
}

/// Whether the statement has a cast inside a function's arguments.
fn casts_in_functions(statement: &DFStatement) -> bool {
    match statement {
        DFStatement::Statement(s) => holds_cast_in_function(s.as_ref()),
        DFStatement::Explain(e) => casts_in_functions(&e.statement),
        DFStatement::CopyTo(c) => match &c.source {
            CopyToSource::Query(q) => holds_cast_in_function(q.as_ref()),
            CopyToSource::Relation(_) => false,
        },
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => false,
    }
}

/// Names casts inside functions' arguments after their types.
#[derive(Default)]
struct Renamer {
    functions: usize,
}

impl VisitorMut for Renamer {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        // Select items keep the names their text gives them, before their casts change.
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in &mut select.projection {
                if let SelectItem::UnnamedExpr(expr) = item
                    && holds_cast_in_function(expr)
                {
                    let alias = Ident::with_quote('"', expr.to_string());
                    *item = SelectItem::ExprWithAlias {
                        expr: expr.clone(),
                        alias,
                    };
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if matches!(expr, Expr::Function(_)) {
            self.functions += 1;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Function(_) => self.functions -= 1,
            Expr::Cast { data_type, .. } if self.functions > 0 => {
                let name = Expr::Value(Value::SingleQuotedString(data_type.to_string()).into());
                let cast = std::mem::replace(expr, Expr::Value(Value::Null.into()));
                *expr = Expr::Case {
                    case_token: AttachedToken::empty(),
                    end_token: AttachedToken::empty(),
                    operand: None,
                    conditions: vec![datafusion::sql::sqlparser::ast::CaseWhen {
                        condition: Expr::IsNotNull(Box::new(name)),
                        result: cast,
                    }],
                    else_result: None,
                };
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn rename<V: VisitMut>(node: &mut V) {
    let _ = node.visit(&mut Renamer::default());
}

/// The statement with its casts inside functions named after their types.
fn renamed(mut statement: DFStatement) -> DFStatement {
    match &mut statement {
        DFStatement::Statement(s) => rename(s.as_mut()),
        DFStatement::Explain(e) => {
            let inner = e.statement.as_ref().clone();
            *e.statement = renamed(inner);
        }
        DFStatement::CopyTo(c) => {
            if let CopyToSource::Query(q) = &mut c.source {
                rename(q.as_mut());
            }
        }
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => {}
    }
    statement
}
