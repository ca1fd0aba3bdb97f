//! How numeric literals are typed, as in DuckDB.
//!
//! - A literal with a decimal point, `556.18`, is the exact decimal it reads as
//!   (`Decimal128(5, 2)`), not the nearest binary float, so that `price = 556.18` finds the
//!   price and `price * 1.1` is exact. The session sets DataFusion's
//!   `datafusion.sql_parser.parse_float_as_decimal` for this.
//! - A literal in scientific notation, `1e3` or `2.5e-1`, is a DOUBLE ([`float_exponents`]):
//!   as a decimal its scale would be `-3`, and `1.5e300` would not fit at all.
//! - A division with a decimal literal on either side divides doubles
//!   ([`FloatDivisionByLiterals`]), as DuckDB divides decimals: DataFusion's decimal quotient
//!   keeps four more digits than the dividend, which makes `1 / 3.0` 0.3333 and
//!   `2.0 / 3.0 * 3` 1.99998.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;
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

/// Divisions with a decimal literal on either side, as divisions of doubles. An analyzer rule
/// that runs before DataFusion's type coercion, so that the types follow.
#[derive(Debug, Default)]
pub(crate) struct FloatDivisionByLiterals;

impl AnalyzerRule for FloatDivisionByLiterals {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let saved = names.save(&expr);
                let new = expr.transform_up(|e| match e {
                    Expr::BinaryExpr(BinaryExpr {
                        left,
                        op: Operator::Divide,
                        right,
                    }) if is_decimal_literal(&left) || is_decimal_literal(&right) => {
                        Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                            left: Box::new(as_double(*left)),
                            op: Operator::Divide,
                            right: Box::new(as_double(*right)),
                        })))
                    }
                    e => Ok(Transformed::no(e)),
                })?;
                Ok(if new.transformed {
                    Transformed::yes(saved.restore(new.data))
                } else {
                    new
                })
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "float_division_by_literals"
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
