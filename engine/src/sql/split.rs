//! Splitting SQL text into statements at `;`, minding quotes and comments, and remembering
//! the line each statement starts on so errors can point into a script.

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementText {
    /// The statement, without its `;`.
    pub sql: String,
    /// 1-based line of the script where the statement starts.
    pub line: usize,
}

/// Splits SQL text into statements. Empty statements (and comment-only ones) are left out.
pub fn split_statements(text: &str) -> Vec<StatementText> {
    let mut out = vec![];
    let mut current = String::new();
    let mut start_line = 1;
    let mut line = 1;
    let mut chars = text.chars().peekable();
    let mut meaningful = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                meaningful = true;
                current.push(c);
                while let Some(d) = chars.next() {
                    current.push(d);
                    if d == '\n' {
                        line += 1;
                    }
                    if d == c {
                        if chars.peek() == Some(&c) {
                            current.push(c);
                            chars.next();
                            continue;
                        }
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        line += 1;
                        current.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if d == '\n' {
                        line += 1;
                        current.push('\n');
                    }
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
                current.push(' ');
            }
            ';' => {
                if meaningful {
                    out.push(StatementText {
                        sql: current.trim().to_string(),
                        line: start_line,
                    });
                }
                current.clear();
                meaningful = false;
                start_line = line;
            }
            '\n' => {
                line += 1;
                current.push(c);
                if !meaningful {
                    start_line = line;
                }
            }
            c => {
                if !c.is_whitespace() {
                    if !meaningful {
                        start_line = line;
                    }
                    meaningful = true;
                }
                current.push(c);
            }
        }
    }
    if meaningful {
        out.push(StatementText {
            sql: current.trim().to_string(),
            line: start_line,
        });
    }
    out
}

/// Whether the text ends a statement (its last meaningful character is a `;` outside quotes
/// and comments): the REPL keeps reading lines until it does.
pub fn is_complete(text: &str) -> bool {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return true;
    }
    if trimmed.starts_with('\\') {
        return true;
    }
    // Append a marker: it stands as a statement of its own only if everything before it
    // was closed by a `;` (an open quote or comment would swallow it).
    let probe = format!("{text}\nstrata_end_marker");
    split_statements(&probe)
        .last()
        .is_some_and(|s| s.sql == "strata_end_marker")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let s = split_statements("select 'a;b';\n-- c;\nselect 2 /* ; */ ;\n\nselect 3");
        let sql: Vec<_> = s.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(sql.len(), 3);
        assert_eq!(sql[0], "select 'a;b'");
        assert!(sql[1].starts_with("select 2"));
        assert_eq!(s.iter().map(|s| s.line).collect::<Vec<_>>(), vec![1, 3, 5]);
    }

    #[test]
    fn completeness_needs_a_final_semicolon() {
        assert!(!is_complete("select 1"));
        assert!(is_complete("select 1;"));
        assert!(is_complete("select 1; -- done"));
        assert!(!is_complete("select ';"));
        assert!(is_complete("\\dt"));
        assert!(is_complete(""));
    }
}
