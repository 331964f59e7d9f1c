//! `when` conditions: every name an arg, every comparison typed.

use super::*;

impl Resolver<'_> {
    pub(super) fn check_condition(&mut self, e: &Expr, w: &Spanned<String>, args: &[Arg]) -> bool {
        let mut ok = true;
        self.check_expr(e, w, args, &mut ok);
        ok && e.eval(&|n| {
            args.iter().find(|a| a.name == n).map(|a| match &a.value {
                ArgValue::Bool(b) => Literal::Bool(*b),
                ArgValue::Int(i) => Literal::Int(*i),
                ArgValue::String(s) => Literal::Str(s.clone()),
            })
        })
    }

    pub(super) fn check_expr(
        &mut self,
        e: &Expr,
        w: &Spanned<String>,
        args: &[Arg],
        ok: &mut bool,
    ) {
        match e {
            Expr::Const(_) => {}
            Expr::Not(x) => self.check_expr(x, w, args, ok),
            Expr::And(a, b) | Expr::Or(a, b) => {
                self.check_expr(a, w, args, ok);
                self.check_expr(b, w, args, ok);
            }
            Expr::Arg(n, span) => match args.iter().find(|a| &a.name == n) {
                None => {
                    *ok = false;
                    self.unknown_arg(n, span, w, args);
                }
                Some(a) if a.kind != ArgType::Bool => {
                    *ok = false;
                    let s = self.inner(w, span.start, span.len());
                    self.error(
                        ErrorCode::ConditionType,
                        s,
                        format!("`{n}` is not a bool arg, so it cannot stand alone in a condition"),
                        format!("compare it: `{n} == '...'`"),
                    );
                }
                Some(_) => {}
            },
            Expr::Compare {
                name,
                name_span,
                value,
                value_span,
                ..
            } => match args.iter().find(|a| &a.name == name) {
                None => {
                    *ok = false;
                    self.unknown_arg(name, name_span, w, args);
                }
                Some(a) => {
                    let fits = match (&a.kind, value) {
                        (ArgType::Bool, Literal::Bool(_))
                        | (ArgType::Int, Literal::Int(_))
                        | (ArgType::String, Literal::Str(_)) => true,
                        (ArgType::Enum(vals), Literal::Str(s)) => {
                            if !vals.contains(s) {
                                *ok = false;
                                let sp = self.inner(w, value_span.start, value_span.len());
                                self.error(
                                    ErrorCode::ConditionType,
                                    sp,
                                    format!("`{s}` is not one of the values of `{name}`"),
                                    format!("values: {}", vals.join(", ")),
                                );
                            }
                            true
                        }
                        _ => false,
                    };
                    if !fits {
                        *ok = false;
                        let sp = self.inner(w, value_span.start, value_span.len());
                        self.error(
                            ErrorCode::ConditionType,
                            sp,
                            format!(
                                "`{name}` is {}, but is compared with a value of another type",
                                type_name(&a.kind)
                            ),
                            "compare with a value of the arg's type",
                        );
                    }
                }
            },
        }
    }

    pub(super) fn unknown_arg(
        &mut self,
        n: &str,
        span: &Range<usize>,
        w: &Spanned<String>,
        args: &[Arg],
    ) {
        let s = self.inner(w, span.start, span.len());
        let help = self
            .closest(n, args.iter().map(|a| a.name.as_str()))
            .map(|c| format!("did you mean `{c}`?"))
            .unwrap_or_else(|| "declare it in [args]".into());
        self.error(
            ErrorCode::ConditionArg,
            s,
            format!("the condition reads `{n}`, which is not an arg"),
            help,
        );
    }
}
