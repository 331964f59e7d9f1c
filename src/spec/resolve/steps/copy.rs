//! `copy` steps.

use super::*;

impl Resolver<'_> {
    pub(in crate::spec::resolve) fn copy(
        &mut self,
        c: &Spanned<raw::Short<raw::CopySpec>>,
        cname: &str,
        ctx: &Ctx,
        ref_spans: &mut BTreeMap<(String, String), Range<usize>>,
    ) -> Option<Step> {
        let spec = c.get_ref();
        let vars = &ctx.vars;
        let source = match &spec.from {
            None => CopySource::Context,
            Some(f) => {
                let text = self.interpolate(f, vars)?;
                if ctx.names.contains(&text) {
                    if text == cname {
                        self.error(
                            f.span(),
                            format!("component `{cname}` copies from itself"),
                            "copy from another component, an image, or the context",
                        );
                    }
                    ref_spans
                        .entry((cname.to_owned(), text.clone()))
                        .or_insert(f.span());
                    CopySource::Component(text)
                } else if self.bare_name(f.span(), &text, ctx.names) {
                    return None;
                } else {
                    match ImageRef::parse(&text) {
                        Ok(r) => CopySource::Image(apply_mirrors(r, ctx.mirrors)),
                        Err(e) => {
                            let help = self
                                .closest(&text, ctx.names.iter().map(String::as_str))
                                .map(|c| format!("did you mean the component `{c}`?"))
                                .unwrap_or_else(|| "name a component or an image reference".into());
                            self.error(f.span(), format!("`{text}` is neither a component nor a valid image reference ({e})"), help);
                            return None;
                        }
                    }
                }
            }
        };
        let srcs: Vec<String> = spec.src.get_ref().0.clone();
        if srcs.is_empty() || srcs.iter().any(String::is_empty) {
            self.error(
                spec.src.span(),
                "copy needs a non-empty `src`",
                "name a file or directory",
            );
        }
        if source == CopySource::Context {
            for s in &srcs {
                if values::is_url(s) {
                    self.error(
                        spec.src.span(),
                        format!(
                            "`{}` is a URL, not a path in the build context",
                            values::shown(s)
                        ),
                        "download the file into the build context and copy it from there",
                    );
                } else if s.starts_with('/') || s.split('/').any(|p| p == "..") {
                    self.error(spec.src.span(), format!("`{s}` is outside the build context"), "context paths are relative and stay inside it; copy from a component or image with `from` for absolute paths");
                }
            }
        }
        let dst = self.checked(
            &spec.dst,
            vars,
            "destination",
            "write a path without control characters",
            |d| values::destination(d).map(|()| d.to_owned()),
        )?;
        let owner = match spec.owner.as_ref().map(|o| o.get_ref().as_str()) {
            None | Some("root") => Owner::Root,
            Some("user") => {
                if ctx.user.is_none() {
                    let span = spec.owner.as_ref().map_or(c.span(), Spanned::span);
                    self.error(
                        span,
                        "`owner = \"user\"` but the stack has no [user] policy",
                        "declare [user], or use `root` or `uid:gid`",
                    );
                }
                Owner::User
            }
            Some(other) => match other
                .split_once(':')
                .map(|(u, g)| (u.parse::<u32>(), g.parse::<u32>()))
            {
                Some((Ok(u), Ok(g))) => Owner::Ids(u, g),
                _ => {
                    let span = spec.owner.as_ref().map_or(c.span(), Spanned::span);
                    self.error(
                        span,
                        format!("unknown owner `{other}`"),
                        "use `user`, `root` or numeric `uid:gid`",
                    );
                    Owner::Root
                }
            },
        };
        let mode = match &spec.mode {
            None => None,
            Some(m) => match u32::from_str_radix(m.get_ref().trim_start_matches("0o"), 8) {
                Ok(v) if v <= 0o7777 => Some(v),
                _ => {
                    self.error(
                        m.span(),
                        format!("`{}` is not an octal file mode", m.get_ref()),
                        "e.g. \"0755\" or \"0644\"",
                    );
                    None
                }
            },
        };
        Some(Step {
            kind: StepKind::Copy(Copy {
                srcs,
                dst,
                source,
                owner,
                mode,
                exclude: spec.exclude.iter().map(|e| e.get_ref().clone()).collect(),
            }),
            span: c.span(),
        })
    }
}
