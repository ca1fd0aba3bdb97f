//! How numeric literals are typed, as in DuckDB.
//!
//! - A literal with a decimal point, `556.18`, is the exact decimal it reads as
//!   (`Decimal128(5, 2)`), not the nearest binary float, so that `price = 556.18` finds the
//!   price and `price * 1.1` is exact. The session sets DataFusion's
//!   `datafusion.sql_parser.parse_float_as_decimal` for this.
//! - A literal in scientific notation, `1e3` or `2.5e-1`, is a DOUBLE ([`float_exponents`]):
//!   as a decimal its scale would be `-3`, and `1.5e300` would not fit at all.
//! - A division with a decimal literal on either side divides doubles
//!   ([`retype_literals`]), as DuckDB divides decimals: DataFusion's decimal quotient
//!   keeps four more digits than the dividend, which makes `1 / 3.0` 0.3333 and
//!   `2.0 / 3.0 * 3` 1.99998.
//! - A decimal literal next to a float (in a comparison, arithmetic, IN list or BETWEEN) is a
//!   double, as in DuckDB: DataFusion would turn the float into a decimal of the literal's
//!   scale, cutting its digits, so that `float_col = 556.18` found nothing.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

/// Number tokens in scientific notation as `CAST('<number>' AS DOUBLE)`, spanning the number.
pub(super) fn float_exponents(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    if !tokens
        .iter()
        .any(|t| matches!(&t.token, Token::Number(n, _) if is_exponent(n)))
    {
        return tokens;
    }
    let mut out = Vec::with_capacity(tokens.len() + 5);
    for token in tokens {
        match &token.token {
            Token::Number(n, _) if is_exponent(n) => {
                let span = token.span;
                let spanned = |token: Token| TokenWithSpan { token, span };
                out.push(spanned(Token::make_keyword("CAST")));
                out.push(spanned(Token::LParen));
                out.push(spanned(Token::SingleQuotedString(n.clone())));
                out.push(spanned(Token::make_keyword("AS")));
                out.push(spanned(Token::make_keyword("DOUBLE")));
                out.push(spanned(Token::RParen));
            }
            _ => out.push(token),
        }
    }
    out
}

fn is_exponent(number: &str) -> bool {
    !number.starts_with("0x") && !number.starts_with("0X") && number.contains(['e', 'E'])
}

/// Divisions with a decimal literal on either side, and decimal literals next to floats, as
/// doubles, in a plan as SQL planning made it (before DataFusion's analyzer coerces types).
/// Output names stay as they were; the schemas above a changed expression are recomputed, so
/// that the plan reports the types it computes.
pub(crate) fn retype_literals(plan: LogicalPlan) -> Result<LogicalPlan> {
    let mut any = false;
    plan.apply_with_subqueries(|node| {
        let schema = merge_schema(&node.inputs());
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                any |= retyped(e.clone(), &schema)?.transformed;
                Ok(if any {
                    TreeNodeRecursion::Stop
                } else {
                    TreeNodeRecursion::Continue
                })
            })
        })
    })?;
    if !any {
        return Ok(plan);
    }
    plan.transform_up_with_subqueries(|plan| {
        // An input may have changed its types.
        let plan = plan.recompute_schema()?;
        let names = NamePreserver::new(&plan);
        let schema = merge_schema(&plan.inputs());
        let new = plan.map_expressions(|expr| {
            let saved = names.save(&expr);
            let new = expr.transform_up(|e| retyped(e, &schema))?;
            Ok(if new.transformed {
                Transformed::yes(saved.restore(new.data))
            } else {
                new
            })
        })?;
        if new.transformed {
            Ok(Transformed::yes(new.data.recompute_schema()?))
        } else {
            Ok(Transformed::yes(new.data))
        }
    })
    .map(|t| t.data)
}

/// One expression with its decimal literals as doubles where they divide or meet a float.
fn retyped(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let is_float = |e: &Expr| {
        e.get_type(schema)
            .is_ok_and(|t| matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64))
    };
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if (is_decimal_literal(&left) || is_decimal_literal(&right))
                && (op == Operator::Divide || is_float(&left) || is_float(&right)) =>
        {
            Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                left: Box::new(as_double(*left)),
                op,
                right: Box::new(as_double(*right)),
            })))
        }
        Expr::InList(mut in_list)
            if is_float(&in_list.expr) && in_list.list.iter().any(is_decimal_literal) =>
        {
            in_list.list = in_list.list.into_iter().map(as_double).collect();
            Ok(Transformed::yes(Expr::InList(in_list)))
        }
        Expr::Between(mut between)
            if is_float(&between.expr)
                && (is_decimal_literal(&between.low) || is_decimal_literal(&between.high)) =>
        {
            between.low = Box::new(as_double(*between.low));
            between.high = Box::new(as_double(*between.high));
            Ok(Transformed::yes(Expr::Between(between)))
        }
        e => Ok(Transformed::no(e)),
    }
}

fn is_decimal_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Literal(ScalarValue::Decimal128(Some(_), _, _), _) => true,
        Expr::Negative(inner) => is_decimal_literal(inner),
        _ => false,
    }
}

/// A decimal literal as the double nearest it; any other expression as it is.
fn as_double(expr: Expr) -> Expr {
    match expr {
        Expr::Literal(value @ ScalarValue::Decimal128(Some(_), _, _), metadata) => {
            match value.to_string().parse::<f64>() {
                Ok(v) => Expr::Literal(ScalarValue::Float64(Some(v)), metadata),
                Err(_) => Expr::Cast(datafusion::logical_expr::Cast::new(
                    Box::new(Expr::Literal(value, metadata)),
                    DataType::Float64,
                )),
            }
        }
        Expr::Negative(inner) if is_decimal_literal(&inner) => {
            Expr::Negative(Box::new(as_double(*inner)))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{pretty, scratch_session};

    async fn one(session: &crate::Session, query: &str) -> String {
        pretty(&session.sql(query).await.expect("query"))
    }

    #[tokio::test]
    async fn literals_are_typed_as_duckdb_types_them() {
        let (_dir, session) = scratch_session().await;
        let types = one(
            &session,
            "SELECT arrow_typeof(556.18) AS d, arrow_typeof(1e3) AS e, arrow_typeof(1 / 3.0) AS q, arrow_typeof(CAST(1 AS DOUBLE) * 0.5) AS f, arrow_typeof(CAST(1 AS DECIMAL(15, 2)) * 1.1) AS m",
        )
        .await;
        assert!(
            types
                .contains("| Decimal128(5, 2) | Float64 | Float64 | Float64 | Decimal128(18, 3) |"),
            "{types}"
        );
        let values = one(
            &session,
            "SELECT 2.0 / 3.0 * 3 AS a, -1.5e300 AS b, 0.1 + 0.2 = 0.3 AS c",
        )
        .await;
        assert!(values.contains("| 2.0 | -1.5e300 | true |"), "{values}");
        session
            .sql("CREATE TABLE processed.c STORED AS PARQUET AS SELECT CAST(CAST(value AS DECIMAL(15, 2)) / 100 AS DECIMAL(15, 2)) AS cost, CAST(value AS DOUBLE) / 100 AS f FROM generate_series(55600, 55700)")
            .await
            .expect("table");
        let found = one(
            &session,
            "SELECT count(*) FILTER (WHERE cost = 556.18) AS a, count(*) FILTER (WHERE f = 556.18) AS b, count(*) FILTER (WHERE f IN (556.18, 556.19)) AS c, count(*) FILTER (WHERE f BETWEEN 556.18 AND 556.2) AS d FROM processed.c",
        )
        .await;
        assert!(found.contains("| 1 | 1 | 2 | 3 |"), "{found}");
    }
}
