//! Steps: one module per kind, as in `lower/`.

use super::*;

mod apt;
mod conda;
mod copy;
mod os;
mod pip;
mod run;

/// Each key of a table of variables, with where it is written.
pub(in crate::spec::resolve) fn key_spans(
    table: &BTreeMap<SpannedString, SpannedString>,
) -> Vec<(String, Range<usize>)> {
    table
        .keys()
        .map(|k| (k.get_ref().clone(), k.span()))
        .collect()
}

impl Resolver<'_> {
    pub(in crate::spec::resolve) fn step(
        &mut self,
        s: &Spanned<RawStep>,
        cname: &str,
        ctx: &Ctx,
        ref_spans: &mut BTreeMap<(String, String), Range<usize>>,
    ) -> Option<Step> {
        let raw = s.get_ref();
        let kinds = [
            raw.run.is_some(),
            raw.copy.is_some(),
            raw.apt.is_some(),
            raw.dnf.is_some(),
            raw.apk.is_some(),
            raw.pip.is_some(),
            raw.conda.is_some(),
            raw.env.is_some(),
            raw.workdir.is_some(),
        ];
        let n = kinds.iter().filter(|k| **k).count();
        if n != 1 {
            self.error(
                ErrorCode::EmptyStep,
                s.span(),
                if n == 0 {
                    "this step does nothing".to_owned()
                } else {
                    format!("this step has {n} kinds; a step has exactly one")
                },
                "write one of run, copy, apt, dnf, apk, pip, conda, env or workdir per step",
            );
            return None;
        }
        if let Some(r) = &raw.run {
            return self.run(r, &ctx.vars);
        }
        if let Some(c) = &raw.copy {
            return self.copy(c, cname, ctx, ref_spans);
        }
        if let Some(a) = &raw.apt {
            return self.apt(a, &ctx.vars);
        }
        if let Some(d) = &raw.dnf {
            return self.os_packages(d, &ctx.vars, true);
        }
        if let Some(a) = &raw.apk {
            return self.os_packages(a, &ctx.vars, false);
        }
        if let Some(p) = &raw.pip {
            return self.pip(p, &ctx.vars);
        }
        if let Some(c) = &raw.conda {
            return self.conda(c, &ctx.vars);
        }
        if let Some(e) = &raw.env {
            let mut vars = Vec::new();
            for (k, v) in e.get_ref() {
                self.env_name(k);
                vars.extend(
                    self.interpolate(v, &ctx.vars)
                        .map(|v| (k.get_ref().clone(), v)),
                );
            }
            let keys = key_spans(e.get_ref());
            return Some(Step {
                kind: StepKind::Env { vars, keys },
                span: e.span(),
            });
        }
        let w = raw.workdir.as_ref()?;
        let path = self.image_path(w, &ctx.vars, "workdir")?;
        Some(Step {
            kind: StepKind::Workdir { path },
            span: w.span(),
        })
    }

    /// A `network` setting; `default` when it is not written.
    pub(in crate::spec::resolve) fn network(
        &mut self,
        n: Option<&SpannedString>,
        default: Network,
    ) -> Network {
        let Some(n) = n else { return default };
        match n.get_ref().as_str() {
            "default" | "sandbox" => Network::Default,
            "none" => Network::None,
            "host" => Network::Host,
            other => {
                self.error(
                    ErrorCode::UnknownChoice,
                    n.span(),
                    format!("unknown network `{other}`"),
                    "use none, default or host",
                );
                default
            }
        }
    }

    /// An apt mirror table.
    pub(in crate::spec::resolve) fn apt_mirror(
        &mut self,
        m: &Spanned<raw::RawAptMirror>,
        vars: &Vars,
    ) -> Option<AptMirror> {
        let m = m.get_ref();
        let url = self.remote_url(&m.url, vars, "apt mirror", &["http", "https"]);
        let suite = self.checked(
            &m.suite,
            vars,
            "suite",
            "write the archive's suite, such as `bookworm`",
            |v| values::apt_word(v).map(|()| v.to_owned()),
        );
        let mut components = self.words(
            &m.components,
            vars,
            values::apt_word,
            "component",
            "write the archive's components, such as `main`",
        );
        if m.components.is_empty() {
            components.push("main".to_owned());
        }
        Some(AptMirror {
            url: url?,
            suite: suite?,
            components,
            trusted: m.trusted.as_ref().is_some_and(|t| *t.get_ref()),
        })
    }

    /// pip's `index-url`, `extra-index-url` and `trusted-host`.
    pub(in crate::spec::resolve) fn pip_index(
        &mut self,
        index_url: Option<&SpannedString>,
        extra: &[SpannedString],
        trusted: &[SpannedString],
        vars: &Vars,
    ) -> PipIndex {
        let index_url =
            index_url.and_then(|u| self.remote_url(u, vars, "index URL", &["https", "http"]));
        let extra_index_urls = extra
            .iter()
            .filter_map(|u| self.remote_url(u, vars, "index URL", &["https", "http"]))
            .collect();
        let trusted_hosts = self.words(
            trusted,
            vars,
            values::host,
            "trusted host",
            "write a host name, optionally with its port: `pypi.site.local:8080`",
        );
        PipIndex {
            index_url,
            extra_index_urls,
            trusted_hosts,
        }
    }

    /// An `as` setting (true for the policy user); `default` when it is not written.
    pub(in crate::spec::resolve) fn as_user(
        &mut self,
        a: Option<&SpannedString>,
        default: bool,
    ) -> bool {
        let Some(a) = a else { return default };
        match a.get_ref().as_str() {
            "root" => false,
            "user" => true,
            other => {
                self.error(
                    ErrorCode::UnknownChoice,
                    a.span(),
                    format!("unknown `as = \"{other}\"`"),
                    "use `root` or `user`",
                );
                default
            }
        }
    }
}
