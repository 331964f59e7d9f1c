//! The whole file: `[stack]`, args and profiles, user, images, components, order.

use super::*;

impl Resolver<'_> {
    pub(super) fn stack(&mut self, raw: RawStackFile, overrides: &Overrides) -> Option<Stack> {
        let (meta_span, meta) = self.stack_table(raw.stack)?;
        let name = meta.name.get_ref().clone();
        let at_meta = meta_span.start..meta_span.start;
        self.profile_selection(&raw.profiles, overrides, &at_meta);
        let args = self.args(&raw.args, &raw.profiles, overrides, at_meta.clone());
        let condition_args: Vec<Arg> = args
            .iter()
            .cloned()
            .chain(platform_args(overrides, &at_meta))
            .collect();
        let values: BTreeMap<String, ArgValue> = condition_args
            .iter()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect();
        let vars = Vars {
            args: &values,
            stack: &name,
            component: None,
        };
        let profiles = profiles(&raw.profiles, &args);
        let user = raw.user.as_ref().and_then(|u| self.user(u, &vars));
        let mirrors = self.mirrors(&raw.mirrors, overrides, &vars);
        let third_party = self.third_party(&raw.third_party, &vars, &mirrors);
        let metadata = self.metadata(raw.metadata.as_ref(), raw.packages.as_ref(), &vars);
        let naming_rules = match &meta.image {
            Some(image) => self.naming_rules(image),
            None => default_naming_rule(&meta, &values).into_iter().collect(),
        };
        let names: BTreeSet<String> = raw.component.keys().map(|k| k.get_ref().clone()).collect();
        let ctx = Ctx {
            names: &names,
            vars,
            args: &condition_args,
            mirrors: &mirrors,
            user: user.as_ref(),
            rules: &naming_rules,
        };
        let components = self.components(&raw.component, &ctx, &at_meta)?;
        let default_target = self.default_target(&meta, &names);

        let components_index = components
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        Some(Stack {
            file: self.file.clone(),
            name,
            description: meta.description.map(Spanned::into_inner),
            args,
            profile: overrides.profile.clone(),
            profiles,
            user,
            third_party,
            metadata,
            components,
            default_target,
            allow: meta
                .allow
                .iter()
                .map(|a| (a.get_ref().clone(), a.span()))
                .collect(),
            warnings: Vec::new(),
            index: components_index,
        })
    }

    /// `[third-party]`: each image reference, mirrored.
    fn third_party(
        &mut self,
        raw: &BTreeMap<SpannedString, SpannedString>,
        vars: &Vars,
        mirrors: &[(ImageRef, ImageRef)],
    ) -> Vec<ThirdParty> {
        raw.iter()
            .filter_map(|(tname, r)| {
                let image = self.image_ref(r, vars, mirrors)?;
                Some(ThirdParty {
                    name: tname.get_ref().clone(),
                    image,
                    span: r.span(),
                })
            })
            .collect()
    }

    /// Every component, dependencies first; `None` when their references
    /// form a cycle. `ctx` is the stack's (no component's name in `vars`).
    fn components(
        &mut self,
        raw: &BTreeMap<SpannedString, Spanned<RawComponent>>,
        ctx: &Ctx,
        at_meta: &Range<usize>,
    ) -> Option<Vec<Component>> {
        if raw.is_empty() {
            self.error(
                ErrorCode::NoComponents,
                at_meta.clone(),
                "the stack has no components",
                "add a `[component.<name>]` table with a `from` key",
            );
        }
        let mut components = Vec::new();
        let mut ref_spans: BTreeMap<(String, String), Range<usize>> = BTreeMap::new();
        for (cname, c) in raw {
            let cname_s = cname.get_ref();
            if !valid_name(cname_s) {
                self.error(ErrorCode::InvalidName, cname.span(), format!("`{cname_s}` is not a valid component name"), "use lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit");
                continue;
            }
            let before = self.diags.len();
            if let Some(comp) = self.component(cname, c, &ctx.of(cname_s), &mut ref_spans) {
                components.push(comp);
            }
            let found = before..self.diags.len();
            self.owners.extend(found.map(|i| (i, cname_s.clone())));
        }
        let when_spans: BTreeMap<String, Range<usize>> = raw
            .iter()
            .filter_map(|(n, c)| Some((n.get_ref().clone(), c.get_ref().when.as_ref()?.span())))
            .collect();
        self.closure(&components, &ref_spans, &when_spans);
        self.platform_edges(&components, raw);
        self.order(components, &ref_spans)
    }

    /// `[stack]`, with its span; an error when it is missing, and for an
    /// invalid name.
    fn stack_table(
        &mut self,
        meta: Option<Spanned<raw::RawStack>>,
    ) -> Option<(Range<usize>, raw::RawStack)> {
        let Some(meta) = meta else {
            self.error(
                ErrorCode::NoStack,
                0..0,
                "the stack file has no [stack] table",
                "add `[stack]` with `name = \"...\"`",
            );
            return None;
        };
        let span = meta.span();
        let meta = meta.into_inner();
        let name = meta.name.get_ref();
        if !valid_name(name) {
            self.error(
                ErrorCode::InvalidName,
                meta.name.span(),
                format!("`{name}` is not a valid stack name"),
                "use lowercase letters, digits, `-`, `_` and `.`",
            );
        }
        Some((span, meta))
    }

    /// `--profile NAME` names one of the stack's profiles.
    fn profile_selection(
        &mut self,
        profiles: &BTreeMap<SpannedString, Spanned<raw::RawProfile>>,
        overrides: &Overrides,
        at_meta: &Range<usize>,
    ) {
        let Some(sel) = &overrides.profile else {
            return;
        };
        if profiles.keys().any(|k| k.get_ref() == sel) {
            return;
        }
        let names: Vec<&str> = profiles.keys().map(|k| k.get_ref().as_str()).collect();
        let close = self.closest(sel, names.iter().copied());
        let help = match close {
            Some(c) => format!("did you mean `{c}`?"),
            None if names.is_empty() => "this stack declares no [profiles]".to_owned(),
            None => format!("profiles of this stack: {}", names.join(", ")),
        };
        // Point at the profile meant, else at the declared ones.
        let span = close
            .or(names.first().copied())
            .and_then(|n| profiles.keys().find(|k| k.get_ref() == n))
            .map_or(at_meta.clone(), Spanned::span);
        self.error(
            ErrorCode::UnknownProfile,
            span,
            format!("unknown profile `{sel}`"),
            help,
        );
    }

    /// An enabled component that needs a disabled one is an error at the
    /// reference.
    fn closure(
        &mut self,
        components: &[Component],
        ref_spans: &BTreeMap<(String, String), Range<usize>>,
        when_spans: &BTreeMap<String, Range<usize>>,
    ) {
        let enabled: BTreeMap<&str, bool> = components
            .iter()
            .map(|c| (c.name.as_str(), c.enabled))
            .collect();
        for c in components.iter().filter(|c| c.enabled) {
            for (dep, kind) in c.dependencies() {
                if enabled.get(dep.as_str()) != Some(&false) {
                    continue;
                }
                let span = ref_spans
                    .get(&(c.name.clone(), dep.clone()))
                    .cloned()
                    .unwrap_or(c.span.clone());
                let dep_c = components.iter().find(|d| d.name == dep);
                let cond = dep_c.and_then(|d| d.condition.clone()).unwrap_or_default();
                let line = when_spans
                    .get(&dep)
                    .map(|s| self.file.line_col(s.start).line)
                    .unwrap_or(0);
                self.error(
                    ErrorCode::DisabledDependency,
                    span,
                    format!("component `{}` is enabled but needs `{dep}` ({}), which is disabled by `when = \"{cond}\"` (line {line})", c.name, kind.label()),
                    format!(
                        "enable `{dep}` too (change the args or profile), or give `{}` a condition that implies `{cond}`",
                        c.name
                    ),
                );
            }
        }
    }

    /// A component is built `from` (or is the GPU flavour of) a component
    /// of its own platform: a target image on a build-platform filesystem
    /// would hold programs the target cannot run, and the reverse would
    /// run the target's programs on the build platform. Copies may cross.
    fn platform_edges(
        &mut self,
        components: &[Component],
        raw: &BTreeMap<SpannedString, Spanned<RawComponent>>,
    ) {
        let on: BTreeMap<&str, RunsOn> = components
            .iter()
            .map(|c| (c.name.as_str(), c.platform))
            .collect();
        let tables: BTreeMap<&str, &RawComponent> = raw
            .iter()
            .map(|(k, t)| (k.get_ref().as_str(), t.get_ref()))
            .collect();
        for c in components {
            let table = tables.get(c.name.as_str());
            for (dep, kind) in c.dependencies() {
                let Some(&dep_on) = on.get(dep.as_str()) else {
                    continue;
                };
                let span = match kind {
                    EdgeKind::From => table.and_then(|t| t.from.as_ref()).map(Spanned::span),
                    EdgeKind::Gpu => table
                        .and_then(|t| t.gpu.as_ref())
                        .map(|g| g.get_ref().of.span()),
                    EdgeKind::CopyFrom => continue,
                };
                if dep_on == c.platform {
                    continue;
                }
                let span = span.unwrap_or_else(|| c.span.clone());
                let (message, help) = match (c.platform, kind) {
                    (RunsOn::Target, EdgeKind::Gpu) => (
                        format!("GPU flavour `{}` is of `{dep}`, which runs on the build platform: a flavour is an image of the target platform", c.name),
                        "make `gpu.of` a component of the target platform".to_owned(),
                    ),
                    (RunsOn::Target, _) => (
                        format!("component `{}` is built from `{dep}`, which runs on the build platform: its image would hold the build platform's programs, not the target's", c.name),
                        format!("start `{}` from an image of the target platform and copy what `{dep}` makes: `copy = [{{ from = \"{dep}\", src = ..., dst = ... }}]`; or give `{}` `platform = \"build\"` too", c.name, c.name),
                    ),
                    (RunsOn::Build, _) => (
                        format!("component `{}` runs on the build platform but is built from `{dep}`, which runs on the target platform", c.name),
                        format!("give `{dep}` `platform = \"build\"` too, or start `{}` from an image", c.name),
                    ),
                };
                self.error(ErrorCode::BuildPlatform, span, message, help);
            }
        }
    }

    /// `[stack].default`, which must name a component.
    fn default_target(&mut self, meta: &raw::RawStack, names: &BTreeSet<String>) -> Option<String> {
        let d = meta.default.as_ref()?;
        if names.contains(d.get_ref()) {
            return Some(d.get_ref().clone());
        }
        let help = self
            .closest(d.get_ref(), names.iter().map(String::as_str))
            .map(|c| format!("did you mean `{c}`?"))
            .unwrap_or_else(|| {
                format!(
                    "components: {}",
                    names.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            });
        self.error(
            ErrorCode::UnknownComponent,
            d.span(),
            format!("default target `{}` is not a component", d.get_ref()),
            help,
        );
        None
    }
}

/// Every profile, with the values that are valid for their args.
fn profiles(raw: &BTreeMap<SpannedString, Spanned<raw::RawProfile>>, args: &[Arg]) -> Vec<Profile> {
    raw.iter()
        .map(|(pname, p)| {
            let p = p.get_ref();
            let mut set = BTreeMap::new();
            for (k, v) in &p.args {
                if let Some(a) = args.iter().find(|a| &a.name == k.get_ref()) {
                    if let Ok(val) = typed_value(&a.kind, v.get_ref()) {
                        set.insert(k.get_ref().clone(), val);
                    }
                }
            }
            Profile {
                name: pname.get_ref().clone(),
                description: p.description.as_ref().map(|d| d.get_ref().clone()),
                args: set,
            }
        })
        .collect()
}

/// The naming rule without `[stack].image`: `{stack}/{component}:{tag}`
/// (or `:latest` without a `tag` arg) located at the stack's name; none
/// for an invalid name, which is reported already.
fn default_naming_rule(
    meta: &raw::RawStack,
    values: &BTreeMap<String, ArgValue>,
) -> Option<SpannedString> {
    if !valid_name(meta.name.get_ref()) {
        return None;
    }
    let tag = if values.contains_key("tag") {
        "{tag}"
    } else {
        "latest"
    };
    Some(Spanned::new(
        meta.name.span(),
        format!("{{stack}}/{{component}}:{tag}"),
    ))
}

/// The platform names (`TARGETARCH`, ...) as string args: they read like
/// args in `{...}` and `when`, but the graph lists only the stack's own.
fn platform_args(overrides: &Overrides, at_meta: &Range<usize>) -> Vec<Arg> {
    let platform = overrides.platform.clone().unwrap_or_default();
    platform
        .vars()
        .iter()
        .map(|(n, v)| Arg {
            name: (*n).to_owned(),
            kind: ArgType::String,
            default: ArgValue::String(v.clone()),
            value: ArgValue::String(v.clone()),
            origin: ArgOrigin::Override,
            description: None,
            span: at_meta.clone(),
            by_value: true,
        })
        .collect()
}
