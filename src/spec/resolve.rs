//! Raw stack file -> validated [`Stack`]: types, references, conditions,
//! the user policy and the graph's shape, with every problem located.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde_spanned::Spanned;

use super::diag::{closest, Diagnostic, Diagnostics, SourceFile, Suggestions};
use super::expr::{self, Expr, Literal};
use super::image_ref::ImageRef;
use super::raw::{self, Command, RawArg, RawComponent, RawStackFile, RawStep, SpannedString};
use super::values;
use crate::graph::*;

mod gpu;

/// Values that come from outside the stack file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--arg k=v` / `build-arg:k=v`, in the order given.
    pub args: Vec<(String, String)>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--mirror from=to` / `STRATA_MIRRORS`.
    pub mirrors: Vec<(String, String)>,
}

/// Largest stack file accepted (BuildKit's 4 MiB message limit applies to it too).
pub const MAX_FILE_SIZE: usize = 4 << 20;
const MAX_NESTING: usize = 128;

/// Build args that belong to BuildKit or Strata, never to the stack.
pub fn is_reserved_arg(name: &str) -> bool {
    name.starts_with("BUILDKIT_")
        || name.starts_with("STRATA_")
        || matches!(
            name,
            "SOURCE_DATE_EPOCH"
                | "HTTP_PROXY"
                | "HTTPS_PROXY"
                | "FTP_PROXY"
                | "NO_PROXY"
                | "ALL_PROXY"
                | "http_proxy"
                | "https_proxy"
                | "ftp_proxy"
                | "no_proxy"
                | "all_proxy"
        )
}

/// Loads a stack file from bytes: decoding, parsing and resolving.
pub fn load(name: &str, bytes: &[u8], overrides: &Overrides) -> Result<Stack, Diagnostics> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_owned(),
        Err(e) => {
            let at = e.valid_up_to();
            let file = SourceFile::new(name, String::from_utf8_lossy(bytes).into_owned());
            let d = Diagnostic::error(
                at..at + 1,
                format!("the stack file is not valid UTF-8 (byte {at})"),
            )
            .with_help("save the file as UTF-8 text");
            return Err(Diagnostics {
                file,
                items: vec![d],
            });
        }
    };
    resolve(SourceFile::new(name, text), overrides)
}

/// Parses and resolves a stack file.
pub fn resolve(file: SourceFile, overrides: &Overrides) -> Result<Stack, Diagnostics> {
    let fail = |file: SourceFile, d: Diagnostic| {
        Err(Diagnostics {
            file,
            items: vec![d],
        })
    };
    if file.text.len() > MAX_FILE_SIZE {
        let d = Diagnostic::error(
            0..0,
            format!(
                "the stack file is {} bytes; the limit is {} bytes",
                file.text.len(),
                MAX_FILE_SIZE
            ),
        )
        .with_help("a stack file describes images; keep data in the build context");
        return fail(file, d);
    }
    if let Some(at) = too_deep(&file.text) {
        let d = Diagnostic::error(
            at..at + 1,
            format!("values are nested more than {MAX_NESTING} levels deep"),
        )
        .with_help("flatten the arrays or inline tables");
        return fail(file, d);
    }
    let raw = match raw::parse(&file.text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = match e.span() {
                Some(span) => span,
                None if e.message() == "recursion limit" => deep_key(&file.text).unwrap_or(0..0),
                None => 0..0,
            };
            let d = toml_error(&e, span, &file.text);
            return fail(file, d);
        }
    };
    let mut r = Resolver {
        diags: Vec::new(),
        file: &file,
        interpolated: 0,
        suggestions: Suggestions::default(),
    };
    let stack = r.stack(raw, overrides);
    let mut items = r.diags;
    items.sort_by_key(|d| (d.span.start, d.span.end));
    items.dedup();
    match stack {
        Some(stack)
            if !items
                .iter()
                .any(|d| d.severity == super::diag::Severity::Error) =>
        {
            crate::lint::finish(stack, items)
        }
        _ => Err(Diagnostics { file, items }),
    }
}

fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str: Option<u8> = None;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match in_str {
            Some(q) => {
                if c == b'\\' && q == b'"' {
                    i += 1;
                } else if c == q {
                    in_str = None;
                }
            }
            None => match c {
                b'"' | b'\'' => in_str = Some(c),
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Some(i);
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b'\n' => {}
                _ => {}
            },
        }
        i += 1;
    }
    None
}

/// The first line with a key of toml's 80 levels or more: its
/// "recursion limit" error has no span.
fn deep_key(text: &str) -> Option<Range<usize>> {
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        if line.matches('.').count() >= 79 {
            let trimmed = line.trim_start();
            let from = start + line.len() - trimmed.len();
            return Some(from..from + trimmed.trim_end().len());
        }
        start += line.len();
    }
    None
}

fn toml_error(e: &toml::de::Error, span: Range<usize>, text: &str) -> Diagnostic {
    let msg = e.message().trim().to_owned();
    let first = msg.lines().next().unwrap_or("invalid TOML").to_owned();
    let mut d = Diagnostic::error(span.clone(), first.clone());
    if let Some(rest) = first.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or("");
        let expected: Vec<&str> = msg
            .split("expected ")
            .nth(1)
            .map(|s| {
                s.split(['`', ',', ' '])
                    .filter(|w| !w.is_empty() && *w != "one" && *w != "of" && *w != "or")
                    .collect()
            })
            .unwrap_or_default();
        d.message = format!("unknown key `{field}`");
        d = match closest(field, expected.iter().copied()) {
            Some(c) => d.with_help(format!("did you mean `{c}`?")),
            None => d.with_help(format!("allowed keys here: {}", expected.join(", "))),
        };
    } else if first.starts_with("duplicate key") {
        if let Some(key) = text
            .get(span)
            .filter(|k| first == "duplicate key" && !k.is_empty())
        {
            d.message = format!("duplicate key `{key}`");
        }
        d = d.with_help("each key may appear once; merge the two definitions");
    } else if first.starts_with("missing field") {
        d.message = first.replace("missing field", "missing key");
        d = d.with_help("add the key to this table");
    } else if first.starts_with("invalid type") {
        // serde names our types (`expected struct RawStack`): say what is written.
        if let Some(i) = first.find("expected struct ") {
            d.message = format!("{}expected a table", &first[..i]);
        }
        d = d.with_help("see docs/stack-file.md for the expected form of this key");
    } else if first.contains("string") && first.contains("expected `") {
        d = d.with_help(
            "close the string on the same line; use `\"\"\"` for text over several lines",
        );
    } else if first == "recursion limit" {
        d.message = "a key is nested 80 or more levels deep".into();
        d = d.with_help("flatten the dotted key or table header");
    } else if first.starts_with("unclosed") {
        d = d.with_help("close it where the value or header ends");
    } else {
        d = d.with_help("this is not valid TOML; write `key = value`, `[table]` or `[[array-of-tables]]` (https://toml.io)");
    }
    d
}

struct Resolver<'a> {
    diags: Vec<Diagnostic>,
    file: &'a SourceFile,
    /// Bytes all interpolations have produced so far (bounded by `values::MAX_INTERPOLATED`).
    interpolated: usize,
    /// Edit-distance work left for did-you-mean hints in this file.
    suggestions: Suggestions,
}

/// Values `{name}` may refer to in interpolated strings.
struct Vars<'a> {
    args: &'a BTreeMap<String, ArgValue>,
    stack: &'a str,
    component: Option<&'a str>,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            "stack" => Some(self.stack.to_owned()),
            "component" => self.component.map(str::to_owned),
            _ => self.args.get(name).map(ToString::to_string),
        }
    }
}

impl Resolver<'_> {
    fn error(&mut self, span: Range<usize>, msg: impl Into<String>, help: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(span, msg).with_help(help));
    }

    /// Span of `len` bytes at `offset` in a string's value: skips the
    /// opening delimiter (`"`, `'`, `"""` or `'''` and the newline after
    /// it). When the source differs from the value (escapes, line-ending
    /// backslashes), offsets do not map, so it is the whole string's span.
    fn inner(&self, s: &Spanned<String>, offset: usize, len: usize) -> Range<usize> {
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

    fn interpolate(&mut self, s: &Spanned<String>, vars: &Vars) -> Option<String> {
        let text = s.get_ref();
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        let mut offset = 0;
        let mut ok = true;
        let mut used: Vec<&str> = Vec::new();
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
        ok.then_some(out)
    }

    /// The error for an interpolation longer than `values::MAX_VALUE`.
    fn too_long(&mut self, s: &Spanned<String>, used: &[&str]) {
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
    fn refuse(&mut self, s: &Spanned<String>, value: &str, what: &str, why: &str, help: &str) {
        let from_args = s.get_ref().contains('{') && s.get_ref() != value;
        let help = if from_args {
            format!(
                "{help} (the value comes from `{}` with its args inserted: check the build args)",
                values::shown(s.get_ref())
            )
        } else {
            help.to_owned()
        };
        self.error(
            s.span(),
            format!("{what} `{}` {why}", values::shown(value)),
            help,
        );
    }

    /// A bare name (no registry, tag or digest) one typo away from a
    /// component: a misspelt component, not a Docker Hub image.
    fn misspelt_component<'c>(
        &mut self,
        text: &str,
        names: &'c BTreeSet<String>,
    ) -> Option<&'c str> {
        if text.contains([':', '/', '@']) {
            return None;
        }
        self.closest(text, names.iter().map(String::as_str))
    }

    /// An interpolated absolute path in the image.
    fn image_path(&mut self, s: &Spanned<String>, vars: &Vars, what: &str) -> Option<String> {
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

    /// Did-you-mean among `candidates`, within this file's budget.
    fn closest<'c>(
        &mut self,
        word: &str,
        candidates: impl IntoIterator<Item = &'c str>,
    ) -> Option<&'c str> {
        self.suggestions.closest(word, candidates)
    }

    fn stack(&mut self, raw: RawStackFile, overrides: &Overrides) -> Option<Stack> {
        let Some(meta) = raw.stack else {
            self.error(
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
                self.error(span, format!("unknown profile `{sel}`"), help);
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
                self.error(cname.span(), format!("`{cname_s}` is not a valid component name"), "use lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit");
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
            if let Some(comp) = self.component(cname, c, &ctx, &mut ref_spans) {
                components.push(comp);
            }
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
            warnings: Vec::new(),
            index: components_index,
        })
    }

    fn args(
        &mut self,
        raw: &BTreeMap<SpannedString, Spanned<RawArg>>,
        profiles: &BTreeMap<SpannedString, Spanned<raw::RawProfile>>,
        overrides: &Overrides,
        fallback: Range<usize>,
    ) -> Vec<Arg> {
        let mut args = Vec::new();
        for (name, a) in raw {
            let n = name.get_ref();
            if !valid_arg_name(n) {
                self.error(
                    name.span(),
                    format!("`{n}` is not a valid arg name"),
                    "use letters, digits and `_`, starting with a letter or `_`",
                );
                continue;
            }
            if is_reserved_arg(n) || matches!(n.as_str(), "stack" | "component") {
                self.error(
                    name.span(),
                    format!("`{n}` is a reserved name"),
                    "choose another name for this arg",
                );
                continue;
            }
            let span = a.span();
            let (kind, default, description) = match a.get_ref() {
                RawArg::Value(v) => match v {
                    toml::Value::String(s) => (ArgType::String, ArgValue::String(s.clone()), None),
                    toml::Value::Boolean(b) => (ArgType::Bool, ArgValue::Bool(*b), None),
                    toml::Value::Integer(i) => (ArgType::Int, ArgValue::Int(*i), None),
                    _ => {
                        self.error(span, format!("arg `{n}` must be a string, bool or integer"), "write the table form for enums: { type = \"enum\", values = [...], default = \"...\" }");
                        continue;
                    }
                },
                RawArg::Table(t) => {
                    let kind = match t.kind.as_ref().map(|k| k.get_ref().as_str()) {
                        Some("string") => ArgType::String,
                        Some("bool") => ArgType::Bool,
                        Some("int") => ArgType::Int,
                        Some("enum") => {
                            let values: Vec<String> = t
                                .values
                                .iter()
                                .flatten()
                                .map(|v| v.get_ref().clone())
                                .collect();
                            if values.is_empty() {
                                self.error(
                                    span,
                                    format!("enum arg `{n}` needs `values = [...]`"),
                                    "list the allowed values",
                                );
                                continue;
                            }
                            ArgType::Enum(values)
                        }
                        Some(other) => {
                            let k = t.kind.as_ref().map_or(span.clone(), Spanned::span);
                            self.error(
                                k,
                                format!("unknown arg type `{other}`"),
                                "use one of: string, bool, int, enum",
                            );
                            continue;
                        }
                        None => match t.default.as_ref().map(Spanned::get_ref) {
                            Some(toml::Value::Boolean(_)) => ArgType::Bool,
                            Some(toml::Value::Integer(_)) => ArgType::Int,
                            _ if t.values.is_some() => ArgType::Enum(
                                t.values
                                    .iter()
                                    .flatten()
                                    .map(|v| v.get_ref().clone())
                                    .collect(),
                            ),
                            _ => ArgType::String,
                        },
                    };
                    if t.values.is_some() && !matches!(kind, ArgType::Enum(_)) {
                        self.error(
                            span.clone(),
                            format!("`values` only applies to enum args, and `{n}` is not one"),
                            "add `type = \"enum\"` or remove `values`",
                        );
                    }
                    let default = match &t.default {
                        Some(d) => match typed_value(&kind, d.get_ref()) {
                            Ok(v) => v,
                            Err(e) => {
                                self.error(
                                    d.span(),
                                    format!("default of arg `{n}`: {e}"),
                                    "make the default match the arg's type",
                                );
                                continue;
                            }
                        },
                        None => match &kind {
                            ArgType::String => ArgValue::String(String::new()),
                            ArgType::Bool => ArgValue::Bool(false),
                            ArgType::Int => ArgValue::Int(0),
                            ArgType::Enum(v) => {
                                ArgValue::String(v.first().cloned().unwrap_or_default())
                            }
                        },
                    };
                    (
                        kind,
                        default,
                        t.description.as_ref().map(|d| d.get_ref().clone()),
                    )
                }
            };
            args.push(Arg {
                name: n.clone(),
                kind,
                value: default.clone(),
                default,
                origin: ArgOrigin::Default,
                description,
                span: name.span(),
            });
        }

        if let Some(sel) = &overrides.profile {
            if let Some((_, p)) = profiles.iter().find(|(k, _)| k.get_ref() == sel) {
                for (k, v) in &p.get_ref().args {
                    self.apply(
                        &mut args,
                        k.get_ref(),
                        v.get_ref(),
                        k.span(),
                        ArgOrigin::Profile(sel.clone()),
                    );
                }
            }
        }
        // Profile tables are checked even when not selected.
        for (pname, p) in profiles {
            for (k, v) in &p.get_ref().args {
                match args.iter().find(|a| &a.name == k.get_ref()) {
                    None => {
                        let help = self
                            .closest(k.get_ref(), args.iter().map(|a| a.name.as_str()))
                            .map(|c| format!("did you mean `{c}`?"))
                            .unwrap_or_else(|| "declare it in [args] first".to_owned());
                        self.error(
                            k.span(),
                            format!(
                                "profile `{}` sets `{}`, which is not an arg",
                                pname.get_ref(),
                                k.get_ref()
                            ),
                            help,
                        );
                    }
                    Some(a) => {
                        if let Err(e) = typed_value(&a.kind, v.get_ref()) {
                            self.error(
                                v.span(),
                                format!("profile `{}`: `{}` {e}", pname.get_ref(), k.get_ref()),
                                "give a value of the arg's type",
                            );
                        }
                    }
                }
            }
        }

        for (k, v) in &overrides.args {
            let Some(a) = args.iter_mut().find(|a| &a.name == k) else {
                if is_reserved_arg(k) {
                    continue;
                }
                let help = self
                    .closest(k, args.iter().map(|a| a.name.as_str()))
                    .map(|c| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| {
                        format!(
                            "this stack's args: {}",
                            args.iter()
                                .map(|a| a.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    });
                // Point at the arg meant, else at the declared args.
                let span = self
                    .closest(k, args.iter().map(|a| a.name.as_str()))
                    .and_then(|c| args.iter().find(|a| a.name == c))
                    .or(args.first())
                    .map_or(fallback.clone(), |a| a.span.clone());
                self.error(
                    span,
                    format!("`{k}={v}` sets an arg this stack does not declare"),
                    help,
                );
                continue;
            };
            match parse_override(&a.kind, v) {
                Ok(val) => {
                    a.value = val;
                    a.origin = ArgOrigin::Override;
                }
                Err(e) => {
                    let span = a.span.clone();
                    let name = a.name.clone();
                    self.error(
                        span,
                        format!("`{name}={v}`: {e}"),
                        format!("`{name}` is declared here; give a value of its type"),
                    );
                }
            }
        }
        args
    }

    fn apply(
        &mut self,
        args: &mut [Arg],
        name: &str,
        v: &toml::Value,
        span: Range<usize>,
        origin: ArgOrigin,
    ) {
        if let Some(a) = args.iter_mut().find(|a| a.name == name) {
            if let Ok(val) = typed_value(&a.kind, v) {
                a.value = val;
                a.origin = origin;
            }
        } else {
            let _ = span;
        }
    }

    fn user(&mut self, u: &Spanned<raw::RawUser>, vars: &Vars) -> Option<UserPolicy> {
        let raw = u.get_ref();
        let name = self.interpolate(&raw.name, vars)?;
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 32
                && s.bytes()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == b'_')
                && s.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-')
                })
        };
        let mut valid = true;
        if !ok(&name) {
            self.error(raw.name.span(), format!("`{name}` is not a valid user name"), "use at most 32 lowercase letters, digits, `_` and `-`, starting with a letter or `_`");
            valid = false;
        }
        if name == "root" {
            self.error(raw.name.span(), "the user policy cannot be root", "remove [user] to run as root, or set `user = \"root\"` on the components that need it");
            valid = false;
        }
        let group = match &raw.group {
            Some(g) => self.interpolate(g, vars)?,
            None => name.clone(),
        };
        // A group defaulted from an invalid user name was reported with it.
        if raw.group.is_some() && !ok(&group) {
            let span = raw.group.as_ref().map_or(raw.name.span(), Spanned::span);
            self.error(
                span,
                format!("`{group}` is not a valid group name"),
                "use lowercase letters, digits, `_` and `-`",
            );
            valid = false;
        }
        let uid = self.id(&raw.uid, "uid", vars);
        let gid = match &raw.gid {
            Some(g) => self.id(g, "gid", vars),
            None => uid,
        };
        let mut passwd_path = |r: &mut Self, s: &Spanned<String>, what: &str| {
            let v = r.interpolate(s, vars)?;
            if let Err(why) = values::passwd_path(&v) {
                r.refuse(
                    s,
                    &v,
                    what,
                    &why,
                    "write an absolute path without `:` or line breaks, e.g. `/home/app`",
                );
                valid = false;
            }
            Some(v)
        };
        let home = match &raw.home {
            Some(h) => passwd_path(self, h, "home")?,
            None => format!("/home/{name}"),
        };
        let shell = match &raw.shell {
            Some(s) => passwd_path(self, s, "shell")?,
            None => "/bin/sh".to_owned(),
        };
        let on_conflict = match raw.on_conflict.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("rename") => OnConflict::Rename,
            Some("error") => OnConflict::Error,
            Some(other) => {
                let span = raw.on_conflict.as_ref().map_or(0..0, Spanned::span);
                self.error(
                    span,
                    format!("unknown on-conflict `{other}`"),
                    "use `rename` (take over the base's user with that id) or `error`",
                );
                OnConflict::Rename
            }
        };
        Some(UserPolicy {
            name,
            group,
            uid: uid?,
            gid: gid?,
            home,
            shell,
            on_conflict,
        })
        .filter(|_| valid)
    }

    fn id(&mut self, v: &Spanned<toml::Value>, what: &str, vars: &Vars) -> Option<u32> {
        let n: i64 = match v.get_ref() {
            toml::Value::Integer(i) => *i,
            toml::Value::String(s) => {
                let text = self.interpolate(&Spanned::new(v.span(), s.clone()), vars)?;
                match text.trim().parse() {
                    Ok(i) => i,
                    Err(_) => {
                        self.error(
                            v.span(),
                            format!("{what} `{text}` is not a number"),
                            format!("give the {what} as an integer, e.g. 1000"),
                        );
                        return None;
                    }
                }
            }
            _ => {
                self.error(
                    v.span(),
                    format!("{what} must be an integer"),
                    format!("e.g. `{what} = 1000`"),
                );
                return None;
            }
        };
        if n == 0 {
            self.error(v.span(), format!("{what} 0 is root"), "a user policy is for a non-root user; set `user = \"root\"` on components that must run as root");
            return None;
        }
        if !(1..=2_147_483_646).contains(&n) {
            self.error(
                v.span(),
                format!("{what} {n} is out of range"),
                format!("a {what} is between 1 and 2147483646 (1000-60000 is usual)"),
            );
            return None;
        }
        u32::try_from(n).ok()
    }

    fn mirrors(
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
                    k.span(),
                    format!("mirror key `{}`: {e}", k.get_ref()),
                    "write an image reference such as `debian:bookworm`",
                ),
                (_, Some(Err(e))) => self.error(
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
                    0..0,
                    format!("mirror `{k}={v}`: {e}"),
                    "write FROM=TO with two image references",
                ),
            }
        }
        out
    }

    fn image_ref(
        &mut self,
        s: &Spanned<String>,
        vars: &Vars,
        mirrors: &[(ImageRef, ImageRef)],
    ) -> Option<ImageRef> {
        let text = self.interpolate(s, vars)?;
        match ImageRef::parse(&text) {
            Ok(r) => Some(apply_mirrors(r, mirrors)),
            Err(e) => {
                self.error(
                    s.span(),
                    format!("`{text}` is not a valid image reference: {e}"),
                    "write `[registry/]name[:tag][@sha256:...]`, e.g. `debian:bookworm-slim`",
                );
                None
            }
        }
    }

    fn metadata(
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
                            v.span(),
                            format!("unknown metadata field `{other}`"),
                            "use one of: revision, branch, source, created, version",
                        );
                        continue;
                    }
                };
                m.env.push((k.get_ref().clone(), field));
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
                .and_then(|r| self.context_path(r, vars))
                .filter(|s| !s.is_empty());
            m.find_links = p
                .find_links
                .as_ref()
                .and_then(|r| self.context_path(r, vars))
                .filter(|s| !s.is_empty());
        }
        m
    }

    fn context_path(&mut self, s: &Spanned<String>, vars: &Vars) -> Option<String> {
        let p = self.interpolate(s, vars)?;
        if let Err(why) = values::context_path(&p) {
            self.refuse(
                s,
                &p,
                "path",
                &why,
                "write it relative to the context, without `..`",
            );
            return None;
        }
        Some(p)
    }

    fn component(
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

        // Condition.
        let (enabled, condition) = match &raw.when {
            None => (true, None),
            Some(w) => match expr::parse(w.get_ref()) {
                Err(e) => {
                    let span = self.inner(w, e.span.start, e.span.len().max(1));
                    self.error(
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
        };

        // Base.
        let mut gpu = None;
        let base = match (&raw.from, &raw.gpu) {
            (Some(_), Some(g)) => {
                self.error(
                    g.span(),
                    format!("component `{cname}` has both `from` and `gpu`"),
                    "a GPU flavour takes its base from `gpu.base`; remove `from`",
                );
                Base::Scratch
            }
            (None, None) => {
                self.error(
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
                            f.span(),
                            format!("component `{cname}` is built from itself"),
                            "name another component or an external image",
                        );
                    }
                    ref_spans.insert((cname.clone(), text.clone()), f.span());
                    Base::Component(text)
                } else if text == "scratch" {
                    Base::Scratch
                } else if let Some(c) = self.misspelt_component(&text, ctx.names) {
                    self.not_a_component(f.span(), &text, c);
                    Base::Scratch
                } else {
                    match ImageRef::parse(&text) {
                        Ok(r) => Base::Image(apply_mirrors(r, ctx.mirrors)),
                        Err(e) => {
                            let help = match self.closest(&text, ctx.names.iter().map(String::as_str)) {
                                Some(c) => format!("did you mean the component `{c}`?"),
                                None => format!("name a component ({}) or an image such as `debian:bookworm-slim`", ctx.names.iter().cloned().collect::<Vec<_>>().join(", ")),
                            };
                            self.error(f.span(), format!("`{text}` is neither a component of this stack nor a valid image reference ({e})"), help);
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

        let image = raw
            .image
            .as_ref()
            .or(ctx.rule)
            .and_then(|rule| self.image_ref(rule, vars, &[]))
            .unwrap_or_else(|| ImageRef {
                registry: "docker.io".into(),
                repository: cname.clone(),
                tag: None,
                digest: None,
            });

        let run_as = match raw.user.as_ref() {
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
                    self.error(u.span(), format!("component user `{}` conflicts with the stack's user policy (`{}`)", u.get_ref(), p.name), format!("a component runs as the policy user `{}` or as `root`; change [user] to change it everywhere", p.name));
                    RunAs::Policy
                }
                None => {
                    self.error(
                        u.span(),
                        format!("component user `{}` is not defined", u.get_ref()),
                        "declare it in [user] (name, uid, gid), or write `user = \"root\"`",
                    );
                    RunAs::Root
                }
            },
        };

        let context = match &raw.context {
            Some(p) => self.context_path(p, vars).unwrap_or_else(|| ".".into()),
            None => ".".into(),
        };
        let ignore = raw.ignore.as_ref().and_then(|p| self.context_path(p, vars));

        // Steps: shorthand fields first, in a fixed order, then `steps`.
        let mut steps = Vec::new();
        if let Some(a) = &raw.apt {
            steps.extend(self.apt(a, vars));
        }
        for c in &raw.conda {
            steps.extend(self.conda(c, vars));
        }
        if let Some(p) = &raw.pip {
            steps.extend(self.pip(p, vars));
        }
        for c in &raw.copy {
            steps.extend(self.copy(c, &cname, ctx, ref_spans));
        }
        for r in &raw.run {
            steps.extend(self.run(r, vars));
        }
        for s in &raw.steps {
            steps.extend(self.step(s, &cname, ctx, ref_spans));
        }

        let config = self.config(raw, vars);
        let tests = self.tests(raw, run_as, ctx);
        let publish = raw.publish.as_ref().is_none_or(|p| *p.get_ref());
        let allow = raw.allow.iter().map(|a| a.get_ref().clone()).collect();

        if self.diags[before..]
            .iter()
            .any(|d| d.severity == super::diag::Severity::Error)
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
            publish,
            context,
            ignore,
            run_as,
            steps,
            config,
            allow,
            tests,
        })
    }

    fn check_condition(&mut self, e: &Expr, w: &Spanned<String>, args: &[Arg]) -> bool {
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

    fn check_expr(&mut self, e: &Expr, w: &Spanned<String>, args: &[Arg], ok: &mut bool) {
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

    fn not_a_component(&mut self, span: Range<usize>, text: &str, close: &str) {
        self.error(
            span,
            format!("`{text}` is not a component of this stack"),
            format!("did you mean `{close}`? An external image needs its tag: `{text}:<tag>`"),
        );
    }

    fn unknown_arg(&mut self, n: &str, span: &Range<usize>, w: &Spanned<String>, args: &[Arg]) {
        let s = self.inner(w, span.start, span.len());
        let help = self
            .closest(n, args.iter().map(|a| a.name.as_str()))
            .map(|c| format!("did you mean `{c}`?"))
            .unwrap_or_else(|| "declare it in [args]".into());
        self.error(
            s,
            format!("the condition reads `{n}`, which is not an arg"),
            help,
        );
    }

    /// Interpolated operands of a package manager, each checked by `rule`
    /// once its args are in (so an arg can never become an option).
    fn words(
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

    fn apt(&mut self, a: &Spanned<raw::Short<raw::AptSpec>>, vars: &Vars) -> Option<Step> {
        let spec = a.get_ref();
        let packages = self.words(
            &spec.packages,
            vars,
            values::apt_package,
            "package",
            "use names like `python3` or `libssl3=3.0.11-1`; apt-get's options are set by Strata",
        );
        if spec.packages.is_empty() {
            self.error(
                a.span(),
                "apt step installs no packages",
                "list packages, or remove the step",
            );
        }
        let repo = spec.repo.as_ref().and_then(|r| self.context_path(r, vars));
        Some(Step {
            kind: StepKind::Apt(Apt { packages, repo }),
            span: a.span(),
        })
    }

    fn pip(&mut self, p: &Spanned<raw::Short<raw::PipSpec>>, vars: &Vars) -> Option<Step> {
        let spec = p.get_ref();
        let packages = self.words(
            &spec.packages,
            vars,
            values::pip_requirement,
            "requirement",
            "write a requirement such as `six==1.16.0`; set pip's options with the step's keys",
        );
        let mut requirements = Vec::new();
        for r in &spec.requirements {
            requirements.extend(self.context_path(r, vars));
        }
        if spec.packages.is_empty() && spec.requirements.is_empty() {
            self.error(
                p.span(),
                "pip step installs nothing",
                "give `packages` or `requirements`",
            );
        }
        let venv = match spec.venv.as_ref() {
            None => Some("/opt/venv".to_owned()),
            Some(v) if v.get_ref() == "system" => None,
            Some(v) => {
                if !v.get_ref().starts_with('/') {
                    self.error(
                        v.span(),
                        format!("venv `{}` must be an absolute path", v.get_ref()),
                        "e.g. `/opt/venv`, or `system` for no venv",
                    );
                }
                Some(v.get_ref().clone())
            }
        };
        let find_links = spec
            .find_links
            .as_ref()
            .and_then(|r| self.context_path(r, vars));
        Some(Step {
            kind: StepKind::Pip(Pip {
                packages,
                requirements,
                venv,
                find_links,
            }),
            span: p.span(),
        })
    }

    fn conda(&mut self, c: &Spanned<raw::Short<raw::CondaSpec>>, vars: &Vars) -> Option<Step> {
        let spec = c.get_ref();
        let env = self.interpolate(&spec.env, vars)?;
        // Conda allows any case (`R` is a usual name); no spaces, `/` or `:`.
        let env_ok = env
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && env.len() <= 128
            && env
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        if !env_ok {
            self.error(
                spec.env.span(),
                format!("`{env}` is not a valid environment name"),
                "use letters, digits, `-`, `_` and `.`",
            );
        }
        let tool = match spec.tool.as_ref().map(|t| t.get_ref().as_str()) {
            None => "micromamba".to_owned(),
            Some(t @ ("micromamba" | "mamba" | "conda")) => t.to_owned(),
            Some(other) => {
                let span = spec.tool.as_ref().map_or(c.span(), Spanned::span);
                self.error(
                    span,
                    format!("unknown conda tool `{other}`"),
                    "use micromamba, mamba or conda",
                );
                return None;
            }
        };
        let packages = self.words(
            &spec.packages,
            vars,
            values::conda_word,
            "package",
            "write a package spec such as `python=3.10`",
        );
        let file = spec.file.as_ref().and_then(|f| self.context_path(f, vars));
        if spec.packages.is_empty() && spec.file.is_none() {
            self.error(
                c.span(),
                format!("conda environment `{env}` has no packages and no file"),
                "give `packages = [...]` or `file = \"environment.yml\"`",
            );
        }
        Some(Step {
            kind: StepKind::Conda(Conda {
                env,
                packages,
                channels: self.words(
                    &spec.channels,
                    vars,
                    values::conda_word,
                    "channel",
                    "write a channel name such as `conda-forge`, a URL or an absolute path",
                ),
                file,
                tool,
            }),
            span: c.span(),
        })
    }

    fn copy(
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
                } else if let Some(c) = self.misspelt_component(&text, ctx.names) {
                    self.not_a_component(f.span(), &text, c);
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
                if s.starts_with('/') || s.split('/').any(|p| p == "..") {
                    self.error(spec.src.span(), format!("`{s}` is outside the build context"), "context paths are relative and stay inside it; copy from a component or image with `from` for absolute paths");
                }
            }
        }
        let dst = self.interpolate(&spec.dst, vars)?;
        if let Err(why) = values::destination(&dst) {
            self.refuse(
                &spec.dst,
                &dst,
                "destination",
                &why,
                "write a path without control characters",
            );
            return None;
        }
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

    fn run(&mut self, r: &Spanned<raw::Short<raw::RunSpec>>, vars: &Vars) -> Option<Step> {
        let spec = r.get_ref();
        let args = match spec.cmd.get_ref() {
            Command::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
            Command::Exec(a) => a.clone(),
        };
        if args.last().is_none_or(|a| a.trim().is_empty()) {
            self.error(
                r.span(),
                "run step has an empty command",
                "give the command to run",
            );
        }
        let network = self.network(spec.network.as_ref(), Network::Default);
        let as_user = self.as_user(spec.run_as.as_ref(), false);
        let mut cache = Vec::new();
        for c in &spec.cache {
            if !c.get_ref().starts_with('/') {
                self.error(
                    c.span(),
                    format!("cache directory `{}` must be absolute", c.get_ref()),
                    "e.g. `/root/.cache`",
                );
            } else {
                cache.push(c.get_ref().clone());
            }
        }
        let mut env = Vec::new();
        for (k, v) in &spec.env {
            env.extend(self.interpolate(v, vars).map(|v| (k.get_ref().clone(), v)));
        }
        Some(Step {
            kind: StepKind::Run(Run {
                args,
                network,
                secrets: spec.secrets.iter().map(|s| s.get_ref().clone()).collect(),
                cache,
                as_user,
                env,
                name: spec.name.as_ref().map(|n| n.get_ref().clone()),
            }),
            span: r.span(),
        })
    }

    /// A `network` setting; `default` when it is not written.
    fn network(&mut self, n: Option<&SpannedString>, default: Network) -> Network {
        let Some(n) = n else { return default };
        match n.get_ref().as_str() {
            "default" | "sandbox" => Network::Default,
            "none" => Network::None,
            "host" => Network::Host,
            other => {
                self.error(
                    n.span(),
                    format!("unknown network `{other}`"),
                    "use none, default or host",
                );
                default
            }
        }
    }

    /// An `as` setting (true for the policy user); `default` when it is not written.
    fn as_user(&mut self, a: Option<&SpannedString>, default: bool) -> bool {
        let Some(a) = a else { return default };
        match a.get_ref().as_str() {
            "root" => false,
            "user" => true,
            other => {
                self.error(
                    a.span(),
                    format!("unknown `as = \"{other}\"`"),
                    "use `root` or `user`",
                );
                default
            }
        }
    }

    /// A component's `test` entries: run in the finished image, as its
    /// user unless `as` says otherwise, without network unless asked.
    fn tests(&mut self, raw: &RawComponent, run_as: RunAs, ctx: &Ctx) -> Vec<Test> {
        let mut tests = Vec::new();
        for t in &raw.test {
            let spec = t.get_ref();
            let args = match spec.cmd.get_ref() {
                Command::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
                Command::Exec(a) => a.clone(),
            };
            if args.first().is_none_or(|a| a.trim().is_empty())
                || args.last().is_none_or(|a| a.trim().is_empty())
            {
                self.error(
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
                    a.span(),
                    "`as = \"user\"` but the stack has no [user] policy",
                    "declare [user], or leave `as` out to test as the image's user",
                );
            }
            let name = spec.name.as_ref().map(|n| n.get_ref().clone());
            if let Some(n) = spec.name.as_ref().filter(|n| n.get_ref().trim().is_empty()) {
                self.error(
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

    fn step(
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
            raw.pip.is_some(),
            raw.conda.is_some(),
            raw.env.is_some(),
            raw.workdir.is_some(),
        ];
        let n = kinds.iter().filter(|k| **k).count();
        if n != 1 {
            self.error(
                s.span(),
                if n == 0 {
                    "this step does nothing".to_owned()
                } else {
                    format!("this step has {n} kinds; a step has exactly one")
                },
                "write one of run, copy, apt, pip, conda, env or workdir per step",
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
            return Some(Step {
                kind: StepKind::Env { vars },
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

    fn env_name(&mut self, k: &SpannedString) {
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
                k.span(),
                format!("`{}` is not a valid environment variable name", k.get_ref()),
                "use letters, digits and `_`, not starting with a digit",
            );
        }
    }

    fn config(&mut self, raw: &RawComponent, vars: &Vars) -> ConfigSpec {
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
        for p in &raw.expose {
            let text = match p.get_ref() {
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let (port, proto) = text.split_once('/').unwrap_or((&text, "tcp"));
            match (port.parse::<u16>(), proto) {
                (Ok(n), "tcp" | "udp" | "sctp") if n > 0 => cfg.expose.push(format!("{n}/{proto}")),
                _ => self.error(
                    p.span(),
                    format!("`{text}` is not a port"),
                    "write a port number 1-65535, optionally with /tcp, /udp or /sctp",
                ),
            }
        }
        for v in &raw.volumes {
            if !v.get_ref().starts_with('/') {
                self.error(
                    v.span(),
                    format!("volume `{}` must be an absolute path", v.get_ref()),
                    "write it starting with `/`",
                );
            } else {
                cfg.volumes.push(v.get_ref().clone());
            }
        }
        let exec = |c: &Command| match c {
            Command::Shell(s) => vec!["/bin/sh".to_owned(), "-c".to_owned(), s.clone()],
            Command::Exec(a) => a.clone(),
        };
        cfg.entrypoint = raw.entrypoint.as_ref().map(|c| exec(c.get_ref()));
        cfg.cmd = raw.cmd.as_ref().map(|c| exec(c.get_ref()));
        if let Some(h) = &raw.healthcheck {
            let h = h.get_ref();
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
            cfg.healthcheck = Some(Healthcheck {
                test,
                interval_ns,
                timeout_ns,
                start_period_ns,
                retries: h.retries.as_ref().and_then(|r| {
                    let n = u32::try_from(*r.get_ref()).ok();
                    if n.is_none() {
                        self.error(
                            r.span(),
                            format!("retries {} is out of range", r.get_ref()),
                            "give a count between 0 and 4294967295",
                        );
                    }
                    n
                }),
            });
        }
        cfg.stop_signal = raw.stop_signal.as_ref().map(|s| s.get_ref().clone());
        cfg
    }

    /// Dependencies first, ties by name; reports cycles.
    fn order(
        &mut self,
        comps: Vec<Component>,
        ref_spans: &BTreeMap<(String, String), Range<usize>>,
    ) -> Option<Vec<Component>> {
        let index: BTreeMap<String, usize> = comps
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let deps: Vec<Vec<usize>> = comps
            .iter()
            .map(|c| {
                c.dependencies()
                    .into_iter()
                    .filter_map(|(d, _)| index.get(&d).copied())
                    .collect()
            })
            .collect();
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut state = vec![0u8; comps.len()];
        let mut order = Vec::with_capacity(comps.len());
        let mut reported = false;
        for start in 0..comps.len() {
            if state[start] != 0 {
                continue;
            }
            // Iterative DFS: (node, next dependency to visit).
            let mut stack = vec![(start, 0usize)];
            state[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&dep) = deps[node].get(*next) {
                    *next += 1;
                    match state[dep] {
                        0 => {
                            state[dep] = 1;
                            stack.push((dep, 0));
                        }
                        1 if !reported => {
                            reported = true;
                            let pos = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                            let mut path: Vec<&str> = stack[pos..]
                                .iter()
                                .map(|(n, _)| comps[*n].name.as_str())
                                .collect();
                            path.push(&comps[dep].name);
                            let span = ref_spans
                                .get(&(comps[node].name.clone(), comps[dep].name.clone()))
                                .cloned()
                                .unwrap_or(comps[node].span.clone());
                            self.error(span, format!("components form a cycle: {}", path.join(" -> ")), "a component cannot need itself, directly or through others; break one of these edges");
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    order.push(node);
                    stack.pop();
                }
            }
        }
        if reported {
            return None;
        }
        let mut slots: Vec<Option<Component>> = comps.into_iter().map(Some).collect();
        Some(order.into_iter().filter_map(|i| slots[i].take()).collect())
    }
}

struct Ctx<'a> {
    names: &'a BTreeSet<String>,
    vars: Vars<'a>,
    args: &'a [Arg],
    mirrors: &'a [(ImageRef, ImageRef)],
    user: Option<&'a UserPolicy>,
    rule: Option<&'a Spanned<String>>,
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

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')
        })
}

fn valid_arg_name(s: &str) -> bool {
    s.bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && s.len() <= 128
}

fn type_name(t: &ArgType) -> &'static str {
    match t {
        ArgType::String => "a string",
        ArgType::Bool => "a bool",
        ArgType::Int => "an integer",
        ArgType::Enum(_) => "an enum",
    }
}

/// A TOML value as a value of the arg's type.
fn typed_value(kind: &ArgType, v: &toml::Value) -> Result<ArgValue, String> {
    match (kind, v) {
        (ArgType::String, toml::Value::String(s)) => Ok(ArgValue::String(s.clone())),
        (ArgType::Bool, toml::Value::Boolean(b)) => Ok(ArgValue::Bool(*b)),
        (ArgType::Int, toml::Value::Integer(i)) => Ok(ArgValue::Int(*i)),
        (ArgType::Enum(vals), toml::Value::String(s)) if vals.contains(s) => {
            Ok(ArgValue::String(s.clone()))
        }
        (ArgType::Enum(vals), toml::Value::String(s)) => {
            Err(format!("`{s}` is not one of {}", vals.join(", ")))
        }
        (ArgType::Bool, toml::Value::String(s)) => parse_bool(s).map(ArgValue::Bool),
        (k, v) => Err(format!("expected {}, found {}", type_name(k), v.type_str())),
    }
}

/// A command-line value as a value of the arg's type.
pub fn parse_override(kind: &ArgType, v: &str) -> Result<ArgValue, String> {
    match kind {
        ArgType::String => Ok(ArgValue::String(v.to_owned())),
        ArgType::Bool => parse_bool(v).map(ArgValue::Bool),
        ArgType::Int => v
            .trim()
            .parse()
            .map(ArgValue::Int)
            .map_err(|_| format!("`{v}` is not an integer")),
        ArgType::Enum(vals) if vals.iter().any(|x| x == v) => Ok(ArgValue::String(v.to_owned())),
        ArgType::Enum(vals) => Err(format!("`{v}` is not one of {}", vals.join(", "))),
    }
}

/// `true`/`1`/`yes`/`on` and `false`/`0`/`no`/`off`, any case; anything else is an error.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("`{v}` is not a bool (use true or false)")),
    }
}

/// `"1m30s"`, `"500ms"`, `"2h"` in nanoseconds.
fn parse_duration(s: &str) -> Option<u64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_are_never_silently_false() {
        for t in ["True", "TRUE", "1", "yes", "on"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["False", "0", "no", "OFF"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        assert!(parse_bool("maybe").is_err());
        assert!(parse_bool("").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn mirrors_keep_tags_for_repository_matches() {
        let m = vec![(
            ImageRef::parse("debian").expect("valid"),
            ImageRef::parse("strata.local/debian").expect("valid"),
        )];
        let r = apply_mirrors(ImageRef::parse("debian:bookworm").expect("valid"), &m);
        assert_eq!(r.familiar(), "strata.local/debian:bookworm");
        let exact = vec![(
            ImageRef::parse("debian:bullseye-slim").expect("valid"),
            ImageRef::parse("strata.local/debian:bookworm").expect("valid"),
        )];
        let r = apply_mirrors(
            ImageRef::parse("debian:bullseye-slim").expect("valid"),
            &exact,
        );
        assert_eq!(r.familiar(), "strata.local/debian:bookworm");
        let r = apply_mirrors(ImageRef::parse("debian:other").expect("valid"), &exact);
        assert_eq!(r.familiar(), "debian:other");
    }
}
