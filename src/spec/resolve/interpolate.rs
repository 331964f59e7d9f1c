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

    /// `s` with its `{arg}`s inserted, or None after reporting why not.
    pub(super) fn interpolate(&mut self, s: &Spanned<String>, vars: &Vars) -> Option<String> {
        self.expand(s, vars).map(|(value, _)| value)
    }

    /// Interpolates `s` and checks the value with `rule` for the place it
    /// lands (`what`); a refused value is an error at `s` that names the
    /// args inserted into it.
    pub(super) fn checked<T>(
        &mut self,
        s: &Spanned<String>,
        vars: &Vars,
        what: &str,
        help: &str,
        rule: impl FnOnce(&str) -> Result<T, values::Refusal>,
    ) -> Option<T> {
        let (value, inserted) = self.expand(s, vars)?;
        match rule(&value) {
            Ok(v) => Some(v),
            Err(why) => {
                self.refuse(s, &value, &inserted, what, &why, help);
                None
            }
        }
    }

    /// The interpolated value and the args inserted into it, each with its
    /// value as shown in messages.
    pub(super) fn expand(
        &mut self,
        s: &Spanned<String>,
        vars: &Vars,
    ) -> Option<(String, Inserted)> {
        let text = s.get_ref();
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        let mut offset = 0;
        let mut ok = true;
        let mut inserted = Inserted::new();
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
                self.error(
                    ErrorCode::InterpolationSyntax,
                    span,
                    "unmatched `}`",
                    "write `}}` for a literal brace",
                );
                return None;
            }
            let Some(end) = rest[i..].find('}') else {
                let span = self.inner(s, offset + i, rest.len() - i);
                self.error(
                    ErrorCode::InterpolationSyntax,
                    span,
                    "unclosed `{` in this value",
                    "write `{name}` to insert an arg, or `{{` for a literal brace",
                );
                return None;
            };
            let name = &rest[i + 1..i + end];
            match vars.get(name) {
                Some(v) => {
                    if !inserted.iter().any(|(n, _)| n == name) {
                        inserted.push((name.to_owned(), values::shown(&v)));
                    }
                    if out.len() + v.len() > values::MAX_VALUE {
                        self.too_long(s, &inserted);
                        return None;
                    }
                    out.push_str(&v)
                }
                None => {
                    let span = self.inner(s, offset + i, end + 1);
                    self.unknown_interpolated_arg(span, name, vars);
                    ok = false;
                }
            }
            rest = &rest[i + end + 1..];
            offset += i + end + 1;
        }
        out.push_str(rest);
        if !inserted.is_empty() && !self.count_interpolated(s, out.len()) {
            return None;
        }
        ok.then_some((out, inserted))
    }

    /// The error for `{name}` where `name` is no arg, with a did-you-mean
    /// or the names it may be.
    fn unknown_interpolated_arg(&mut self, span: Range<usize>, name: &str, vars: &Vars) {
        let mut names: Vec<&str> = vars.args.keys().map(String::as_str).collect();
        names.push("stack");
        if vars.component.is_some() {
            names.push("component");
        }
        let help = match self.closest(name, names.iter().copied()) {
            Some(c) => format!("did you mean `{{{c}}}`?"),
            None => {
                // The platform names are documented once, not
                // listed in every hint.
                let names: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|n| !PLATFORM_VARS.contains(n))
                    .collect();
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
            ErrorCode::UnknownReference,
            span,
            format!("`{{{}}}` is not an arg of this stack", values::shown(name)),
            help,
        );
    }

    /// Adds `len` interpolated bytes to the file's total; false (with an
    /// error, once) when the total passes `values::MAX_INTERPOLATED`.
    fn count_interpolated(&mut self, s: &Spanned<String>, len: usize) -> bool {
        self.interpolated += len;
        if self.interpolated <= values::MAX_INTERPOLATED {
            return true;
        }
        self.error(
            ErrorCode::ValueTooLarge,
            s.span(),
            format!(
                "interpolating args produces more than {} MiB in this stack file",
                values::MAX_INTERPOLATED >> 20
            ),
            "an arg is inserted too many times or is too long; keep large data in the build context",
        );
        // Report once: later values are not expanded at all.
        self.interpolated = usize::MAX / 2;
        false
    }

    /// The error for an interpolation longer than `values::MAX_VALUE`.
    fn too_long(&mut self, s: &Spanned<String>, inserted: &Inserted) {
        let args = inserted
            .iter()
            .map(|(n, _)| format!("`{}`", values::shown(n)))
            .collect::<Vec<_>>()
            .join(", ");
        self.error(
            ErrorCode::ValueTooLarge,
            s.span(),
            format!(
                "this value is longer than {} KiB once {args} are inserted",
                values::MAX_VALUE >> 10
            ),
            "check the value of the build arg; keep large data in the build context, not in args",
        );
    }

    /// Refuses an interpolated `value` for the place it lands (`what`),
    /// naming the args inserted into it. A template interpolated more than
    /// once (the naming rule, once per component) is refused once.
    pub(super) fn refuse(
        &mut self,
        s: &Spanned<String>,
        value: &str,
        inserted: &Inserted,
        what: &str,
        why: &str,
        help: &str,
    ) {
        if !self.refused.insert((s.span().start, s.span().end)) {
            return;
        }
        let help = if inserted.is_empty() {
            help.to_owned()
        } else {
            let args = inserted
                .iter()
                .map(|(k, v)| format!("{k} = `{v}`"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "{help} (the value is `{}` with {args}: check those args)",
                values::shown(s.get_ref())
            )
        };
        self.error(
            ErrorCode::InvalidValue,
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
        self.checked(
            s,
            vars,
            what,
            "write an absolute path such as `/app`, without control characters",
            |p| values::image_path(p).map(|()| p.to_owned()),
        )
    }

    /// An interpolated path relative to the build context.
    pub(super) fn context_path(&mut self, s: &Spanned<String>, vars: &Vars) -> Option<String> {
        self.checked(
            s,
            vars,
            "path",
            "write a path relative to the build context, without `..`; what a URL names must first be downloaded into the context",
            |p| values::context_path(p).map(|()| p.to_owned()),
        )
    }

    /// An interpolated URL of a remote source (see `values::remote_url`);
    /// a refused one is shown with any credentials masked.
    pub(super) fn remote_url(
        &mut self,
        s: &Spanned<String>,
        vars: &Vars,
        what: &str,
        schemes: &[&str],
    ) -> Option<String> {
        let (value, inserted) = self.expand(s, vars)?;
        let Err(why) = values::remote_url(&value, schemes) else {
            return Some(value);
        };
        if !self.refused.insert((s.span().start, s.span().end)) {
            return None;
        }
        let help = if why.contains("credentials") {
            "keep credentials out of the stack file: they would be written into the build definition, the build log and the image history; serve the site's mirror without them on the build network".to_owned()
        } else {
            format!(
                "write a {} URL such as `{}://mirror.site.local/path`",
                schemes.join(" or "),
                schemes[0]
            )
        };
        let help = match inserted.is_empty() {
            true => help,
            false => format!(
                "{help} (the value comes from the args {}: check them)",
                inserted
                    .iter()
                    .map(|(k, _)| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.error(
            ErrorCode::InvalidValue,
            s.span(),
            format!("{what} `{}` {why}", values::masked_url(&value)),
            help,
        );
        None
    }

    /// [`Self::context_path`], recorded as a path the component reads
    /// from the build context (checked against it before a build).
    pub(super) fn context_input(
        &mut self,
        s: &Spanned<String>,
        vars: &Vars,
        kind: InputKind,
    ) -> Option<String> {
        let path = self.context_path(s, vars)?;
        // An empty value (an arg left at "") names nothing: the key is off.
        if !path.is_empty() {
            self.inputs.push(ContextInput {
                path: path.clone(),
                kind,
                span: s.span(),
            });
        }
        Some(path)
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
            out.extend(self.checked(s, vars, what, help, |v| rule(v).map(|()| v.to_owned())));
        }
        out
    }
}
