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
        if !self.one_source(spec) {
            return None;
        }
        if spec.url.is_some() || spec.git.is_some() {
            return self.remote_copy(c, ctx);
        }
        self.remote_keys_without_remote(spec);
        let Some(src) = &spec.src else {
            self.error(
                ErrorCode::MissingKey,
                c.span(),
                "copy needs `src`",
                "name a file or directory with `src`, or download one with `url` and `checksum`",
            );
            return None;
        };
        let source = match &spec.from {
            None => CopySource::Context,
            Some(f) => self.copy_from(f, cname, ctx, ref_spans)?,
        };
        let srcs: Vec<String> = src.get_ref().0.clone();
        if srcs.is_empty() || srcs.iter().any(String::is_empty) {
            self.error(
                ErrorCode::EmptyStep,
                src.span(),
                "copy needs a non-empty `src`",
                "name a file or directory",
            );
        }
        if source == CopySource::Context {
            self.context_sources(src.span(), &srcs);
        }
        self.copy_step(c, ctx, source, srcs)
    }

    /// Whether the copy names at most one of `from`, `url` and `git`
    /// (an error when it names more).
    fn one_source(&mut self, spec: &raw::CopySpec) -> bool {
        let remote = [
            ("from", spec.from.as_ref()),
            ("url", spec.url.as_ref()),
            ("git", spec.git.as_ref()),
        ];
        let written: Vec<_> = remote
            .iter()
            .filter_map(|(k, v)| v.map(|v| (*k, v)))
            .collect();
        if let [(first, _), (second, v), ..] = written.as_slice() {
            self.error(
                ErrorCode::ConflictingKeys,
                v.span(),
                format!(
                    "a copy reads from one place, but this one has both `{first}` and `{second}`"
                ),
                "write one copy per source",
            );
            return false;
        }
        true
    }

    /// Errors for the keys of a `url` or `git` copy on a copy with neither.
    fn remote_keys_without_remote(&mut self, spec: &raw::CopySpec) {
        for (key, v) in [
            ("checksum", &spec.checksum),
            ("tag", &spec.tag),
            ("commit", &spec.commit),
            ("branch", &spec.branch),
        ] {
            if let Some(v) = v {
                let with = if key == "checksum" { "url" } else { "git" };
                self.error(
                    ErrorCode::ConflictingKeys,
                    v.span(),
                    format!("`{key}` belongs to a copy with `{with}`"),
                    format!("remove `{key}`, or add `{with} = \"...\"`"),
                );
            }
        }
    }

    /// A copy's `from`: a component of the stack (its span kept in
    /// `ref_spans`) or an image reference, mirrored.
    fn copy_from(
        &mut self,
        f: &SpannedString,
        cname: &str,
        ctx: &Ctx,
        ref_spans: &mut BTreeMap<(String, String), Range<usize>>,
    ) -> Option<CopySource> {
        let text = self.interpolate(f, &ctx.vars)?;
        if ctx.names.contains(&text) {
            if text == cname {
                self.error(
                    ErrorCode::SelfReference,
                    f.span(),
                    format!("component `{cname}` copies from itself"),
                    "copy from another component, an image, or the context",
                );
            }
            ref_spans
                .entry((cname.to_owned(), text.clone()))
                .or_insert(f.span());
            return Some(CopySource::Component(text));
        }
        if self.bare_name(f.span(), &text, ctx.names) {
            return None;
        }
        match ImageRef::parse(&text) {
            Ok(r) => Some(CopySource::Image(apply_mirrors(r, ctx.mirrors))),
            Err(e) => {
                let help = self
                    .closest(&text, ctx.names.iter().map(String::as_str))
                    .map(|c| format!("did you mean the component `{c}`?"))
                    .unwrap_or_else(|| "name a component or an image reference".into());
                self.error(
                    ErrorCode::InvalidImage,
                    f.span(),
                    format!("`{text}` is neither a component nor a valid image reference ({e})"),
                    help,
                );
                None
            }
        }
    }

    /// Checks that each `src` of a copy from the context is a relative
    /// path inside it, and records it as an input of the component.
    fn context_sources(&mut self, span: Range<usize>, srcs: &[String]) {
        for s in srcs {
            if values::is_url(s) {
                self.error(
                    ErrorCode::OutsideContext,
                    span.clone(),
                    format!(
                        "`{}` is a URL, not a path in the build context",
                        values::masked_url(s)
                    ),
                    "download it with `url = \"...\"` and `checksum = \"sha256:...\"` instead of `src`, or copy a git repository with `git` and `tag`",
                );
            } else if s.starts_with('/') || s.split('/').any(|p| p == "..") {
                self.error(ErrorCode::OutsideContext, span.clone(), format!("`{s}` is outside the build context"), "context paths are relative and stay inside it; copy from a component or image with `from` for absolute paths");
            } else if !s.is_empty() {
                self.inputs.push(ContextInput {
                    path: s.clone(),
                    kind: InputKind::CopySource,
                    span: span.clone(),
                });
            }
        }
    }

    /// The copy step of `c`, reading `srcs` from `source`.
    fn copy_step(
        &mut self,
        c: &Spanned<raw::Short<raw::CopySpec>>,
        ctx: &Ctx,
        source: CopySource,
        srcs: Vec<String>,
    ) -> Option<Step> {
        let (dst, owner, mode) = self.copy_target(c, ctx)?;
        Some(Step {
            kind: StepKind::Copy(Copy {
                srcs,
                dst,
                source,
                owner,
                mode,
                exclude: c
                    .get_ref()
                    .exclude
                    .iter()
                    .map(|e| e.get_ref().clone())
                    .collect(),
                from_span: c.get_ref().from.as_ref().map(Spanned::span),
            }),
            span: c.span(),
        })
    }

    /// A copy's `dst`, `owner` and `mode`.
    fn copy_target(
        &mut self,
        c: &Spanned<raw::Short<raw::CopySpec>>,
        ctx: &Ctx,
    ) -> Option<(String, Owner, Option<u32>)> {
        let spec = c.get_ref();
        let vars = &ctx.vars;
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
                        ErrorCode::UnknownUser,
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
                        ErrorCode::UnknownChoice,
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
                        ErrorCode::InvalidSetting,
                        m.span(),
                        format!("`{}` is not an octal file mode", m.get_ref()),
                        "e.g. \"0755\" or \"0644\"",
                    );
                    None
                }
            },
        };
        Some((dst, owner, mode))
    }

    /// A copy with `url` (a download pinned by `checksum`) or `git` (a
    /// repository at a tag, commit or branch).
    fn remote_copy(&mut self, c: &Spanned<raw::Short<raw::CopySpec>>, ctx: &Ctx) -> Option<Step> {
        let spec = c.get_ref();
        let (source, srcs) = match (&spec.url, &spec.git) {
            (Some(url), _) => self.download(c, url, &ctx.vars)?,
            (None, Some(git)) => self.git_checkout(spec, git, &ctx.vars)?,
            (None, None) => return None,
        };
        self.copy_step(c, ctx, source, srcs)
    }

    /// The source of a copy with `url`, and the downloaded file's name.
    fn download(
        &mut self,
        c: &Spanned<raw::Short<raw::CopySpec>>,
        url: &SpannedString,
        vars: &Vars,
    ) -> Option<(CopySource, Vec<String>)> {
        let spec = c.get_ref();
        for (key, v) in [
            ("tag", &spec.tag),
            ("commit", &spec.commit),
            ("branch", &spec.branch),
        ] {
            if let Some(v) = v {
                self.error(
                    ErrorCode::ConflictingKeys,
                    v.span(),
                    format!("`{key}` belongs to a copy with `git`"),
                    format!("remove `{key}`: a download is pinned by `checksum`"),
                );
            }
        }
        if let Some(src) = &spec.src {
            self.error(ErrorCode::ConflictingKeys, src.span(), "a copy with `url` has no `src`", "remove `src`: the downloaded file is copied to `dst` (a `dst` ending in `/` keeps the file's name)");
        }
        let checked_url = self.remote_url(url, vars, "URL", &["https", "http"]);
        let Some(checksum) = &spec.checksum else {
            self.error(
                ErrorCode::MissingKey,
                url.span(),
                "a copy from a URL needs `checksum`",
                "add `checksum = \"sha256:<hex>\"` (the file's `sha256sum`): BuildKit checks the download against it, so a changed file fails the build instead of entering the image",
            );
            return None;
        };
        let checksum = self.checked(
            checksum,
            vars,
            "checksum",
            "write `sha256:` and the 64 hex digits `sha256sum FILE` prints",
            |d| values::sha256_digest(d).map(|()| d.to_owned()),
        );
        let url = checked_url?;
        let name = url
            .split(['?', '#'])
            .next()
            .and_then(|u| u.rsplit('/').next())
            .filter(|n| !n.is_empty() && !n.contains("://"))
            .unwrap_or("download")
            .to_owned();
        let source = CopySource::Http {
            url,
            checksum: checksum?,
        };
        Some((source, vec![name]))
    }

    /// The source of a copy with `git`, and the paths it copies from the
    /// repository (its top when `src` is not written).
    fn git_checkout(
        &mut self,
        spec: &raw::CopySpec,
        git: &SpannedString,
        vars: &Vars,
    ) -> Option<(CopySource, Vec<String>)> {
        if let Some(v) = &spec.checksum {
            self.error(
                ErrorCode::ConflictingKeys,
                v.span(),
                "`checksum` belongs to a copy with `url`",
                "remove `checksum`: a git copy is pinned by `tag` or `commit`",
            );
        }
        let remote = self.remote_url(git, vars, "git repository", &["https", "http", "git"]);
        let at = self.git_ref(spec, git, vars)?;
        let srcs = match &spec.src {
            None => vec![".".to_owned()],
            Some(src) => {
                let srcs = src.get_ref().0.clone();
                for p in &srcs {
                    if p.is_empty() || values::is_url(p) || p.split('/').any(|c| c == "..") {
                        self.error(
                            ErrorCode::InvalidValue,
                            src.span(),
                            format!(
                                "`{}` is not a path in the repository",
                                values::masked_url(p)
                            ),
                            "write a path relative to the repository's top, without `..`",
                        );
                    }
                }
                srcs
            }
        };
        let source = CopySource::Git {
            remote: remote?,
            at,
        };
        Some((source, srcs))
    }

    /// The one `tag`, `commit` or `branch` a git copy checks out.
    fn git_ref(
        &mut self,
        spec: &raw::CopySpec,
        git: &SpannedString,
        vars: &Vars,
    ) -> Option<GitRef> {
        let refs: Vec<_> = [
            ("tag", &spec.tag),
            ("commit", &spec.commit),
            ("branch", &spec.branch),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        match refs.as_slice() {
            [] => {
                self.error(
                    ErrorCode::MissingKey,
                    git.span(),
                    "a git copy needs `tag`, `commit` or `branch`",
                    "add `tag = \"v1.2.0\"` or `commit = \"<full id>\"`: a tag or a commit pins what the build copies",
                );
                None
            }
            [(kind, v)] => {
                let rule = if *kind == "commit" {
                    values::git_commit
                } else {
                    values::git_ref_name
                };
                let name = self.checked(
                    v,
                    vars,
                    kind,
                    "write a tag, a full commit id, or a branch name",
                    |r| rule(r).map(|()| r.to_owned()),
                )?;
                Some(match *kind {
                    "tag" => GitRef::Tag(name),
                    "commit" => GitRef::Commit(name),
                    _ => GitRef::Branch(name),
                })
            }
            [(a, _), (b, v), ..] => {
                self.error(
                    ErrorCode::ConflictingKeys,
                    v.span(),
                    format!("a git copy checks out one ref, but this one has both `{a}` and `{b}`"),
                    "keep one of `tag`, `commit` and `branch`",
                );
                None
            }
        }
    }
}
