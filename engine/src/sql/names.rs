//! Result columns named as written. DataFusion names an unnamed select item after its
//! planned expression (`SELECT 1` is headed `Int64(1)`, `sum(x)` is `sum(t.x)`); strata
//! names it after the SQL text, as DuckDB and PostgreSQL clients show it (`1`, `sum(x)`).
//!
//! Only the items of the statement's own result get a name: those of the outermost SELECT
//! (the first of a UNION, whose names the result takes). A bare column keeps its own name
//! (`t.a` is headed `a`), and a subquery's items keep DataFusion's names, which the query
//! around it may refer to.

use datafusion::sql::sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr};

/// Names the unnamed items of `query`'s result after their text.
pub(crate) fn name_as_written(query: &mut Query) {
    name_items(&mut query.body);
}

fn name_items(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for item in &mut select.projection {
                if let SelectItem::UnnamedExpr(expr) = item
                    && !matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
                {
                    let alias = Ident::with_quote('"', expr.to_string());
                    *item = SelectItem::ExprWithAlias {
                        expr: expr.clone(),
                        alias,
                    };
                }
            }
        }
        SetExpr::SetOperation { left, .. } => name_items(left),
        SetExpr::Query(query) => name_as_written(query),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::scratch_session;

    #[tokio::test]
    async fn result_columns_are_named_as_written() {
        let (_dir, session) = scratch_session().await;
        let names = |sql: &'static str| {
            let session = &session;
            async move {
                let batches = session.sql(sql).await.expect("query");
                batches[0]
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect::<Vec<_>>()
            }
        };
        // DuckDB: 1, (a + 1), sum(a), a, b, and "x" for the alias.
        assert_eq!(
            names("SELECT 1, a + 1, sum(a), t.a, b, 2 AS x FROM (VALUES (1, 2)) t(a, b) GROUP BY a, b ORDER BY sum(a)").await,
            ["1", "a + 1", "sum(a)", "a", "b", "x"]
        );
        // A UNION takes the first SELECT's names; a subquery's items keep their own.
        assert_eq!(names("SELECT 1 + 1 UNION ALL SELECT 3").await, ["1 + 1"]);
        assert_eq!(
            names("SELECT \"count(*)\" * 2 FROM (SELECT count(*) FROM (VALUES (1)) v(x))").await,
            ["\"count(*)\" * 2"]
        );
    }
}
