//! The whole file: `[stack]`, args and profiles, user, images, components, order.

use super::*;

impl Resolver<'_> {
    pub(super) fn stack(&mut self, raw: RawStackFile, overrides: &Overrides) -> Option<Stack> {
        let Some(meta) = raw.stack else {
            self.error(
                ErrorCode::NoStack,
                0..0,
                "the stack file has no [stack] table",
                "add `[stack]` with `name = \"...\"`",
            );
            return None;
        };
        let meta_span = meta.span();
        let meta = meta.into_inner();
        let name = meta.name.get_ref().clone();
        if !valid_name(&name) {
            self.error(
                ErrorCode::InvalidName,
                meta.name.span(),
                format!("`{name}` is not a valid stack name"),
                "use lowercase letters, digits, `-`, `_` and `.`",
            );
        }

        // Profiles first: they are part of the arg values.
        let mut profiles = Vec::new();
        let mut profile_spans = BTreeMap::new();
        for (pname, p) in &raw.profiles {
            let p_span = p.span();
            let p = p.get_ref();
            profile_spans.insert(pname.get_ref().clone(), (pname.span(), p_span));
            profiles.push((pname, p));
        }
        if let Some(sel) = &overrides.profile {
            if !profile_spans.contains_key(sel) {
                let names: Vec<&str> = profile_spans.keys().map(String::as_str).collect();
                let help = match self.closest(sel, names.iter().copied()) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None if names.is_empty() => "this stack declares no [profiles]".to_owned(),
                    None => format!("profiles of this stack: {}", names.join(", ")),
                };
                // Point at the profile meant, else at the declared ones.
                let span = self
                    .closest(sel, names.iter().copied())
                    .or(names.first().copied())
                    .and_then(|n| profile_spans.get(n))
                    .map_or(meta_span.start..meta_span.start, |(n, _)| n.clone());
                self.error(
                    ErrorCode::UnknownProfile,
                    span,
                    format!("unknown profile `{sel}`"),
                    help,
                );
            }
        }

        let args = self.args(
            &raw.args,
            &raw.profiles,
            overrides,
            meta_span.start..meta_span.start,
        );
        let values: BTreeMap<String, ArgValue> = args
            .iter()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect();
        let vars = Vars {
            args: &values,
            stack: &name,
            component: None,
        };

        let mut profiles_out = Vec::new();
        for (pname, p) in profiles {
            let mut set = BTreeMap::new();
            for (k, v) in &p.args {
                if let Some(a) = args.iter().find(|a| &a.name == k.get_ref()) {
                    if let Ok(val) = typed_value(&a.kind, v.get_ref()) {
                        set.insert(k.get_ref().clone(), val);
                    }
                }
            }
            profiles_out.push(Profile {
                name: pname.get_ref().clone(),
                description: p.description.as_ref().map(|d| d.get_ref().clone()),
                args: set,
            });
        }

        let user = raw.user.as_ref().and_then(|u| self.user(u, &vars));
        let mirrors = self.mirrors(&raw.mirrors, overrides, &vars);
        let mut third_party = Vec::new();
        for (tname, r) in &raw.third_party {
            if let Some(image) = self.image_ref(r, &vars, &mirrors) {
                third_party.push(ThirdParty {
                    name: tname.get_ref().clone(),
                    image,
                });
            }
        }
        let metadata = self.metadata(raw.metadata.as_ref(), raw.packages.as_ref(), &vars);

        let naming_rule = match &meta.image {
            Some(rule) => Some(rule.clone()),
            // The invalid stack name is reported; images named from it are not.
            None if !valid_name(&name) => None,
            None => {
                let tag = if values.contains_key("tag") {
                    "{tag}"
                } else {
                    "latest"
                };
                // Errors in the default rule come from the stack name.
                Some(Spanned::new(
                    meta.name.span(),
                    format!("{{stack}}/{{component}}:{tag}"),
                ))
            }
        };

        let names: BTreeSet<String> = raw.component.keys().map(|k| k.get_ref().clone()).collect();
        if raw.component.is_empty() {
            self.error(
                ErrorCode::NoComponents,
                meta_span.start..meta_span.start,
                "the stack has no components",
                "add a `[component.<name>]` table with a `from` key",
            );
        }
        let mut components = Vec::new();
        let mut when_spans = BTreeMap::new();
        let mut ref_spans: BTreeMap<(String, String), Range<usize>> = BTreeMap::new();
        for (cname, c) in &raw.component {
            let cname_s = cname.get_ref();
            if !valid_name(cname_s) {
                self.error(ErrorCode::InvalidName, cname.span(), format!("`{cname_s}` is not a valid component name"), "use lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit");
                continue;
            }
            if let Some(w) = &c.get_ref().when {
                when_spans.insert(cname_s.clone(), w.span());
            }
            let ctx = Ctx {
                names: &names,
                vars: Vars {
                    args: &values,
                    stack: &name,
                    component: Some(cname_s),
                },
                args: &args,
                mirrors: &mirrors,
                user: user.as_ref(),
                rule: naming_rule.as_ref(),
            };
            let before = self.diags.len();
            if let Some(comp) = self.component(cname, c, &ctx, &mut ref_spans) {
                components.push(comp);
            }
            let found = before..self.diags.len();
            self.owners.extend(found.map(|i| (i, cname_s.clone())));
        }

        // A disabled component that an enabled one needs.
        let enabled: BTreeMap<&str, bool> = components
            .iter()
            .map(|c| (c.name.as_str(), c.enabled))
            .collect();
        let mut closure_errors = Vec::new();
        for c in components.iter().filter(|c| c.enabled) {
            for (dep, kind) in c.dependencies() {
                if enabled.get(dep.as_str()) == Some(&false) {
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
                    closure_errors.push(Diagnostic::error(
                        ErrorCode::DisabledDependency,
                        span,
                        format!("component `{}` is enabled but needs `{dep}` ({}), which is disabled by `when = \"{cond}\"` (line {line})", c.name, kind.label()),
                    ).with_help(format!(
                        "enable `{dep}` too (change the args or profile), or give `{}` a condition that implies `{cond}`",
                        c.name
                    )));
                }
            }
        }
        self.diags.extend(closure_errors);

        let components = self.order(components, &ref_spans)?;

        let default_target = match &meta.default {
            Some(d) if !names.contains(d.get_ref()) => {
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
            Some(d) => Some(d.get_ref().clone()),
            None => None,
        };

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
            profiles: profiles_out,
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
            spans: Default::default(),
            index: components_index,
        })
    }
}
