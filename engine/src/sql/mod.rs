//! strata's SQL: the one parser of its statements.
//!
//! [`parse`] reads text into [`Parsed`] statements, each a [`Statement`] and the text it came
//! from. It is DataFusion's [`DFParser`] (which itself extends sqlparser with `CREATE
//! EXTERNAL TABLE`, `COPY` and `EXPLAIN`) extended once more, the same way: by peeking at the
//! leading keywords of each statement, parsing strata's own statements with the inner
//! sqlparser `Parser`, and handing everything else to `DFParser`. The CLI, the Flight SQL
//! server, pipelines, completion and help all take their statements from here; no other
//! module tokenizes SQL.
//!
//! Time travel (`t VERSION AS OF 3`, `t TIMESTAMP AS OF '2026-01-01'`) is part of the table
//! reference: the tokens of the clause are folded into the table's name (`"t@v3"`), which
//! the zone schemas resolve to the table at that version (see `providers::delta::AsOf`).
//!
//! Numeric literals are typed as DuckDB types them (see [`literals`]): `556.18` is an exact
//! decimal, `1e3` a double.

pub(crate) mod cast_names;
mod depth;
mod help;
mod literals;
mod names;
mod placeholders;
pub mod split;
mod statement;

use datafusion::sql::parser::{DFParser, DFParserBuilder};
use datafusion::sql::sqlparser::ast::{DataType, Expr, Ident, ObjectName, ObjectNamePart, Query};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{
    Location, Span, Token, TokenWithSpan, Tokenizer, Word,
};

pub use depth::MAX_EXPRESSION_DEPTH;
pub use help::{KEYWORDS, STRATA_STATEMENTS};
pub(crate) use literals::retype_literals;
pub use placeholders::Placeholders;
pub(crate) use statement::effect_of as effect_of_datafusion;
pub use statement::{
    AsOfClause, Check, CreateTableAs, Effect, Optimize, Restore, Statement, Vacuum,
};

use crate::error::{Error, Result};

/// One statement as parsed, with the text it was parsed from.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub statement: Statement,
    /// The statement's own text, without the `;` that ends it. Lineage and Delta commits
    /// record it as the SQL that made a table.
    pub text: String,
    /// The line of the parsed text the statement starts on (1-based).
    pub line: u64,
}

/// Parses every statement of `text` (separated by `;`). A statement whose expressions nest
/// deeper than [`MAX_EXPRESSION_DEPTH`] is an error.
pub fn parse(text: &str) -> Result<Vec<Parsed>> {
    depth::on_large_stack(|| parse_all(text))
}

fn parse_all(text: &str) -> Result<Vec<Parsed>> {
    let mut parser = StrataParser::new(text)?;
    let mut parsed = vec![];
    let mut expecting_delimiter = false;
    loop {
        while parser.df.parser.consume_token(&Token::SemiColon) {
            expecting_delimiter = false;
        }
        let next = parser.df.parser.peek_token();
        if next.token == Token::EOF {
            break;
        }
        if expecting_delimiter {
            return Err(syntax(
                parser
                    .df
                    .parser
                    .expected::<()>("end of statement", next)
                    .expect_err("an error"),
            ));
        }
        let start = next.span.start;
        let statement = parser
            .parse_statement()
            .map_err(|e| located(syntax(e), text))?;
        if depth::exceeds_limit(&statement) {
            return Err(depth::error(start.line));
        }
        let end = parser.df.parser.get_current_token().span.end;
        parsed.push(Parsed {
            statement,
            text: parser.source(start, end),
            line: start.line,
        });
        expecting_delimiter = true;
    }
    Ok(parsed)
}

/// Parses text that holds exactly one statement.
pub fn parse_one(text: &str) -> Result<Parsed> {
    let mut all = parse(text)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        0 => Err(Error::Syntax {
            message: "the statement is empty".into(),
            line: None,
            column: None,
        }),
        n => Err(Error::Unsupported(format!(
            "one statement expected, but the text holds {n}; send them one by one"
        ))),
    }
}

/// The zone and table parts of a name as SQL identifiers: unquoted parts lower-cased, quoted
/// ones as written.
pub fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => normalize(ident),
            other => other.to_string(),
        })
        .collect()
}

/// An identifier as SQL resolves it: unquoted lower-cased, quoted as written.
pub fn normalize(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    }
}

/// A name as a DataFusion table reference.
pub fn table_reference(name: &ObjectName) -> datafusion::common::TableReference {
    use datafusion::common::TableReference;
    let mut parts = name_parts(name);
    match parts.len() {
        3 => {
            let table = parts.pop().unwrap_or_default();
            let schema = parts.pop().unwrap_or_default();
            let catalog = parts.pop().unwrap_or_default();
            TableReference::full(catalog, schema, table)
        }
        2 => {
            let table = parts.pop().unwrap_or_default();
            let schema = parts.pop().unwrap_or_default();
            TableReference::partial(schema, table)
        }
        _ => TableReference::bare(parts.join(".")),
    }
}

fn tokenize(text: &str) -> Result<Vec<TokenWithSpan>> {
    let tokens = Tokenizer::new(&GenericDialect {}, text)
        .tokenize_with_location()
        .map_err(|e| syntax(ParserError::TokenizerError(e.to_string())))?;
    Ok(fold_time_travel(literals::float_exponents(tokens)))
}

/// A parser error as strata's syntax error, with the line and column it names.
fn syntax(e: ParserError) -> Error {
    let message = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => {
            "the statement nests too deeply (more than 50 levels)".into()
        }
    };
    let (line, column) = location_in(&message);
    Error::Syntax {
        message,
        line,
        column,
    }
}

/// A syntax error sqlparser found at the end of the text carries no place: it is after the
/// last character.
fn located(e: Error, text: &str) -> Error {
    match e {
        Error::Syntax {
            message,
            line: None,
            ..
        } => {
            let line = text.lines().count().max(1);
            let column = text.lines().last().map_or(0, |l| l.chars().count()) + 1;
            Error::Syntax {
                message: format!(
                    "{message} at the end of the statement (Line: {line}, Column: {column})"
                ),
                line: Some(line),
                column: Some(column),
            }
        }
        other => other,
    }
}

/// The `Line: L, Column: C` sqlparser writes into its messages.
fn location_in(message: &str) -> (Option<usize>, Option<usize>) {
    let Some(at) = message.rfind("Line: ") else {
        return (None, None);
    };
    let rest = &message[at + "Line: ".len()..];
    let number = |s: &str| -> Option<usize> {
        s.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    };
    let line = number(rest);
    let column = rest
        .find("Column: ")
        .and_then(|c| number(&rest[c + "Column: ".len()..]));
    (line, column)
}

/// Byte offsets of line starts, to cut a statement's text out by the spans of its tokens.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self(starts)
    }

    /// The byte offset of a location (line and column count from 1; columns in characters).
    fn offset(&self, text: &str, at: Location) -> usize {
        let Some(&start) = (at.line as usize)
            .checked_sub(1)
            .and_then(|l| self.0.get(l))
        else {
            return text.len();
        };
        let column = (at.column as usize).saturating_sub(1);
        text[start..]
            .char_indices()
            .nth(column)
            .map_or(text.len(), |(i, _)| start + i)
    }

    fn slice<'a>(&self, text: &'a str, start: Location, end: Location) -> &'a str {
        let from = self.offset(text, start);
        let to = self.offset(text, end).max(from);
        &text[from..to]
    }
}

/// Folds `VERSION AS OF n` and `TIMESTAMP AS OF 'ts'` after a table name into the name
/// (`"t@vn"`, `"t@tts"`). `RESTORE TABLE t TO VERSION AS OF n` keeps its clause: it follows
/// `TO`, not a name.
fn fold_time_travel(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if let Some((suffix, consumed, end)) = match_as_of(&tokens[i..])
            && let Some(j) = out
                .iter()
                .rposition(|t| !matches!(t.token, Token::Whitespace(_)))
            && let Token::Word(w) = &out[j].token
            && !(w.quote_style.is_none() && w.keyword == Keyword::TO)
        {
            let base = if w.quote_style.is_some() {
                w.value.clone()
            } else {
                w.value.to_ascii_lowercase()
            };
            let span = Span::new(out[j].span.start, end);
            out[j] = TokenWithSpan::new(
                Token::Word(Word {
                    value: format!("{base}@{suffix}"),
                    quote_style: Some('"'),
                    keyword: Keyword::NoKeyword,
                }),
                span,
            );
            out.truncate(j + 1);
            i += consumed;
            continue;
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// Matches `VERSION AS OF <number>` or `TIMESTAMP AS OF '<text>'` at the start of `tokens`
/// (after optional whitespace): the name suffix, the tokens consumed and where they end.
fn match_as_of(tokens: &[TokenWithSpan]) -> Option<(String, usize, Location)> {
    let mut i = 0;
    let mut next = || -> Option<&TokenWithSpan> {
        while matches!(tokens.get(i).map(|t| &t.token), Some(Token::Whitespace(_))) {
            i += 1;
        }
        let t = tokens.get(i);
        i += 1;
        t
    };
    let unquoted = |t: &Token, word: &str| matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word));
    let kind = match next()? {
        t if unquoted(&t.token, "version") => 'v',
        t if unquoted(&t.token, "timestamp") => 't',
        _ => return None,
    };
    if !unquoted(&next()?.token, "as") || !unquoted(&next()?.token, "of") {
        return None;
    }
    let last = next()?;
    let value = match (kind, &last.token) {
        ('v', Token::Number(n, _)) => n.clone(),
        ('t', Token::SingleQuotedString(s)) => s.clone(),
        _ => return None,
    };
    Some((format!("{kind}{value}"), i, last.span.end))
}

const CHECK_USAGE: &str = "a quoted name and EXPECT: write a check as CHECK 'name' EXPECT (SELECT …) = value, or CHECK 'name' EXPECT condition";

/// DataFusion's parser with strata's statements on top.
struct StrataParser<'a> {
    df: DFParser<'static>,
    text: &'a str,
    lines: LineStarts,
}

impl<'a> StrataParser<'a> {
    fn new(text: &'a str) -> Result<Self> {
        let df = DFParserBuilder::new(tokenize(text)?)
            .build()
            .map_err(crate::error::Error::DataFusion)?;
        Ok(Self {
            df,
            text,
            lines: LineStarts::new(text),
        })
    }

    /// The source text between two locations, trimmed.
    fn source(&self, start: Location, end: Location) -> String {
        self.lines.slice(self.text, start, end).trim().to_string()
    }

    /// The upper-cased word `n` tokens ahead, if it is an unquoted word.
    fn word_at(&self, n: usize) -> Option<String> {
        match self.df.parser.peek_nth_token(n).token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }

    fn words_ahead(&self, words: &[&str]) -> bool {
        words
            .iter()
            .enumerate()
            .all(|(n, w)| self.word_at(n).as_deref() == Some(*w))
    }

    /// Consumes the words if they come next.
    fn parse_words(&mut self, words: &[&str]) -> bool {
        if !self.words_ahead(words) {
            return false;
        }
        for _ in words {
            self.df.parser.next_token();
        }
        true
    }

    fn expect_words(&mut self, words: &[&str]) -> Result<(), ParserError> {
        if self.parse_words(words) {
            Ok(())
        } else {
            self.df
                .parser
                .expected(&words.join(" "), self.df.parser.peek_token())
        }
    }

    fn parse_statement(&mut self) -> Result<Statement, ParserError> {
        let first = self.word_at(0).unwrap_or_default();
        match first.as_str() {
            "CREATE"
                if self.words_ahead(&["CREATE", "TABLE"])
                    || self.words_ahead(&["CREATE", "OR", "REPLACE", "TABLE"])
                    || self.words_ahead(&["CREATE", "MATERIALIZED", "VIEW"])
                    || self.words_ahead(&["CREATE", "OR", "REPLACE", "MATERIALIZED", "VIEW"]) =>
            {
                self.parse_create_table_as().map(Statement::CreateTableAs)
            }
            "SHOW" if self.words_ahead(&["SHOW", "ZONES"]) => {
                self.parse_words(&["SHOW", "ZONES"]);
                Ok(Statement::ShowZones)
            }
            "SHOW" if self.words_ahead(&["SHOW", "LINEAGE"]) => {
                self.parse_words(&["SHOW", "LINEAGE"]);
                Ok(Statement::ShowLineage(self.table_name()?))
            }
            "USE" => {
                self.df.parser.next_token();
                let _ = self.parse_words(&["ZONE"]);
                Ok(Statement::Use(self.df.parser.parse_identifier()?))
            }
            "REFRESH" => {
                self.df.parser.next_token();
                if self.parse_words(&["ZONE"]) {
                    Ok(Statement::RefreshZone(self.df.parser.parse_identifier()?))
                } else if self.parse_words(&["TABLE"]) {
                    Ok(Statement::RefreshTable(self.table_name()?))
                } else if self.parse_words(&["MATERIALIZED", "VIEW"]) {
                    Ok(Statement::RefreshMaterializedView(self.table_name()?))
                } else {
                    self.df.parser.expected(
                        "ZONE, TABLE or MATERIALIZED VIEW after REFRESH",
                        self.df.parser.peek_token(),
                    )
                }
            }
            "RELEASE" if self.words_ahead(&["RELEASE", "HOLD"]) => {
                self.parse_words(&["RELEASE", "HOLD"]);
                let _ = self.parse_words(&["ON"]);
                Ok(Statement::ReleaseHold(self.table_name()?))
            }
            "DROP" if self.words_ahead(&["DROP", "MATERIALIZED", "VIEW"]) => {
                self.parse_words(&["DROP", "MATERIALIZED", "VIEW"]);
                let if_exists = self.parse_words(&["IF", "EXISTS"]);
                Ok(Statement::DropMaterializedView {
                    name: self.table_name()?,
                    if_exists,
                })
            }
            "DESCRIBE" | "DESC"
                if self.word_at(1).as_deref() == Some("HISTORY")
                    && matches!(self.df.parser.peek_nth_token(2).token, Token::Word(_)) =>
            {
                self.df.parser.next_token();
                self.df.parser.next_token();
                Ok(Statement::DescribeHistory(self.table_name()?))
            }
            "SUMMARIZE" => {
                self.df.parser.next_token();
                self.parse_summarized().map(Statement::Summarize)
            }
            "CHECK" => self.parse_check().map(Statement::Check),
            "OPTIMIZE" => self.parse_optimize().map(Statement::Optimize),
            "VACUUM" => self.parse_vacuum().map(Statement::Vacuum),
            "RESTORE" => self.parse_restore().map(Statement::Restore),
            _ => {
                let mut statement = self.df.parse_statement().map_err(|e| match e {
                    datafusion::error::DataFusionError::SQL(e, _) => *e,
                    other => ParserError::ParserError(other.to_string()),
                })?;
                if let datafusion::sql::parser::Statement::Statement(s) = &mut statement
                    && let datafusion::sql::sqlparser::ast::Statement::Query(query) = s.as_mut()
                {
                    names::name_as_written(query);
                }
                Ok(Statement::from_datafusion(statement))
            }
        }
    }

    /// What SUMMARIZE summarizes: a query, or a table (a name, a quoted path or a `read_*`
    /// call) as `SELECT * FROM` it.
    fn parse_summarized(&mut self) -> Result<Box<Query>, ParserError> {
        let query_ahead = matches!(
            self.word_at(0).as_deref(),
            Some("SELECT" | "WITH" | "VALUES")
        ) || self.df.parser.peek_token().token == Token::LParen;
        let mut query = if query_ahead {
            self.df.parser.parse_query()?
        } else {
            let table = self.df.parser.parse_table_factor()?;
            let mut query = datafusion::sql::sqlparser::parser::Parser::new(&GenericDialect {})
                .try_with_sql("SELECT * FROM t")?
                .parse_query()?;
            if let datafusion::sql::sqlparser::ast::SetExpr::Select(select) = query.body.as_mut()
                && let Some(from) = select.from.first_mut()
            {
                from.relation = table;
            }
            query
        };
        names::name_as_written(&mut query);
        Ok(query)
    }

    /// `a, "B", c` as SQL resolves the names.
    fn identifiers(&mut self) -> Result<Vec<String>, ParserError> {
        Ok(self
            .df
            .parser
            .parse_comma_separated(|p| p.parse_identifier())?
            .iter()
            .map(normalize)
            .collect())
    }

    /// A table name, possibly qualified by zone (and catalog).
    fn table_name(&mut self) -> Result<ObjectName, ParserError> {
        self.df.parser.parse_object_name(true)
    }

    /// `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] name [(col type, …)] [STORED AS f]
    /// [PARTITIONED BY (cols)] [AS query]`, and `CREATE [OR REPLACE] MATERIALIZED VIEW name
    /// [PARTITIONED BY (cols)] AS query`.
    fn parse_create_table_as(&mut self) -> Result<CreateTableAs, ParserError> {
        self.expect_words(&["CREATE"])?;
        let or_replace = self.parse_words(&["OR", "REPLACE"]);
        let materialized = self.parse_words(&["MATERIALIZED", "VIEW"]);
        if !materialized {
            self.expect_words(&["TABLE"])?;
        }
        let if_not_exists = self.parse_words(&["IF", "NOT", "EXISTS"]);
        let name = self.table_name()?;
        let mut columns = vec![];
        if !materialized && self.df.parser.consume_token(&Token::LParen) {
            columns = self.df.parser.parse_comma_separated(|p| {
                let name = p.parse_identifier()?;
                let data_type = p.parse_data_type()?;
                Ok((name, data_type))
            })?;
            self.df.parser.expect_token(&Token::RParen)?;
        }
        let mut format = None;
        let mut partition_by = vec![];
        loop {
            if self.parse_words(&["STORED", "AS"]) {
                format = Some(
                    self.df
                        .parser
                        .parse_identifier()?
                        .value
                        .to_ascii_uppercase(),
                );
            } else if self.parse_words(&["PARTITIONED", "BY"]) {
                self.df.parser.expect_token(&Token::LParen)?;
                partition_by = self.identifiers()?;
                self.df.parser.expect_token(&Token::RParen)?;
            } else {
                break;
            }
        }
        let query = if columns.is_empty() {
            if !self.df.parser.parse_keyword(Keyword::AS) {
                let what = if materialized {
                    "AS query"
                } else {
                    "AS query, or (column type, …)"
                };
                return self.df.parser.expected(what, self.df.parser.peek_token());
            }
            self.df.parser.parse_query()?
        } else {
            empty_query(&columns)?
        };
        Ok(CreateTableAs {
            or_replace,
            if_not_exists,
            name,
            format,
            partition_by,
            query,
            materialized,
        })
    }

    /// `CHECK 'name' EXPECT expression`, where the expression may start with the
    /// parenthesized query whose value is checked (`EXPECT (SELECT count(*) …) = 0`).
    fn parse_check(&mut self) -> Result<Check, ParserError> {
        self.expect_words(&["CHECK"])?;
        let name = match self.df.parser.next_token().token {
            Token::SingleQuotedString(s) => s,
            _ => {
                self.df.parser.prev_token();
                return self
                    .df
                    .parser
                    .expected(CHECK_USAGE, self.df.parser.peek_token());
            }
        };
        if !self.parse_words(&["EXPECT"]) {
            return self
                .df
                .parser
                .expected(CHECK_USAGE, self.df.parser.peek_token());
        }
        let start = self.df.parser.peek_token().span.start;
        if self.df.parser.peek_token().token == Token::LParen
            && matches!(self.word_at(1).as_deref(), Some("SELECT" | "WITH"))
        {
            self.df.parser.next_token();
            let query = self.df.parser.parse_query()?;
            let close = self.df.parser.expect_token(&Token::RParen)?.span.end;
            // What follows the query is the expectation on its value.
            let mut expr = Expr::Subquery(query.clone());
            let mut rest = false;
            loop {
                let precedence = self.df.parser.get_next_precedence()?;
                if precedence == 0 {
                    break;
                }
                expr = self.df.parser.parse_infix(expr, precedence)?;
                rest = true;
            }
            let end = self.df.parser.get_current_token().span.end;
            return Ok(if rest {
                Check {
                    name,
                    subject: Some(query),
                    expectation: self.source(close, end),
                }
            } else {
                Check {
                    name,
                    subject: None,
                    expectation: self.source(start, end),
                }
            });
        }
        self.df.parser.parse_expr()?;
        let end = self.df.parser.get_current_token().span.end;
        Ok(Check {
            name,
            subject: None,
            expectation: self.source(start, end),
        })
    }

    /// `OPTIMIZE t [WHERE partition = value [AND …]] [ZORDER BY (col, …)]`.
    fn parse_optimize(&mut self) -> Result<Optimize, ParserError> {
        self.expect_words(&["OPTIMIZE"])?;
        let table = self.table_name()?;
        let mut filters = vec![];
        if self.df.parser.parse_keyword(Keyword::WHERE) {
            loop {
                let column = normalize(&self.df.parser.parse_identifier()?);
                self.df.parser.expect_token(&Token::Eq)?;
                let value = match self.df.parser.next_token().token {
                    Token::Number(n, _) => n,
                    Token::SingleQuotedString(s) => s,
                    _ => {
                        self.df.parser.prev_token();
                        return self
                            .df
                            .parser
                            .expected("a number or a quoted value", self.df.parser.peek_token());
                    }
                };
                filters.push((column, value));
                if !self.df.parser.parse_keyword(Keyword::AND) {
                    break;
                }
            }
        }
        let mut zorder = vec![];
        if self.parse_words(&["ZORDER", "BY"]) {
            let parens = self.df.parser.consume_token(&Token::LParen);
            zorder = self.identifiers()?;
            if parens {
                self.df.parser.expect_token(&Token::RParen)?;
            }
        }
        Ok(Optimize {
            table,
            filters,
            zorder,
        })
    }

    /// `VACUUM t [RETAIN n HOURS] [DRY RUN] [FORCE]`.
    fn parse_vacuum(&mut self) -> Result<Vacuum, ParserError> {
        self.expect_words(&["VACUUM"])?;
        let table = self.table_name()?;
        let mut vacuum = Vacuum {
            table,
            retain_hours: None,
            dry_run: false,
            force: false,
        };
        loop {
            if self.parse_words(&["RETAIN"]) {
                let hours = self.df.parser.parse_literal_uint()?;
                vacuum.retain_hours = Some(i64::try_from(hours).map_err(|_| {
                    ParserError::ParserError(format!("RETAIN {hours} HOURS is too long"))
                })?);
                self.expect_words(&["HOURS"])?;
            } else if self.parse_words(&["DRY", "RUN"]) {
                vacuum.dry_run = true;
            } else if self.parse_words(&["FORCE"]) {
                vacuum.force = true;
            } else {
                return Ok(vacuum);
            }
        }
    }

    /// `RESTORE TABLE t TO VERSION AS OF n | TO TIMESTAMP AS OF 'timestamp'`.
    fn parse_restore(&mut self) -> Result<Restore, ParserError> {
        self.expect_words(&["RESTORE", "TABLE"])?;
        let table = self.table_name()?;
        self.expect_words(&["TO"])?;
        let to = if self.parse_words(&["VERSION", "AS", "OF"]) {
            AsOfClause::Version(self.df.parser.parse_literal_uint()?)
        } else if self.parse_words(&["TIMESTAMP", "AS", "OF"]) {
            AsOfClause::Timestamp(self.df.parser.parse_literal_string()?)
        } else {
            return self.df.parser.expected(
                "VERSION AS OF n or TIMESTAMP AS OF 'timestamp'",
                self.df.parser.peek_token(),
            );
        };
        Ok(Restore { table, to })
    }
}

/// `SELECT CAST(NULL AS type) AS "col", … WHERE false`: the empty query whose result has the
/// declared columns.
fn empty_query(columns: &[(Ident, DataType)]) -> Result<Box<Query>, ParserError> {
    let casts: Vec<String> = columns
        .iter()
        .map(|(name, t)| {
            format!(
                "CAST(NULL AS {t}) AS \"{}\"",
                normalize(name).replace('"', "\"\"")
            )
        })
        .collect();
    let text = format!("SELECT {} WHERE false", casts.join(", "));
    let mut parser = DFParserBuilder::new(text.as_str())
        .build()
        .map_err(|e| ParserError::ParserError(e.to_string()))?;
    parser.parser.parse_query()
}

#[cfg(test)]
mod tests;
