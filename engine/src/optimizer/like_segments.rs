//! `LIKE` patterns of several `%`-separated parts, matched by substring search.
//!
//! Arrow matches a `LIKE` pattern without a regular expression only in four shapes:
//! `'abc'`, `'abc%'`, `'%abc'` and `'%abc%'`. Any other pattern, such as
//! `comment NOT LIKE '%special%requests%'`, becomes a regular expression
//! (`special.*requests`) run on every row. A pattern whose only wildcard is `%` says: the
//! value starts with the first part, ends with the last, and holds the parts between in
//! order, each after the one before. [`LikeSegments`] tests exactly that: a prefix and a suffix
//! comparison, then one substring search per middle part (memchr's `memmem`, as Arrow uses
//! for `'%abc%'`), each starting where the last match ended. Taking the leftmost match of
//! each part is enough: any later match would leave less room for the parts after it.
//!
//! Bytes stand for characters here: in UTF-8 a character's bytes never occur inside another
//! character's, so a byte substring of valid text is a character substring. Patterns with
//! `_` (one character, not one byte) or `\` (an escape), case-insensitive `ILIKE`, patterns
//! that are not constants and values that are not strings are left to Arrow ([`faster`]).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{LikeExpr, Literal};
use memchr::memmem::Finder;

/// `expr [NOT] LIKE pattern` as a [`LikeSegments`] where Arrow would run the pattern as a
/// regular expression and substring search gives the same answers; `None` otherwise.
pub(crate) fn faster(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Option<Arc<dyn PhysicalExpr>> {
    let like = expr.downcast_ref::<LikeExpr>()?;
    if like.case_insensitive() {
        return None;
    }
    let literal = like.pattern().downcast_ref::<Literal>()?;
    let (ScalarValue::Utf8(Some(pattern))
    | ScalarValue::LargeUtf8(Some(pattern))
    | ScalarValue::Utf8View(Some(pattern))) = literal.value()
    else {
        return None;
    };
    if !matches!(
        like.expr().data_type(schema).ok()?,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        return None;
    }
    let segments = Segments::parse(pattern)?;
    Some(Arc::new(LikeSegments {
        negated: like.negated(),
        expr: Arc::clone(like.expr()),
        pattern: Arc::clone(like.pattern()),
        segments,
    }))
}

/// A pattern `prefix%middle₁%…%middleₙ%suffix` taken apart.
#[derive(Debug, Clone)]
struct Segments {
    prefix: Vec<u8>,
    middle: Vec<Finder<'static>>,
    suffix: Vec<u8>,
    /// The shortest value that can match: every part's length added up.
    min_len: usize,
}

impl Segments {
    /// The parts of `pattern`, or `None` where it has another wildcard or an escape, or is one
    /// of the shapes Arrow matches without a regular expression.
    fn parse(pattern: &str) -> Option<Self> {
        if pattern.contains(['_', '\\']) || arrow_matches_plainly(pattern) {
            return None;
        }
        let parts: Vec<&str> = pattern.split('%').collect();
        let (first, rest) = parts.split_first()?;
        let (last, inner) = rest.split_last()?;
        let middle: Vec<Finder<'static>> = inner
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| Finder::new(p.as_bytes()).into_owned())
            .collect();
        let min_len =
            first.len() + last.len() + middle.iter().map(|f| f.needle().len()).sum::<usize>();
        Some(Self {
            prefix: first.as_bytes().to_vec(),
            middle,
            suffix: last.as_bytes().to_vec(),
            min_len,
        })
    }

    fn matches(&self, value: &[u8]) -> bool {
        if value.len() < self.min_len
            || !same_bytes(&value[..self.prefix.len()], &self.prefix)
            || !same_bytes(&value[value.len() - self.suffix.len()..], &self.suffix)
        {
            return false;
        }
        // The middle parts must lie between the prefix and the suffix, which cannot overlap
        // (the length check above).
        let mut rest = &value[self.prefix.len()..value.len() - self.suffix.len()];
        for part in &self.middle {
            match part.find(rest) {
                Some(at) => rest = &rest[at + part.needle().len()..],
                None => return false,
            }
        }
        true
    }
}

/// `a == b` for slices of the same length, byte by byte, inlined: a call to `memcmp` per row
/// (what `==` and `starts_with` make of it) costs more than comparing parts this short, and
/// is made even for empty parts.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// Whether Arrow's `LIKE` matches `pattern` by equality, prefix, suffix or a single
/// substring (its `Predicate::like`), which needs no help.
fn arrow_matches_plainly(pattern: &str) -> bool {
    let has_wildcard = |s: &str| s.contains('%');
    !has_wildcard(pattern)
        || pattern.strip_suffix('%').is_some_and(|p| !has_wildcard(p))
        || pattern.strip_prefix('%').is_some_and(|p| !has_wildcard(p))
        || pattern
            .strip_prefix('%')
            .and_then(|p| p.strip_suffix('%'))
            .is_some_and(|p| !has_wildcard(p))
}

/// `expr [NOT] LIKE pattern` by substring search: see the module documentation.
#[derive(Debug)]
pub(crate) struct LikeSegments {
    negated: bool,
    expr: Arc<dyn PhysicalExpr>,
    /// The pattern's literal, for display and comparison.
    pattern: Arc<dyn PhysicalExpr>,
    segments: Segments,
}

impl PartialEq for LikeSegments {
    fn eq(&self, other: &Self) -> bool {
        self.negated == other.negated
            && *self.expr == *other.expr
            && *self.pattern == *other.pattern
    }
}

impl Eq for LikeSegments {}

impl Hash for LikeSegments {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.negated.hash(state);
        self.expr.hash(state);
        self.pattern.hash(state);
    }
}

impl LikeSegments {
    fn op_name(&self) -> &'static str {
        if self.negated { "NOT LIKE" } else { "LIKE" }
    }
}

impl fmt::Display for LikeSegments {
    // Shown as the expression it replaces, so plans read the same.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.expr, self.op_name(), self.pattern)
    }
}

impl PhysicalExpr for LikeSegments {
    fn data_type(&self, _schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, schema: &Schema) -> Result<bool> {
        self.expr.nullable(schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let test = |value: &str| self.segments.matches(value.as_bytes()) != self.negated;
        match self.expr.evaluate(batch)? {
            ColumnarValue::Array(values) => {
                // NULL in, NULL out: `from_unary` keeps the input's nulls.
                let out = match values.data_type() {
                    DataType::Utf8 => BooleanArray::from_unary(values.as_string::<i32>(), test),
                    DataType::LargeUtf8 => {
                        BooleanArray::from_unary(values.as_string::<i64>(), test)
                    }
                    DataType::Utf8View => BooleanArray::from_unary(values.as_string_view(), test),
                    other => return internal_err!("LIKE over {other} values"),
                };
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            ColumnarValue::Scalar(
                ScalarValue::Utf8(value)
                | ScalarValue::LargeUtf8(value)
                | ScalarValue::Utf8View(value),
            ) => Ok(ColumnarValue::Scalar(ScalarValue::Boolean(
                value.as_deref().map(test),
            ))),
            ColumnarValue::Scalar(other) => {
                internal_err!("LIKE over {} value", other.data_type())
            }
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.expr]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let [expr]: [Arc<dyn PhysicalExpr>; 1] = match children.try_into() {
            Ok(one) => one,
            Err(c) => return internal_err!("LIKE takes 1 child, got {}", c.len()),
        };
        Ok(Arc::new(Self {
            negated: self.negated,
            expr,
            pattern: Arc::clone(&self.pattern),
            segments: self.segments.clone(),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt_sql(f)?;
        write!(f, " {} ", self.op_name())?;
        self.pattern.fmt_sql(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, LargeStringArray, StringArray, StringViewArray};
    use arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{col, lit};

    /// Every pattern evaluated through Arrow's `LIKE` and through the rewrite, if it applies,
    /// over the same values; returns whether the rewrite applied.
    fn same_as_arrow(values: ArrayRef, pattern: &str, negated: bool) -> bool {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "s",
            values.data_type().clone(),
            true,
        )]));
        let data_type = values.data_type().clone();
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![values]).expect("batch");
        // The pattern of the column's own type, as DataFusion's coercion makes it.
        let pattern_value = match data_type {
            DataType::LargeUtf8 => ScalarValue::LargeUtf8(Some(pattern.to_string())),
            DataType::Utf8View => ScalarValue::Utf8View(Some(pattern.to_string())),
            _ => ScalarValue::Utf8(Some(pattern.to_string())),
        };
        let plain: Arc<dyn PhysicalExpr> = Arc::new(LikeExpr::new(
            negated,
            false,
            col("s", &schema).expect("s"),
            lit(pattern_value),
        ));
        let Some(fast) = faster(&plain, &schema) else {
            return false;
        };
        let eval = |e: &Arc<dyn PhysicalExpr>| {
            e.evaluate(&batch)
                .and_then(|v| v.into_array(batch.num_rows()))
                .expect("evaluate")
        };
        assert_eq!(
            eval(&fast).as_ref(),
            eval(&plain).as_ref(),
            "{pattern} (negated: {negated})"
        );
        assert_eq!(fast.to_string(), plain.to_string());
        true
    }

    const VALUES: [Option<&str>; 14] = [
        Some("carefully special packages requests"),
        Some("requests special"),
        Some("specialrequests"),
        Some("special"),
        Some(""),
        None,
        Some("abcabc"),
        Some("abc"),
        Some("ab"),
        Some("abxbc"),
        Some("añb€c"),
        Some("a%b"),
        Some("xaybzc"),
        Some("ababab"),
    ];

    #[test]
    fn answers_match_arrow_for_every_string_type() {
        let arrays: [ArrayRef; 3] = [
            Arc::new(StringArray::from(VALUES.to_vec())),
            Arc::new(LargeStringArray::from(VALUES.to_vec())),
            Arc::new(StringViewArray::from(VALUES.to_vec())),
        ];
        let taken_over = [
            "%special%requests%",
            "special%requests",
            "%special%requests",
            "special%requests%",
            "abc%abc",
            "abc%bc",
            "ab%bc",
            "a%b%c",
            "%a%b%c%",
            "%%a%%",
            "a%",
            "ab%ab%ab",
            "a%c",
        ];
        for values in &arrays {
            for pattern in taken_over {
                for negated in [false, true] {
                    // `a%` is one of Arrow's plain shapes; every other one is taken over.
                    assert_eq!(
                        same_as_arrow(Arc::clone(values), pattern, negated),
                        pattern != "a%",
                        "{pattern}"
                    );
                }
            }
        }
    }

    #[test]
    fn other_patterns_are_left_to_arrow() {
        let values: ArrayRef = Arc::new(StringArray::from(VALUES.to_vec()));
        for pattern in ["abc", "abc%", "%abc", "%abc%", "a_c%x%", "a\\%b%c", "%"] {
            assert!(
                !same_as_arrow(Arc::clone(&values), pattern, false),
                "{pattern}"
            );
        }
        // ILIKE stays Arrow's.
        let schema = Schema::new(vec![Field::new("s", DataType::Utf8, true)]);
        let ilike: Arc<dyn PhysicalExpr> = Arc::new(LikeExpr::new(
            false,
            true,
            col("s", &schema).expect("s"),
            lit("a%b%c"),
        ));
        assert!(faster(&ilike, &schema).is_none());
    }

    #[test]
    fn parts_are_found_in_order_without_overlap() {
        let s = Segments::parse("ab%ba").expect("parts");
        assert!(!s.matches(b"aba"), "prefix and suffix may not share a byte");
        assert!(s.matches(b"abba"));
        let s = Segments::parse("%ab%ab%").expect("parts");
        assert!(!s.matches(b"aab"));
        assert!(!s.matches(b"aba"));
        assert!(s.matches(b"abab"));
        assert!(s.matches(b"xxabyyabzz"));
    }
}
