//! `when` conditions: a tiny typed expression language over args.
//!
//! ```text
//! expr    := and ("||" and)*
//! and     := unary ("&&" unary)*
//! unary   := "!" unary | primary
//! primary := "(" expr ")" | NAME | NAME ("==" | "!=") literal | "true" | "false"
//! literal := 'text' | "text" | integer | true | false
//! ```

use std::ops::Range;

/// A parsed condition. Offsets are byte ranges inside the condition text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `true` / `false`.
    Const(bool),
    /// A bool arg by name.
    Arg(String, Range<usize>),
    /// `name == literal` (negated for `!=`).
    Compare {
        /// The arg compared.
        name: String,
        /// Where the name is.
        name_span: Range<usize>,
        /// The literal compared with.
        value: Literal,
        /// Where the literal is.
        value_span: Range<usize>,
        /// True for `!=`.
        negated: bool,
    },
    /// `!e`.
    Not(Box<Expr>),
    /// `a && b`.
    And(Box<Expr>, Box<Expr>),
    /// `a || b`.
    Or(Box<Expr>, Box<Expr>),
}

/// A literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// A quoted string.
    Str(String),
    /// An integer.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
}

/// A syntax error in a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// What is wrong.
    pub message: String,
    /// Where, inside the condition text.
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Int(i64),
    And,
    Or,
    Not,
    Eq,
    Ne,
    Open,
    Close,
}

fn lex(src: &str) -> Result<Vec<(Tok, Range<usize>)>, ExprError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let two = |s: &str| src.get(i..i + 2) == Some(s);
        let tok = match c {
            b' ' | b'\t' => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                Tok::Open
            }
            b')' => {
                i += 1;
                Tok::Close
            }
            b'&' if two("&&") => {
                i += 2;
                Tok::And
            }
            b'|' if two("||") => {
                i += 2;
                Tok::Or
            }
            b'=' if two("==") => {
                i += 2;
                Tok::Eq
            }
            b'!' if two("!=") => {
                i += 2;
                Tok::Ne
            }
            b'!' => {
                i += 1;
                Tok::Not
            }
            b'\'' | b'"' => {
                let end = src[i + 1..].find(c as char).ok_or_else(|| ExprError {
                    message: "this quoted value is never closed".into(),
                    span: start..src.len(),
                })?;
                i += end + 2;
                Tok::Str(src[start + 1..start + 1 + end].to_owned())
            }
            b'0'..=b'9' | b'-' => {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let n = src[start..i].parse().map_err(|_| ExprError {
                    message: format!("`{}` is not an integer", &src[start..i]),
                    span: start..i,
                })?;
                Tok::Int(n)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-' | b'.'))
                {
                    i += 1;
                }
                Tok::Name(src[start..i].to_owned())
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(ExprError {
                    message: format!("unexpected `{ch}` in condition"),
                    span: start..start + ch.len_utf8(),
                });
            }
        };
        out.push((tok, start..i));
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, Range<usize>)>,
    pos: usize,
    end: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 64;
/// Bounds the tree's depth (`a || a || ...` nests to the left), which
/// checking, evaluating and dropping it recurse through.
const MAX_TOKENS: usize = 512;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn span(&self) -> Range<usize> {
        self.toks
            .get(self.pos)
            .map_or(self.end..self.end, |(_, s)| s.clone())
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError {
            message: message.into(),
            span: self.span(),
        })
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("condition is nested too deeply");
        }
        let e = if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            Expr::Not(Box::new(self.unary()?))
        } else {
            self.primary()?
        };
        self.depth -= 1;
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let Some((tok, span)) = self.toks.get(self.pos).cloned() else {
            return self.err("condition ends too early: expected an arg name");
        };
        self.pos += 1;
        match tok {
            Tok::Open => {
                let e = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return self.err("expected `)`");
                }
                self.pos += 1;
                Ok(e)
            }
            Tok::Name(n) if n == "true" || n == "false" => Ok(Expr::Const(n == "true")),
            Tok::Name(name) => {
                let negated = match self.peek() {
                    Some(Tok::Eq) => false,
                    Some(Tok::Ne) => true,
                    _ => return Ok(Expr::Arg(name, span)),
                };
                self.pos += 1;
                let Some((lit, value_span)) = self.toks.get(self.pos).cloned() else {
                    return self.err("expected a value after the comparison");
                };
                self.pos += 1;
                let value = match lit {
                    Tok::Str(s) => Literal::Str(s),
                    Tok::Int(i) => Literal::Int(i),
                    Tok::Name(n) if n == "true" || n == "false" => Literal::Bool(n == "true"),
                    Tok::Name(n) => {
                        return Err(ExprError {
                            message: format!("`{n}` must be quoted: '{n}'"),
                            span: value_span,
                        })
                    }
                    _ => {
                        return Err(ExprError {
                            message: "expected a value: 'text', a number, true or false".into(),
                            span: value_span,
                        })
                    }
                };
                Ok(Expr::Compare {
                    name,
                    name_span: span,
                    value,
                    value_span,
                    negated,
                })
            }
            _ => Err(ExprError {
                message: "expected an arg name, `!` or `(`".into(),
                span,
            }),
        }
    }
}

/// Parses a condition.
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    let toks = lex(src)?;
    if let Some((_, span)) = toks.get(MAX_TOKENS) {
        return Err(ExprError {
            message: format!("condition is too long (more than {MAX_TOKENS} tokens)"),
            span: span.clone(),
        });
    }
    if toks.is_empty() {
        return Err(ExprError {
            message: "the condition is empty".into(),
            span: 0..src.len(),
        });
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: src.len(),
        depth: 0,
    };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return p.err("expected `&&`, `||` or the end of the condition");
    }
    Ok(e)
}

impl Expr {
    /// Every arg name the condition reads, with its span.
    pub fn names(&self, out: &mut Vec<(String, Range<usize>)>) {
        match self {
            Expr::Const(_) => {}
            Expr::Arg(n, s) => out.push((n.clone(), s.clone())),
            Expr::Compare {
                name, name_span, ..
            } => out.push((name.clone(), name_span.clone())),
            Expr::Not(e) => e.names(out),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.names(out);
                b.names(out);
            }
        }
    }

    /// Evaluates with `lookup` giving each arg's value (already type-checked).
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<Literal>) -> bool {
        match self {
            Expr::Const(b) => *b,
            Expr::Arg(n, _) => lookup(n) == Some(Literal::Bool(true)),
            Expr::Compare {
                name,
                value,
                negated,
                ..
            } => (lookup(name).as_ref() == Some(value)) != *negated,
            Expr::Not(e) => !e.eval(lookup),
            Expr::And(a, b) => a.eval(lookup) && b.eval(lookup),
            Expr::Or(a, b) => a.eval(lookup) || b.eval(lookup),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str, spark: bool, py: &str) -> bool {
        let e = parse(src).expect("parses");
        e.eval(&|n| match n {
            "spark" => Some(Literal::Bool(spark)),
            "nn" => Some(Literal::Bool(true)),
            "python" => Some(Literal::Str(py.into())),
            _ => None,
        })
    }

    #[test]
    fn precedence_and_comparisons() {
        assert!(eval("spark && nn", true, ""));
        assert!(!eval("spark && nn", false, ""));
        assert!(eval("!spark || python == '3.11'", true, "3.11"));
        assert!(eval("!(spark && python != \"3.10\")", true, "3.10"));
        assert!(!eval("false || spark", false, ""));
    }

    #[test]
    fn errors_point_inside_the_condition() {
        assert_eq!(parse("spark &&").unwrap_err().span, 8..8);
        assert_eq!(parse("spark & nn").unwrap_err().span, 6..7);
        assert!(parse("python == 3.11x").is_err());
        assert!(parse("python == linux")
            .unwrap_err()
            .message
            .contains("quoted"));
        assert!(parse("").is_err());
        assert!(parse("'open").is_err());
        let deep = "!".repeat(500) + "x";
        assert!(parse(&deep).is_err());
        let parens = "(".repeat(500) + "x" + &")".repeat(500);
        assert!(parse(&parens).is_err());
        let long = "x".to_owned() + &" || x".repeat(10_000);
        assert!(parse(&long).unwrap_err().message.contains("too long"));
        let fits = "x".to_owned() + &" || x".repeat(255);
        assert!(parse(&fits).is_ok());
    }
}
