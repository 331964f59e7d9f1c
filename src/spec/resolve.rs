//! Raw stack file -> validated [`Stack`]: types, references, conditions,
//! the user policy and the graph's shape, with every problem located.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde_spanned::Spanned;

use super::codes::ErrorCode;
use super::diag::{closest, Diagnostic, Diagnostics, Severity, SourceFile, Suggestions};
use super::expr::{self, Expr, Literal};
use super::image_ref::ImageRef;
use super::raw::{self, Command, RawArg, RawComponent, RawStackFile, RawStep, SpannedString};
use super::values;
use crate::graph::*;

mod args;
mod component;
mod conditions;
mod gpu;
mod images;
mod interpolate;
mod loader;
mod order;
mod stack;
mod steps;
mod user;

pub use args::{is_reserved_arg, parse_bool, parse_override};
pub(crate) use component::*;
pub use images::{apply_mirrors, parse_mirror_list};
use {args::*, loader::*};

/// Values that come from outside the stack file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--arg k=v` / `build-arg:k=v`, in the order given.
    pub args: Vec<(String, String)>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--mirror from=to` / `STRATA_MIRRORS`.
    pub mirrors: Vec<(String, String)>,
    /// The target and build platforms (`TARGETARCH`, ...); linux/amd64
    /// for both when not given.
    pub platform: Option<PlatformVars>,
}

/// The platform names a stack can read in `{...}` and `when`, with
/// BuildKit's meanings: `TARGET*` the platform the image is built for,
/// `BUILD*` the platform of the worker running the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformVars {
    vars: Vec<(&'static str, String)>,
}

/// The names [`PlatformVars`] defines.
pub const PLATFORM_VARS: [&str; 8] = [
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

impl PlatformVars {
    /// From the target and build platforms' `(os, architecture, variant)`.
    pub fn new(target: (&str, &str, Option<&str>), build: (&str, &str, Option<&str>)) -> Self {
        let mut vars = Vec::new();
        for (prefix, (os, arch, variant)) in [("TARGET", target), ("BUILD", build)] {
            let variant = variant.unwrap_or_default();
            let platform = if variant.is_empty() {
                format!("{os}/{arch}")
            } else {
                format!("{os}/{arch}/{variant}")
            };
            for (suffix, value) in [
                ("PLATFORM", platform),
                ("OS", os.to_owned()),
                ("ARCH", arch.to_owned()),
                ("VARIANT", variant.to_owned()),
            ] {
                let name = PLATFORM_VARS
                    .iter()
                    .find(|n| n.strip_prefix(prefix) == Some(suffix))
                    .copied()
                    .unwrap_or("TARGETPLATFORM");
                vars.push((name, value));
            }
        }
        PlatformVars { vars }
    }

    /// Each name with its value.
    pub fn vars(&self) -> &[(&'static str, String)] {
        &self.vars
    }
}

impl Default for PlatformVars {
    fn default() -> Self {
        let both = ("linux", "amd64", None);
        PlatformVars::new(both, both)
    }
}

/// Largest stack file accepted (BuildKit's 4 MiB message limit applies to it too).
pub const MAX_FILE_SIZE: usize = 4 << 20;
const MAX_NESTING: usize = 128;

/// A stack the resolver accepted, before lint: the resolver's warnings
/// are in `stack.warnings`; `expansion` tells which templates and
/// matrices made each component, to annotate later diagnostics with.
#[derive(Debug)]
pub struct Resolved {
    /// The resolved stack.
    pub stack: Stack,
    /// What templates and matrices expanded into.
    pub expansion: super::expand::Expansion,
}

/// Decodes a stack file's bytes and resolves it (see [`resolve`]).
pub fn load(name: &str, bytes: &[u8], overrides: &Overrides) -> Result<Resolved, Diagnostics> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_owned(),
        Err(e) => {
            let at = e.valid_up_to();
            let file = SourceFile::new(name, String::from_utf8_lossy(bytes).into_owned());
            let d = Diagnostic::error(
                ErrorCode::NotUtf8,
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

/// Parses a stack file, expands its templates and matrices and resolves
/// it: the spec stage, before lint.
pub fn resolve(file: SourceFile, overrides: &Overrides) -> Result<Resolved, Diagnostics> {
    let fail = |file: SourceFile, d: Diagnostic| {
        Err(Diagnostics {
            file,
            items: vec![d],
        })
    };
    if file.text.len() > MAX_FILE_SIZE {
        let d = Diagnostic::error(
            ErrorCode::FileTooLarge,
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
            ErrorCode::TooDeep,
            at..at + 1,
            format!("values are nested more than {MAX_NESTING} levels deep"),
        )
        .with_help("flatten the arrays or inline tables");
        return fail(file, d);
    }
    let mut raw = match raw::parse(&file.text) {
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
    let expansion = match super::expand::expand(&mut raw, &file.text) {
        Ok(x) => x,
        Err(mut items) => {
            items.sort_by_key(|d| (d.span.start, d.span.end));
            items.dedup();
            return Err(Diagnostics { file, items });
        }
    };
    let mut r = Resolver {
        diags: Vec::new(),
        file: &file,
        interpolated: 0,
        refused: BTreeSet::new(),
        suggestions: Suggestions::default(),
        inputs: Vec::new(),
        stack_inputs: Vec::new(),
        owners: Vec::new(),
    };
    let stack = r.stack(raw, overrides);
    let mut items = r.diags;
    expansion.attribute(&mut items, &r.owners);
    super::expand::merge_notes(&mut items);
    match stack {
        Some(mut stack) if !items.iter().any(|d| d.severity == Severity::Error) => {
            stack.warnings = items;
            expansion.mark(&mut stack.components);
            Ok(Resolved { stack, expansion })
        }
        _ => {
            expansion.annotate(&mut items);
            super::expand::merge_notes(&mut items);
            Err(Diagnostics { file, items })
        }
    }
}

struct Resolver<'a> {
    diags: Vec<Diagnostic>,
    file: &'a SourceFile,
    /// Bytes all interpolations have produced so far (bounded by `values::MAX_INTERPOLATED`).
    interpolated: usize,
    /// Edit-distance work left for did-you-mean hints in this file.
    suggestions: Suggestions,
    /// Spans whose interpolated value was refused (reported once each).
    refused: BTreeSet<(usize, usize)>,
    /// Context paths named by the component being resolved.
    inputs: Vec<ContextInput>,
    /// `[packages]` paths, read by every component whose steps use them.
    stack_inputs: Vec<ContextInput>,
    /// The component each diagnostic was found in, by index in `diags`,
    /// for notes on lines that templates and matrices share.
    owners: Vec<(usize, String)>,
}

/// The args inserted into one value, with their values as shown.
type Inserted = Vec<(String, String)>;

/// Values `{name}` may refer to in interpolated strings.
struct Vars<'a> {
    args: &'a BTreeMap<String, ArgValue>,
    stack: &'a str,
    component: Option<&'a str>,
}

impl Vars<'_> {
    /// The value of `{name}`, borrowed where it can be (an arg may be large).
    fn get(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match name {
            "stack" => Some(Cow::Borrowed(self.stack)),
            "component" => self.component.map(Cow::Borrowed),
            _ => self.args.get(name).map(|v| match v {
                ArgValue::String(s) => Cow::Borrowed(s.as_str()),
                other => Cow::Owned(other.to_string()),
            }),
        }
    }
}

impl Resolver<'_> {
    fn error(
        &mut self,
        code: ErrorCode,
        span: Range<usize>,
        msg: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::error(code, span, msg).with_help(help));
    }

    /// Reports `text` if it is a bare name (no registry, tag or digest) that
    /// is not a component: a misspelt component or an external image
    /// written without its tag, never a silent Docker Hub pull.
    /// With no `names` (a key that takes only images), the help is about
    /// the tag alone.
    fn bare_name(&mut self, span: Range<usize>, text: &str, names: &BTreeSet<String>) -> bool {
        if text.contains([':', '/', '@']) || names.contains(text) {
            return false;
        }
        let shown = values::shown(text);
        if names.is_empty() {
            self.error(
                ErrorCode::UnknownComponent,
                span,
                format!("`{shown}` has no tag"),
                format!("write `name:tag` for an external image (`{shown}:<tag>`)"),
            );
            return true;
        }
        let near = match self.closest(text, names.iter().map(String::as_str)) {
            Some(c) => format!("did you mean `{c}`?"),
            None => {
                let near = self
                    .suggestions
                    .nearest(text, names.iter().map(String::as_str), 3);
                if near.is_empty() {
                    "the stack has no component of that name.".to_owned()
                } else {
                    let list: Vec<String> = near.iter().map(|c| format!("`{c}`")).collect();
                    match list.len() {
                        1 => format!("the nearest component is {}.", list[0]),
                        _ => format!("the nearest components are {}.", list.join(", ")),
                    }
                }
            }
        };
        self.error(
            ErrorCode::UnknownComponent,
            span,
            format!("`{shown}` is not a component of this stack"),
            format!("{near} Write `name:tag` for an external image (`{shown}:<tag>`)"),
        );
        true
    }

    /// Did-you-mean among `candidates`, within this file's budget.
    fn closest<'c>(
        &mut self,
        word: &str,
        candidates: impl IntoIterator<Item = &'c str>,
    ) -> Option<&'c str> {
        self.suggestions.closest(word, candidates)
    }
}

struct Ctx<'a> {
    names: &'a BTreeSet<String>,
    vars: Vars<'a>,
    args: &'a [Arg],
    mirrors: &'a [(ImageRef, ImageRef)],
    user: Option<&'a UserPolicy>,
    /// `[stack].image`'s naming rules (or the default one), each located.
    rules: &'a [SpannedString],
}

impl Ctx<'_> {
    /// The same context inside component `name` (`{component}` reads it).
    fn of<'b>(&'b self, name: &'b str) -> Ctx<'b> {
        Ctx {
            names: self.names,
            vars: Vars {
                args: self.vars.args,
                stack: self.vars.stack,
                component: Some(name),
            },
            args: self.args,
            mirrors: self.mirrors,
            user: self.user,
            rules: self.rules,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load;

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
    fn mirror_lists_parse_one_way_and_name_every_bad_pair() {
        assert_eq!(
            parse_mirror_list(" a=b ,\nc:1=d/e:2,, "),
            Ok(vec![
                ("a".into(), "b".into()),
                ("c:1".into(), "d/e:2".into())
            ])
        );
        let bad = parse_mirror_list("a=b,oops,=x,y=").expect_err("three bad pairs");
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(bad[0].contains("`oops` is not FROM=TO"), "{bad:?}");
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

    const PER_ARCH: &str = r#"[stack]
name = "multi"

[component.base]
from = "strata.local/base-{TARGETARCH}:1"

[component.ipcl]
from = "base"
when = "TARGETARCH == 'amd64' && BUILDARCH == 'amd64'"

[component.worker]
from = "base"
"#;

    fn on(arch: &str, text: &str) -> Result<Stack, Diagnostics> {
        let o = Overrides {
            platform: Some(PlatformVars::new(
                ("linux", arch, None),
                ("linux", "amd64", None),
            )),
            ..Overrides::default()
        };
        load("strata.toml", text.as_bytes(), &o)
    }

    fn base_of(s: &Stack, name: &str) -> String {
        match &s.component(name).expect("component").base {
            Base::Image(r) => r.familiar(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn platform_names_pick_the_base_and_switch_components() {
        let amd = on("amd64", PER_ARCH).expect("loads");
        assert_eq!(base_of(&amd, "base"), "strata.local/base-amd64:1");
        assert!(amd.component("ipcl").is_some_and(|c| c.enabled));
        let arm = on("arm64", PER_ARCH).expect("loads");
        assert_eq!(base_of(&arm, "base"), "strata.local/base-arm64:1");
        assert!(arm.component("ipcl").is_some_and(|c| !c.enabled));
        // Not args: the graph lists the stack's own args only.
        assert!(arm.args.is_empty(), "{:?}", arm.args);
        // Without a platform: linux/amd64.
        let default =
            load("strata.toml", PER_ARCH.as_bytes(), &Overrides::default()).expect("loads");
        assert_eq!(base_of(&default, "base"), "strata.local/base-amd64:1");
    }

    #[test]
    fn the_needs_of_enabled_components_are_checked_per_platform() {
        let text = format!("{PER_ARCH}\n[component.ipcl-app]\nfrom = \"ipcl\"\n");
        assert!(on("amd64", &text).is_ok());
        let e = on("arm64", &text).expect_err("ipcl is off on arm64");
        let msg = e.render();
        assert!(
            msg.contains("`ipcl-app` is enabled but needs `ipcl`"),
            "{msg}"
        );
    }

    #[test]
    fn platform_names_are_reserved() {
        let text = "[stack]\nname = \"s\"\n[args]\nTARGETARCH = \"x\"\n[component.a]\nfrom = \"scratch\"\n";
        let msg = on("amd64", text).expect_err("reserved").render();
        assert!(msg.contains("`TARGETARCH` is a reserved name"), "{msg}");
        let vars = PlatformVars::new(("linux", "arm", Some("v7")), ("linux", "amd64", None));
        assert_eq!(
            vars.vars()
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>(),
            [
                "TARGETPLATFORM=linux/arm/v7",
                "TARGETOS=linux",
                "TARGETARCH=arm",
                "TARGETVARIANT=v7",
                "BUILDPLATFORM=linux/amd64",
                "BUILDOS=linux",
                "BUILDARCH=amd64",
                "BUILDVARIANT=",
            ]
        );
    }

    #[test]
    fn image_lists_give_a_primary_name_and_extra_tags() {
        let text = r#"[stack]
name = "s"
image = ["reg.local/s/{component}:{version}", "reg.local/s/{component}:latest"]

[args]
version = "1.2"

[template.t]
from = "scratch"
image = ["reg.local/t/{component}:{version}", "other.local/{component}:1"]

[component.base]
from = "scratch"

[component.app]
from = "base"
image = "reg.local/app:{version}"

[component.svc]
extends = "t"
"#;
        let stack = load("strata.toml", text.as_bytes(), &Overrides::default()).expect("valid");
        let names = |c: &str| -> Vec<String> {
            let c = stack.component(c).expect("component");
            c.names().map(|n| n.familiar()).collect()
        };
        assert_eq!(
            names("base"),
            ["reg.local/s/base:1.2", "reg.local/s/base:latest"]
        );
        let base = stack.component("base").expect("base");
        assert_eq!(base.image.familiar(), "reg.local/s/base:1.2");
        assert_eq!(base.extra_tags.len(), 1);
        // A component's own rule (a string) replaces the stack's list.
        assert_eq!(names("app"), ["reg.local/app:1.2"]);
        // A template's list is inherited as a whole.
        assert_eq!(names("svc"), ["reg.local/t/svc:1.2", "other.local/svc:1"]);
        // `from = "base"` still reads the primary name's component.
        assert!(matches!(
            &stack.component("app").expect("app").base,
            crate::graph::Base::Component(c) if c == "base"
        ));
    }

    #[test]
    fn two_rules_naming_the_same_tag_are_an_error_even_through_args() {
        let text = "[stack]\nname = \"s\"\nimage = [\"r/{component}:{version}\", \"r/{component}\"]\n[args]\nversion = \"latest\"\n[component.a]\nfrom = \"scratch\"\n";
        let err = load("strata.toml", text.as_bytes(), &Overrides::default())
            .expect_err("r/a:latest twice")
            .render();
        assert!(err.contains("error[E0310]"), "{err}");
        assert!(err.contains("`r/a:latest` twice"), "{err}");
        let mut o = Overrides::default();
        o.args.push(("version".into(), "2.0".into()));
        let ok = load("strata.toml", text.as_bytes(), &o).expect("distinct with version=2.0");
        let a = ok.component("a").expect("a");
        assert_eq!(a.image.familiar(), "r/a:2.0");
        assert_eq!(a.extra_tags[0].familiar(), "r/a:latest");
    }
}
