//! Interpolation of `{arg}` and the checks of a value for the place it lands.

use super::*;

impl Resolver<'_> {
    /// Span of `len` bytes at `offset` in a string's value: skips the
    /// opening delimiter (`"`, `'`, `"""` or `'''` and the newline after
    /// it). When the source differs from the value (escapes, line-ending
    /// backslashes), offsets do not map, so it is the whole string's span.
    pub(super) fn inner(&self, s: &Spanned<String>, offset: usize, len: usize) -> Range<usize> {
        let span = s.span();
        let src = self.file.text.get(span.clone()).unwrap_or("");
        let mut open = ["\"\"\"", "'''", "\"", "'"]
            .into_iter()
            .find(|d| src.starts_with(d))
            .map_or(0, str::len);
        if open == 3 {
            open += ["\n", "\r\n"]
                .into_iter()
                .find(|nl| src[3..].starts_with(nl))
                .map_or(0, str::len);
        }
        if !src[open..].starts_with(s.get_ref().as_str()) {
            return span;
        }
        let start = span.start + open + offset;
        start.min(span.end)..(start + len).min(span.end.max(start + len))
    }

    pub(super) fn interpolate(&mut self, s: &Spanned<String>, vars: &Vars) -> Option<String> {
        let text = s.get_ref();
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        let mut offset = 0;
        let mut ok = true;
        let mut used: Vec<&str> = Vec::new();
        let mut inserted: Vec<(String, String)> = Vec::new();
        while let Some(i) = rest.find(['{', '}']) {
            out.push_str(&rest[..i]);
            let c = rest.as_bytes()[i];
            if rest[i + 1..].starts_with(c as char) {
                out.push(c as char);
                rest = &rest[i + 2..];
                offset += i + 2;
                continue;
            }
            if c == b'}' {
                let span = self.inner(s, offset + i, 1);
                self.error(span, "unmatched `}`", "write `}}` for a literal brace");
                return None;
            }
            let Some(end) = rest[i..].find('}') else {
                let span = self.inner(s, offset + i, rest.len() - i);
                self.error(
                    span,
                    "unclosed `{` in this value",
                    "write `{name}` to insert an arg, or `{{` for a literal brace",
                );
                return None;
            };
            let name = &rest[i + 1..i + end];
            match vars.get(name) {
                Some(v) => {
                    if !used.contains(&name) {
                        used.push(name);
                        inserted.push((name.to_owned(), values::shown(&v)));
                    }
                    if out.len() + v.len() > values::MAX_VALUE {
                        self.too_long(s, &used);
                        return None;
                    }
                    out.push_str(&v)
                }
                None => {
                    let span = self.inner(s, offset + i, end + 1);
                    let mut names: Vec<&str> = vars.args.keys().map(String::as_str).collect();
                    names.push("stack");
                    if vars.component.is_some() {
                        names.push("component");
                    }
                    let help = match self.closest(name, names.iter().copied()) {
                        Some(c) => format!("did you mean `{{{c}}}`?"),
                        None => {
                            let mut listed = names
                                .iter()
                                .take(20)
                                .copied()
                                .collect::<Vec<_>>()
                                .join(", ");
                            if names.len() > 20 {
                                listed.push_str(", ...");
                            }
                            format!("declare `{name}` in [args], or use one of: {listed}")
                        }
                    };
                    self.error(
                        span,
                        format!("`{{{}}}` is not an arg of this stack", values::shown(name)),
                        help,
                    );
                    ok = false;
                }
            }
            rest = &rest[i + end + 1..];
            offset += i + end + 1;
        }
        out.push_str(rest);
        if !used.is_empty() {
            self.interpolated += out.len();
            if self.interpolated > values::MAX_INTERPOLATED {
                self.error(
                    s.span(),
                    format!(
                        "interpolating args produces more than {} MiB in this stack file",
                        values::MAX_INTERPOLATED >> 20
                    ),
                    "an arg is inserted too many times or is too long; keep large data in the build context",
                );
                // Report once: later values are not expanded at all.
                self.interpolated = usize::MAX / 2;
                return None;
            }
        }
        self.last_args = Some((s.span(), inserted));
        ok.then_some(out)
    }

    /// The error for an interpolation longer than `values::MAX_VALUE`.
    pub(super) fn too_long(&mut self, s: &Spanned<String>, used: &[&str]) {
        let args = used
            .iter()
            .map(|n| format!("`{}`", values::shown(n)))
            .collect::<Vec<_>>()
            .join(", ");
        self.error(
            s.span(),
            format!(
                "this value is longer than {} KiB once {args} are inserted",
                values::MAX_VALUE >> 10
            ),
            "check the value of the build arg; keep large data in the build context, not in args",
        );
    }

    /// Refuses an interpolated `value` for the place it lands (`what`),
    /// naming the args it came from.
    pub(super) fn refuse(
        &mut self,
        s: &Spanned<String>,
        value: &str,
        what: &str,
        why: &str,
        help: &str,
    ) {
        let inserted = match &self.last_args {
            Some((span, args)) if *span == s.span() && !args.is_empty() => args
                .iter()
                .map(|(k, v)| format!("{k} = `{v}`"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        };
        let help = if inserted.is_empty() {
            help.to_owned()
        } else {
            format!(
                "{help} (the value is `{}` with {inserted}: check those args)",
                values::shown(s.get_ref())
            )
        };
        self.error(
            s.span(),
            format!("{what} `{}` {why}", values::shown(value)),
            help,
        );
    }

    /// An interpolated absolute path in the image.
    pub(super) fn image_path(
        &mut self,
        s: &Spanned<String>,
        vars: &Vars,
        what: &str,
    ) -> Option<String> {
        let p = self.interpolate(s, vars)?;
        if let Err(why) = values::image_path(&p) {
            self.refuse(
                s,
                &p,
                what,
                &why,
                "write an absolute path such as `/app`, without control characters",
            );
            return None;
        }
        Some(p)
    }

    pub(super) fn context_path(&mut self, s: &Spanned<String>, vars: &Vars) -> Option<String> {
        let p = self.interpolate(s, vars)?;
        if let Err(why) = values::context_path(&p) {
            self.refuse(
                s,
                &p,
                "path",
                &why,
                "write a path relative to the build context, without `..`; what a URL names must first be downloaded into the context",
            );
            return None;
        }
        Some(p)
    }

    /// Interpolated operands of a package manager, each checked by `rule`
    /// once its args are in (so an arg can never become an option).
    pub(super) fn words(
        &mut self,
        items: &[SpannedString],
        vars: &Vars,
        rule: fn(&str) -> Result<(), values::Refusal>,
        what: &str,
        help: &str,
    ) -> Vec<String> {
        let mut out = Vec::with_capacity(items.len());
        for s in items {
            let Some(v) = self.interpolate(s, vars) else {
                continue;
            };
            match rule(&v) {
                Ok(()) => out.push(v),
                Err(why) => self.refuse(s, &v, what, &why, help),
            }
        }
        out
    }
}
