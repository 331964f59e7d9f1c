//! Image references, `[mirrors]` and `[metadata]`.

use super::*;

impl Resolver<'_> {
    pub(super) fn mirrors(
        &mut self,
        raw: &BTreeMap<SpannedString, SpannedString>,
        overrides: &Overrides,
        vars: &Vars,
    ) -> Vec<(ImageRef, ImageRef)> {
        let mut out = Vec::new();
        for (k, v) in raw {
            let from = ImageRef::parse(k.get_ref());
            let to = self.interpolate(v, vars).map(|t| ImageRef::parse(&t));
            match (from, to) {
                (Ok(f), Some(Ok(t))) => out.push((f, t)),
                (Err(e), _) => self.error(
                    ErrorCode::InvalidImage,
                    k.span(),
                    format!("mirror key `{}`: {e}", k.get_ref()),
                    "write an image reference such as `debian:bookworm`",
                ),
                (_, Some(Err(e))) => self.error(
                    ErrorCode::InvalidImage,
                    v.span(),
                    format!("mirror `{}`: {e}", v.get_ref()),
                    "write an image reference such as `registry.local/debian:bookworm`",
                ),
                _ => {}
            }
        }
        for (k, v) in &overrides.mirrors {
            match (ImageRef::parse(k), ImageRef::parse(v)) {
                (Ok(f), Ok(t)) => {
                    out.retain(|(x, _)| x != &f);
                    out.push((f, t));
                }
                (Err(e), _) | (_, Err(e)) => self.error(
                    ErrorCode::InvalidImage,
                    0..0,
                    format!("mirror `{k}={v}`: {e}"),
                    "write FROM=TO with two image references",
                ),
            }
        }
        out
    }

    /// The naming rules of an `image` key, each located; an error for an
    /// empty list.
    pub(super) fn naming_rules(&mut self, image: &Spanned<raw::NamingRules>) -> Vec<SpannedString> {
        let rules = image.get_ref().located(image.span());
        if rules.is_empty() {
            self.error(
                ErrorCode::InvalidImage,
                image.span(),
                "`image` is an empty list",
                "give at least one naming rule: the image's name, then any extra tags, e.g. `[\"{stack}/{component}:{version}\", \"{stack}/{component}:latest\"]`",
            );
        }
        rules
    }

    /// The names of an image from its naming rules (the primary name,
    /// then the extra tags); none when a rule is invalid or two rules give
    /// the same repository and tag, which is reported.
    pub(super) fn image_names(
        &mut self,
        rules: &[SpannedString],
        vars: &Vars,
    ) -> Option<Vec<ImageRef>> {
        let mut names = Vec::with_capacity(rules.len());
        let mut ok = true;
        for rule in rules {
            match self.image_ref(rule, vars, &[]) {
                Some(r) => names.push(r),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        for (j, r) in names.iter().enumerate() {
            let Some(i) = names[..j].iter().position(|e| same_tag(e, r)) else {
                continue;
            };
            let first = &rules[i];
            let line = |r: &SpannedString| self.file.line_col(r.span().start).line;
            let how = if first.get_ref() == rules[j].get_ref() {
                "the same rule is written twice".to_owned()
            } else if line(first) == line(&rules[j]) {
                format!("`{}` gives it too", first.get_ref())
            } else {
                format!("`{}` gives it too (line {})", first.get_ref(), line(first))
            };
            self.error(
                ErrorCode::DuplicateTag,
                rules[j].span(),
                format!("the image is named `{}` twice: {how}", r.familiar()),
                "give each naming rule its own tag or repository (e.g. `{component}:{version}` and `{component}:latest`); when args make two rules equal, give them other values",
            );
            ok = false;
        }
        ok.then_some(names)
    }

    pub(super) fn image_ref(
        &mut self,
        s: &Spanned<String>,
        vars: &Vars,
        mirrors: &[(ImageRef, ImageRef)],
    ) -> Option<ImageRef> {
        let r = self.checked(
            s,
            vars,
            "image reference",
            "write `[registry/]name[:tag][@sha256:...]`, e.g. `debian:bookworm-slim`",
            |text| ImageRef::parse(text).map_err(|e| format!("is not valid: {e}")),
        )?;
        Some(apply_mirrors(r, mirrors))
    }

    pub(super) fn metadata(
        &mut self,
        raw: Option<&Spanned<raw::RawMetadata>>,
        packages: Option<&Spanned<raw::RawPackages>>,
        vars: &Vars,
    ) -> MetadataPolicy {
        let mut m = MetadataPolicy {
            oci_labels: true,
            ..Default::default()
        };
        if let Some(raw) = raw {
            let raw = raw.get_ref();
            if let Some(b) = &raw.oci_labels {
                m.oci_labels = *b.get_ref();
            }
            for (k, v) in &raw.env {
                let field = match v.get_ref().as_str() {
                    "revision" => MetadataField::Revision,
                    "branch" => MetadataField::Branch,
                    "source" => MetadataField::Source,
                    "created" => MetadataField::Created,
                    "version" => MetadataField::Version,
                    other => {
                        self.error(
                            ErrorCode::UnknownChoice,
                            v.span(),
                            format!("unknown metadata field `{other}`"),
                            "use one of: revision, branch, source, created, version",
                        );
                        continue;
                    }
                };
                m.env.push((k.get_ref().clone(), field));
                m.env_spans.push(v.span());
            }
            for (k, v) in &raw.labels {
                if let Some(v) = self.interpolate(v, vars) {
                    m.labels.insert(k.get_ref().clone(), v);
                }
            }
        }
        if let Some(p) = packages {
            let p = p.get_ref();
            m.apt_repo = p
                .apt_repo
                .as_ref()
                .and_then(|r| self.context_input(r, vars, InputKind::AptRepo))
                .filter(|s| !s.is_empty());
            m.find_links = p
                .find_links
                .as_ref()
                .and_then(|r| self.context_input(r, vars, InputKind::WheelDir))
                .filter(|s| !s.is_empty());
            m.pip_index = self.pip_index(
                p.index_url.as_ref(),
                &p.extra_index_url,
                &p.trusted_host,
                vars,
            );
            m.apt_mirror = p.apt_mirror.as_ref().and_then(|a| self.apt_mirror(a, vars));
            if let (Some(_), Some(a)) = (&p.apt_repo, &p.apt_mirror) {
                self.error(
                    ErrorCode::ConflictingKeys,
                    a.span(),
                    "[packages] names both `apt-repo` and `apt-mirror`",
                    "keep one: apt steps read one archive (a step's own `repo` or `mirror` still overrides it)",
                );
            }
            m.conda_channel = p
                .conda_channel
                .as_ref()
                .and_then(|r| self.context_input(r, vars, InputKind::CondaChannel))
                .filter(|s| !s.is_empty());
            self.stack_inputs = std::mem::take(&mut self.inputs);
        }
        m
    }
}

/// Replaces a reference by its mirror: an exact match, or a repository
/// match that keeps the tag when the mirror names none.
pub fn apply_mirrors(r: ImageRef, mirrors: &[(ImageRef, ImageRef)]) -> ImageRef {
    for (from, to) in mirrors {
        let exact = from.tag.is_some() || from.digest.is_some();
        if exact && from.normalized() == r.normalized() {
            return to.clone();
        }
        if !exact && from.name() == r.name() {
            let mut out = to.clone();
            if to.tag.is_none() && to.digest.is_none() {
                out.tag = r.tag.clone();
                out.digest = r.digest.clone();
            }
            return out;
        }
    }
    r
}

/// Parses a mirror list as `STRATA_MIRRORS` and `--mirror` give it:
/// `FROM=TO` pairs separated by `,` or line breaks, blanks skipped. Every
/// malformed pair is an error (never dropped), named with an example.
pub fn parse_mirror_list(text: &str) -> Result<Vec<(String, String)>, Vec<String>> {
    let mut pairs = Vec::new();
    let mut problems = Vec::new();
    for pair in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                pairs.push((from.trim().to_owned(), to.trim().to_owned()));
            }
            _ => problems.push(format!(
                "`{}` is not FROM=TO (example: debian:bookworm=registry.local/debian:bookworm)",
                super::values::shown(pair)
            )),
        }
    }
    if problems.is_empty() {
        Ok(pairs)
    } else {
        Err(problems)
    }
}

/// Whether two names are the same repository and tag (a missing tag is
/// `latest`), whatever their digests.
fn same_tag(a: &ImageRef, b: &ImageRef) -> bool {
    let tag = |r: &ImageRef| r.tag.clone().unwrap_or_else(|| "latest".into());
    a.registry == b.registry && a.repository == b.repository && tag(a) == tag(b)
}
