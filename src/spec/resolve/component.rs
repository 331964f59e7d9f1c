//! `[component.<name>]`: its base, config and tests.

use super::*;

impl Resolver<'_> {
    pub(super) fn component(
        &mut self,
        name: &Spanned<String>,
        c: &Spanned<RawComponent>,
        ctx: &Ctx,
        ref_spans: &mut BTreeMap<(String, String), Range<usize>>,
    ) -> Option<Component> {
        let cname = name.get_ref().clone();
        let raw = c.get_ref();
        let vars = &ctx.vars;
        let before = self.diags.len();
        self.inputs.clear();

        let (enabled, condition) = self.when(raw, ctx);
        let (base, gpu) = self.base(raw, name, ctx, ref_spans)?;
        let (image, extra_tags) = self.component_images(raw, &cname, ctx);
        let run_as = self.run_as(raw, ctx);
        let (context, ignore) = self.context_dir(raw, vars);
        let steps = self.steps(raw, &cname, ctx, ref_spans);
        self.package_inputs(&steps, gpu.as_ref());
        let inputs = std::mem::take(&mut self.inputs);

        let config = self.config(raw, vars);
        let tests = self.tests(raw, run_as, ctx);
        let platform = self.runs_on(raw, &cname);
        let publish = self.publish(raw, platform, &cname);
        let allow = raw.allow.iter().map(|a| a.get_ref().clone()).collect();

        if self.diags[before..]
            .iter()
            .any(|d| d.severity == crate::spec::diag::Severity::Error)
        {
            return None;
        }
        Some(Component {
            name: cname,
            span: name.span(),
            description: raw.description.as_ref().map(|d| d.get_ref().clone()),
            enabled,
            condition,
            base,
            gpu,
            image,
            extra_tags,
            publish,
            platform,
            context,
            ignore,
            run_as,
            steps,
            config,
            allow,
            tests,
            origin: None,
            inputs,
            keys: key_spans_of(raw),
        })
    }

    /// The image the component is tagged as, and its extra tags: its
    /// `image` naming rules, else the stack's, else its name.
    fn component_images(
        &mut self,
        raw: &RawComponent,
        cname: &str,
        ctx: &Ctx,
    ) -> (ImageRef, Vec<ImageRef>) {
        let rules = match &raw.image {
            Some(image) => self.naming_rules(image),
            None => ctx.rules.to_vec(),
        };
        let mut names = if rules.is_empty() {
            Vec::new()
        } else {
            self.image_names(&rules, &ctx.vars).unwrap_or_default()
        }
        .into_iter();
        let image = names.next().unwrap_or_else(|| ImageRef {
            registry: "docker.io".into(),
            repository: cname.to_owned(),
            tag: None,
            digest: None,
        });
        (image, names.collect())
    }

    /// `context` (the stack file's directory when not written) and `ignore`.
    fn context_dir(&mut self, raw: &RawComponent, vars: &Vars) -> (String, Option<String>) {
        let context = match &raw.context {
            Some(p) => self
                .context_input(p, vars, InputKind::ContextDir)
                .unwrap_or_else(|| ".".into()),
            None => ".".into(),
        };
        let ignore = raw
            .ignore
            .as_ref()
            .and_then(|p| self.context_input(p, vars, InputKind::IgnoreFile));
        (context, ignore)
    }

    /// `when`: whether the component is enabled, and the condition's text.
    fn when(&mut self, raw: &RawComponent, ctx: &Ctx) -> (bool, Option<String>) {
        match &raw.when {
            None => (true, None),
            Some(w) => match expr::parse(w.get_ref()) {
                Err(e) => {
                    let span = self.inner(w, e.span.start, e.span.len().max(1));
                    self.error(
                        ErrorCode::ConditionSyntax,
                        span,
                        format!("bad condition: {}", e.message),
                        "conditions look like `spark && !gpu` or `python == '3.11'`",
                    );
                    (false, Some(w.get_ref().clone()))
                }
                Ok(e) => (
                    self.check_condition(&e, w, ctx.args),
                    Some(w.get_ref().clone()),
                ),
            },
        }
    }

    /// `from` or `gpu`: the base, and the GPU flavour; none when `from`
    /// cannot be interpolated.
    fn base(
        &mut self,
        raw: &RawComponent,
        name: &Spanned<String>,
        ctx: &Ctx,
        ref_spans: &mut BTreeMap<(String, String), Range<usize>>,
    ) -> Option<(Base, Option<Gpu>)> {
        let cname = name.get_ref().clone();
        let vars = &ctx.vars;
        let mut gpu = None;
        let base = match (&raw.from, &raw.gpu) {
            (Some(_), Some(g)) => {
                self.error(
                    ErrorCode::MissingBase,
                    g.span(),
                    format!("component `{cname}` has both `from` and `gpu`"),
                    "a GPU flavour takes its base from `gpu.base`; remove `from`",
                );
                Base::Scratch
            }
            (None, None) => {
                self.error(
                    ErrorCode::MissingBase,
                    name.span(),
                    format!("component `{cname}` has no `from`"),
                    "add `from = \"<component or image>\"`, or `gpu = { of = ..., base = ... }`",
                );
                Base::Scratch
            }
            (Some(f), None) => {
                let text = self.interpolate(f, vars)?;
                if ctx.names.contains(&text) {
                    if text == cname {
                        self.error(
                            ErrorCode::SelfReference,
                            f.span(),
                            format!("component `{cname}` is built from itself"),
                            "name another component or an external image",
                        );
                    }
                    ref_spans.insert((cname.clone(), text.clone()), f.span());
                    Base::Component(text)
                } else if text == "scratch" || self.bare_name(f.span(), &text, ctx.names) {
                    Base::Scratch
                } else {
                    match ImageRef::parse(&text) {
                        Ok(r) => Base::Image(apply_mirrors(r, ctx.mirrors)),
                        Err(e) => {
                            let help = match self.closest(&text, ctx.names.iter().map(String::as_str)) {
                                Some(c) => format!("did you mean the component `{c}`?"),
                                None => format!("name a component ({}) or an image such as `debian:bookworm-slim`", ctx.names.iter().cloned().collect::<Vec<_>>().join(", ")),
                            };
                            self.error(ErrorCode::InvalidImage, f.span(), format!("`{text}` is neither a component of this stack nor a valid image reference ({e})"), help);
                            Base::Scratch
                        }
                    }
                }
            }
            (None, Some(g)) => {
                let (base, g) = self.gpu(g, &cname, ctx, ref_spans);
                gpu = g;
                base
            }
        };
        Some((base, gpu))
    }

    /// `platform`: where the component's base and steps run. A GPU
    /// flavour is an image to run, so it is always the target's.
    fn runs_on(&mut self, raw: &RawComponent, cname: &str) -> RunsOn {
        let Some(p) = &raw.platform else {
            return RunsOn::Target;
        };
        let on = match p.get_ref().as_str() {
            "target" => RunsOn::Target,
            "build" => RunsOn::Build,
            other => {
                self.error(
                    ErrorCode::UnknownChoice,
                    p.span(),
                    format!("unknown platform `{other}`"),
                    "write `platform = \"build\"` (the build's own platform, for a builder whose output others copy) or `\"target\"` (the default: the platform being built for)",
                );
                RunsOn::Target
            }
        };
        if on == RunsOn::Build && raw.gpu.is_some() {
            self.error(
                ErrorCode::BuildPlatform,
                p.span(),
                format!("GPU flavour `{cname}` cannot run on the build platform: a flavour is an image of the target platform"),
                "remove `platform = \"build\"`",
            );
            return RunsOn::Target;
        }
        on
    }

    /// `publish`: true by default; a build-platform component is never
    /// published, as its filesystem holds the build platform's programs
    /// and would be pushed under the target platform's name.
    fn publish(&mut self, raw: &RawComponent, on: RunsOn, cname: &str) -> bool {
        match (&raw.publish, on) {
            (Some(p), RunsOn::Build) if *p.get_ref() => {
                self.error(
                    ErrorCode::BuildPlatform,
                    p.span(),
                    format!("component `{cname}` runs on the build platform and cannot be published: its image holds the build platform's programs, not the target platform's"),
                    format!("remove `publish = true`, and publish a component of the target platform that copies what `{cname}` makes (`copy = [{{ from = \"{cname}\", ... }}]`)"),
                );
                false
            }
            (Some(p), _) => *p.get_ref(),
            (None, RunsOn::Build) => false,
            (None, RunsOn::Target) => true,
        }
    }

    /// `user`: the policy user, root, or an error for another name.
    fn run_as(&mut self, raw: &RawComponent, ctx: &Ctx) -> RunAs {
        match raw.user.as_ref() {
            None => {
                if ctx.user.is_some() {
                    RunAs::Policy
                } else {
                    RunAs::Root
                }
            }
            Some(u) if u.get_ref() == "root" => RunAs::Root,
            Some(u) => match ctx.user {
                Some(p) if p.name == *u.get_ref() => RunAs::Policy,
                Some(p) => {
                    self.error(ErrorCode::UnknownUser, u.span(), format!("component user `{}` conflicts with the stack's user policy (`{}`)", u.get_ref(), p.name), format!("a component runs as the policy user `{}` or as `root`; change [user] to change it everywhere", p.name));
                    RunAs::Policy
                }
                None => {
                    self.error(
                        ErrorCode::UnknownUser,
                        u.span(),
                        format!("component user `{}` is not defined", u.get_ref()),
                        "declare it in [user] (name, uid, gid), or write `user = \"root\"`",
                    );
                    RunAs::Root
                }
            },
        }
    }

    /// The steps: shorthand fields first, in a fixed order, then `steps`.
    fn steps(
        &mut self,
        raw: &RawComponent,
        cname: &str,
        ctx: &Ctx,
        ref_spans: &mut BTreeMap<(String, String), Range<usize>>,
    ) -> Vec<Step> {
        let vars = &ctx.vars;
        let mut steps = Vec::new();
        if let Some(a) = &raw.apt {
            steps.extend(self.apt(a, vars));
        }
        if let Some(d) = &raw.dnf {
            steps.extend(self.os_packages(d, vars, true));
        }
        if let Some(a) = &raw.apk {
            steps.extend(self.os_packages(a, vars, false));
        }
        for c in &raw.conda {
            steps.extend(self.conda(c, vars));
        }
        if let Some(p) = &raw.pip {
            steps.extend(self.pip(p, vars));
        }
        for c in &raw.copy {
            steps.extend(self.copy(c, cname, ctx, ref_spans));
        }
        for r in &raw.run {
            steps.extend(self.run(r, vars));
        }
        for s in &raw.steps {
            steps.extend(self.step(s, cname, ctx, ref_spans));
        }
        steps
    }

    /// The `[packages]` paths that steps without their own fall back on,
    /// as inputs of this component.
    fn package_inputs(&mut self, steps: &[Step], gpu: Option<&Gpu>) {
        let all_steps = steps.iter().chain(gpu.into_iter().flat_map(|g| &g.steps));
        let (mut apt_default, mut pip_default, mut conda_default) = (false, false, false);
        for s in all_steps {
            match &s.kind {
                StepKind::Apt(a) if a.repo.is_none() && a.mirror.is_none() => apt_default = true,
                StepKind::Pip(p) if p.find_links.is_none() => pip_default = true,
                StepKind::Conda(c) if c.channel_dir.is_none() => conda_default = true,
                _ => {}
            }
        }
        let gpu_repo = gpu.as_ref().is_some_and(|g| g.apt_repo.is_some());
        for i in &self.stack_inputs {
            let used = match i.kind {
                InputKind::AptRepo => apt_default && !gpu_repo,
                InputKind::WheelDir => pip_default,
                InputKind::CondaChannel => conda_default,
                _ => false,
            };
            if used {
                self.inputs.push(i.clone());
            }
        }
    }

    pub(super) fn config(&mut self, raw: &RawComponent, vars: &Vars) -> ConfigSpec {
        let mut cfg = ConfigSpec::default();
        for (k, v) in &raw.env {
            self.env_name(k);
            if let Some(v) = self.interpolate(v, vars) {
                cfg.env.push((k.get_ref().clone(), v));
            }
        }
        if let Some(w) = &raw.workdir {
            cfg.workdir = self.image_path(w, vars, "workdir");
        }
        for (k, v) in &raw.labels {
            if let Some(v) = self.interpolate(v, vars) {
                cfg.labels.insert(k.get_ref().clone(), v);
            }
        }
        cfg.expose = raw.expose.iter().filter_map(|p| self.port(p)).collect();
        for v in &raw.volumes {
            if !v.get_ref().starts_with('/') {
                self.error(
                    ErrorCode::NotAbsolute,
                    v.span(),
                    format!("volume `{}` must be an absolute path", v.get_ref()),
                    "write it starting with `/`",
                );
            } else {
                cfg.volumes.push(v.get_ref().clone());
            }
        }
        let exec = Command::argv;
        cfg.entrypoint = raw.entrypoint.as_ref().map(|c| exec(c.get_ref()));
        cfg.cmd = raw.cmd.as_ref().map(|c| exec(c.get_ref()));
        cfg.healthcheck = raw
            .healthcheck
            .as_ref()
            .map(|h| self.healthcheck(h.get_ref()));
        cfg.stop_signal = raw.stop_signal.as_ref().map(|s| s.get_ref().clone());
        cfg
    }

    /// One `expose` entry: `port[/tcp|udp|sctp]`, as a number or a string.
    fn port(&mut self, p: &Spanned<toml::Value>) -> Option<String> {
        let text = match p.get_ref() {
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let (port, proto) = text.split_once('/').unwrap_or((&text, "tcp"));
        match (port.parse::<u16>(), proto) {
            (Ok(n), "tcp" | "udp" | "sctp") if n > 0 => Some(format!("{n}/{proto}")),
            _ => {
                self.error(
                    ErrorCode::InvalidSetting,
                    p.span(),
                    format!("`{text}` is not a port"),
                    "write a port number 1-65535, optionally with /tcp, /udp or /sctp",
                );
                None
            }
        }
    }

    /// `healthcheck`: its test as the image config writes it, and its timings.
    fn healthcheck(&mut self, h: &raw::RawHealthcheck) -> Healthcheck {
        let test = match h.cmd.get_ref() {
            Command::Exec(a) if a.first().is_some_and(|x| x == "NONE") => {
                vec!["NONE".to_owned()]
            }
            Command::Exec(a) => std::iter::once("CMD".to_owned())
                .chain(a.iter().cloned())
                .collect(),
            Command::Shell(s) => vec!["CMD-SHELL".to_owned(), s.clone()],
        };
        let mut dur = |d: &Option<SpannedString>| {
            d.as_ref().and_then(|d| match parse_duration(d.get_ref()) {
                Some(ns) => Some(ns),
                None => {
                    self.error(
                        ErrorCode::InvalidSetting,
                        d.span(),
                        format!("`{}` is not a duration", d.get_ref()),
                        "write e.g. \"30s\", \"1m30s\" or \"500ms\"",
                    );
                    None
                }
            })
        };
        let interval_ns = dur(&h.interval);
        let timeout_ns = dur(&h.timeout);
        let start_period_ns = dur(&h.start_period);
        Healthcheck {
            test,
            interval_ns,
            timeout_ns,
            start_period_ns,
            retries: h.retries.as_ref().and_then(|r| {
                let n = u32::try_from(*r.get_ref()).ok();
                if n.is_none() {
                    self.error(
                        ErrorCode::InvalidSetting,
                        r.span(),
                        format!("retries {} is out of range", r.get_ref()),
                        "give a count between 0 and 4294967295",
                    );
                }
                n
            }),
        }
    }

    pub(super) fn env_name(&mut self, k: &SpannedString) {
        let ok = k
            .get_ref()
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && k.get_ref()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !ok {
            self.error(
                ErrorCode::InvalidName,
                k.span(),
                format!("`{}` is not a valid environment variable name", k.get_ref()),
                "use letters, digits and `_`, not starting with a digit",
            );
        }
    }

    /// A component's `test` entries: run in the finished image, as its
    /// user unless `as` says otherwise, without network unless asked.
    pub(super) fn tests(&mut self, raw: &RawComponent, run_as: RunAs, ctx: &Ctx) -> Vec<Test> {
        let mut tests = Vec::new();
        for t in &raw.test {
            let spec = t.get_ref();
            let args = spec.cmd.get_ref().argv();
            if args.first().is_none_or(|a| a.trim().is_empty())
                || args.last().is_none_or(|a| a.trim().is_empty())
            {
                self.error(
                    ErrorCode::EmptyStep,
                    t.span(),
                    "test has an empty command",
                    "give a command that fails when the image is broken, e.g. `python -c 'import six'`",
                );
                continue;
            }
            let network = self.network(spec.network.as_ref(), Network::None);
            let as_user = self.as_user(spec.run_as.as_ref(), run_as == RunAs::Policy);
            if let (Some(a), None, true) = (&spec.run_as, ctx.user, as_user) {
                self.error(
                    ErrorCode::UnknownUser,
                    a.span(),
                    "`as = \"user\"` but the stack has no [user] policy",
                    "declare [user], or leave `as` out to test as the image's user",
                );
            }
            let name = spec.name.as_ref().map(|n| n.get_ref().clone());
            if let Some(n) = spec.name.as_ref().filter(|n| n.get_ref().trim().is_empty()) {
                self.error(
                    ErrorCode::EmptyStep,
                    n.span(),
                    "test name is empty",
                    "name it, or leave `name` out to show the command",
                );
            }
            tests.push(Test {
                args,
                name,
                network,
                as_user,
                span: t.span(),
            });
        }
        tests
    }
}

pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')
        })
}

/// `"1m30s"`, `"500ms"`, `"2h"` in nanoseconds.
pub(super) fn parse_duration(s: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult: u64 = match &rest[..unit] {
            "ns" => 1,
            "us" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
        rest = &rest[unit..];
    }
    Some(total)
}

/// Where the component's keys are written.
fn key_spans_of(raw: &RawComponent) -> KeySpans {
    KeySpans {
        from: raw.from.as_ref().map(Spanned::span),
        gpu_base: raw.gpu.as_ref().map(|g| g.get_ref().base.span()),
        user: raw.user.as_ref().map(Spanned::span),
        platform: raw.platform.as_ref().map(Spanned::span),
        allow: raw
            .allow
            .iter()
            .map(|a| (a.get_ref().clone(), a.span()))
            .collect(),
        env: super::steps::key_spans(&raw.env),
    }
}
