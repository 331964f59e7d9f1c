//! The fuzz targets' bodies, shared with the root package's
//! `tests/fuzz_regressions.rs` (included there with `#[path]`), so a
//! regression input replays through exactly what the fuzzer ran.
//!
//! Each function panics when it finds a bug: a panic inside Strata, a
//! diagnostic that points outside the file, an LLB definition that does
//! not validate, or lowering that is not deterministic.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use strata::frontend::opts::{self, FrontendOpts};
use strata::graph::Stack;
use strata::lower::{self, BaseImage, BuildContext, BuildMetadata};
use strata::spec::{self, Diagnostics, Overrides};

/// The name diagnostics show for fuzzed stack files.
pub const FILE_NAME: &str = "fuzz.toml";

/// A stack the `frontend_opts` target loads with the options it parsed:
/// args of every type, a profile, mirrored images and a condition.
pub const OPTS_STACK: &str = r#"[stack]
name = "opts"
image = "{prefix}/{component}:{tag}"

[args]
prefix = "fuzz"
tag = "1.0"
gpu = false
n = 3
flavour = { type = "enum", values = ["cpu", "cuda"], default = "cpu" }

[profiles.gpu]
args = { gpu = true, flavour = "cuda" }

[user]
name = "app"
uid = 1000

[component.base]
from = "debian:bookworm"
run = [{ cmd = "echo {n} {flavour}", network = "none" }]

[component.gpu]
when = "gpu && flavour == 'cuda'"
gpu = { of = "base", base = "nvidia/cuda:12.1.1-runtime-ubuntu22.04" }
"#;

/// Every diagnostic lies inside the file, and rendering them works.
fn check_diagnostics(diags: &Diagnostics, what: &str) {
    let len = diags.file.text.len();
    assert!(!diags.items.is_empty(), "{what}: Err without a diagnostic");
    for d in &diags.items {
        assert!(
            d.span.start <= d.span.end && d.span.end <= len,
            "{what}: span {:?} outside the file ({len} bytes): {}",
            d.span,
            d.message
        );
        // Every diagnostic says how to fix it (the catalogue's rule).
        assert!(
            d.help.as_deref().is_some_and(|h| !h.trim().is_empty()),
            "{what}: `{}` has no help",
            d.message
        );
        assert!(!d.message.trim().is_empty(), "{what}: an empty message");
        for n in &d.notes {
            assert!(
                n.span.start <= n.span.end && n.span.end <= len,
                "{what}: note span {:?} outside the file ({len} bytes): {}",
                n.span,
                n.message
            );
        }
        if d.severity == spec::Severity::Warning {
            assert!(
                strata::lint::LINTS.iter().any(|l| l.id == d.code),
                "{what}: warning with unknown code `{}`",
                d.code
            );
        }
    }
    let rendered = diags.render();
    assert!(
        rendered.contains(&format!("--> {}:", diags.file.name)),
        "{what}: {rendered}"
    );
}

fn check_stack(stack: &Stack, what: &str) {
    let warnings = Diagnostics {
        file: stack.file.clone(),
        items: stack.warnings.clone(),
    };
    if !warnings.items.is_empty() {
        check_diagnostics(&warnings, what);
    }
    let _ = strata::graph::render::text(stack);
    let _ = strata::graph::render::json(stack);
}

/// `stack`: any bytes through `strata::load`; a stack that loads is lowered
/// like the `lower` target's.
pub fn stack(data: &[u8]) {
    match strata::load(FILE_NAME, data, &Overrides::default()) {
        Ok(stack) => {
            check_stack(&stack, "stack");
            lower_enabled(&stack, &build_context(), "stack");
        }
        Err(diags) => check_diagnostics(&diags, "stack"),
    }
}

fn build_context() -> BuildContext {
    BuildContext {
        metadata: BuildMetadata {
            revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
            source_date_epoch: Some(1_700_000_000),
            ..BuildMetadata::default()
        },
        ignore_files: BTreeMap::from([(
            ".dockerignore".to_owned(),
            ".git\n*.pyc\n!keep.pyc\n".to_owned(),
        )]),
        bases: base_images(),
        ..BuildContext::default()
    }
}

/// Configs for the images the fuzzers name most, as `ResolveImageConfig`
/// would return them: env, user, workdir, entrypoint to inherit.
fn base_images() -> BTreeMap<String, BaseImage> {
    let mut bases = BTreeMap::new();
    for (image, config) in [
        (
            "debian:bookworm",
            serde_json::json!({"config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["bash"]}}),
        ),
        (
            "python:3.11-slim-bookworm",
            serde_json::json!({"config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "PYTHON_VERSION=3.11.9"], "Cmd": ["python3"], "WorkingDir": "/"}}),
        ),
        (
            "nvidia/cuda:12.1.1-runtime-ubuntu22.04",
            serde_json::json!({"config": {"Env": ["PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/bin:/bin", "NVIDIA_VISIBLE_DEVICES=all"], "Entrypoint": ["/opt/nvidia/nvidia_entrypoint.sh"], "User": "0", "Labels": {"maintainer": "NVIDIA"}}}),
        ),
        (
            "strata.local/busybox:1.36",
            serde_json::json!({"config": {"Cmd": ["sh"], "User": "nobody", "WorkingDir": "/tmp", "ExposedPorts": {"80/tcp": {}}}}),
        ),
    ] {
        if let Ok(r) = strata::graph::ImageRef::parse(image) {
            bases.insert(
                r.normalized(),
                BaseImage {
                    reference: format!("{}@sha256:{}", r.name(), "b".repeat(64)),
                    config,
                },
            );
        }
    }
    bases
}

/// Lowers every enabled component twice: it lowers, to a valid
/// definition, the same bytes both times. Returns how many lowered.
fn lower_enabled(stack: &Stack, ctx: &BuildContext, what: &str) -> usize {
    let mut lowered = 0;
    let names: Vec<String> = stack.enabled().map(|c| c.name.clone()).collect();
    for name in names {
        let _ = lower::external_images(stack, &name);
        let _ = lower::ignore_files(stack, &name);
        match lower::lower(stack, &name, ctx) {
            Ok(first) => {
                if let Err(e) = strata_llb::validate(&first.definition) {
                    panic!(
                        "{what}: `{name}` gives an invalid definition: {e}\n{}",
                        stack.file.text
                    );
                }
                let again = lower::lower(stack, &name, ctx).expect("lowered once, lowers again");
                assert_eq!(
                    strata_llb::encode_definition(&first.definition),
                    strata_llb::encode_definition(&again.definition),
                    "{what}: `{name}` lowers to different bytes twice"
                );
                assert_eq!(first.image_config, again.image_config);
                lowered += 1;
            }
            // The stack resolved: every check is done, and an enabled
            // component must lower. An error here is a check resolve missed.
            Err(e) => panic!(
                "{what}: `{name}` resolved but does not lower: {} (at {:?})\n{}",
                e.message, e.span, stack.file.text
            ),
        }
    }
    lowered
}

/// How far a `lower` input got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LowerOutcome {
    /// The stack resolved.
    pub resolved: bool,
    /// Components lowered to a valid definition.
    pub lowered: usize,
}

/// `lower`: a stack file's text, resolved, then every enabled component
/// lowered twice (the same bytes both times) and its LLB validated.
pub fn lower_toml(text: &str) -> LowerOutcome {
    let mut outcome = LowerOutcome::default();
    let stack = match strata::load(FILE_NAME, text.as_bytes(), &Overrides::default()) {
        Ok(stack) => stack,
        Err(diags) => {
            check_diagnostics(&diags, "lower: resolve");
            return outcome;
        }
    };
    outcome.resolved = true;
    check_stack(&stack, "lower");
    outcome.lowered = lower_enabled(&stack, &build_context(), "lower");
    outcome
}

/// `frontend_opts`: bytes as BuildKit's option variables (one `key=value`
/// per line, any bytes), through the option parser, then the options'
/// overrides applied to [`OPTS_STACK`].
pub fn frontend_opts(data: &[u8]) {
    let vars = data.split(|b| *b == b'\n').enumerate().map(|(i, line)| {
        (
            OsString::from(format!("BUILDKIT_FRONTEND_OPT_{i}")),
            OsString::from_vec(line.to_vec()),
        )
    });
    let raw = opts::raw_from_env(vars);
    let parsed = match FrontendOpts::parse(&raw) {
        Ok(o) => o,
        Err(e) => {
            assert!(
                !e.problems.is_empty(),
                "frontend_opts: Err without a problem"
            );
            return;
        }
    };
    for p in &parsed.platforms {
        let text = p.to_string();
        let again = opts::parse_platform(&text)
            .unwrap_or_else(|e| panic!("frontend_opts: `{text}` does not parse again: {e}"));
        assert_eq!(&again, p, "frontend_opts: platform round trip");
    }
    let platform = parsed.platforms.first().cloned().unwrap_or_default();
    let _ = parsed.no_cache.applies_to("base");
    let overrides = parsed.overrides(&platform);
    let stack = match strata::load("strata.toml", OPTS_STACK.as_bytes(), &overrides) {
        Ok(stack) => stack,
        Err(diags) => return check_diagnostics(&diags, "frontend_opts"),
    };
    check_stack(&stack, "frontend_opts");
    // The build context the gateway makes from the same options.
    let ctx = BuildContext {
        platform,
        session_id: Some("fuzz-session".into()),
        image_resolve_mode: parsed.image_resolve_mode,
        metadata: BuildMetadata {
            revision: parsed.vcs_revision.clone(),
            branch: None,
            source: parsed.vcs_source.clone(),
            source_date_epoch: parsed.source_date_epoch,
        },
        no_cache: parsed.no_cache.applies_to("base"),
        labels: parsed.labels.clone(),
        ignore_files: BTreeMap::new(),
        ..BuildContext::default()
    };
    lower_enabled(&stack, &ctx, "frontend_opts");
}

/// A stack whose every interpolated place takes a build arg: the
/// `build_args` target fills `a`..`f` with hostile values.
pub const HOSTILE_STACK: &str = r#"[stack]
name = "hostile"
image = "fuzz/{component}:{a}"

[args]
a = "1"
b = "b"
c = "c"
d = "d"
e = "e"
f = "f"

[user]
name = "app"
uid = 1000
home = "/home/{a}"
shell = "/bin/{b}"

[component.base]
from = "debian:bookworm"
workdir = "/srv/{c}"
env = { X = "{d}" }
labels = { "org.opencontainers.image.version" = "{e}" }
steps = [
  { apt = ["{a}", "tini={b}"] },
  { pip = ["{c}", "six=={d}"] },
  { conda = { env = "e{e}", packages = ["{f}"], channels = ["{a}"] } },
  { copy = { src = "app", dst = "/app/{f}" } },
  { workdir = "/w/{b}" },
  { run = { cmd = "true", name = "step {c}", network = "none" } },
]
"#;

/// `build_args`: bytes split at 0xff into the values of `a`..`f` of
/// [`HOSTILE_STACK`]. Either the stack is refused with located diagnostics
/// that show on one line each, or every value landed where it is safe:
/// account fields without `:` or line breaks, package operands that are
/// not options, paths and step names without control characters.
pub fn build_args(data: &[u8]) {
    let overrides = Overrides {
        args: data
            .split(|b| *b == 0xff)
            .zip(["a", "b", "c", "d", "e", "f"])
            .map(|(v, k)| (k.to_owned(), String::from_utf8_lossy(v).into_owned()))
            .collect(),
        ..Overrides::default()
    };
    let stack = match strata::load(FILE_NAME, HOSTILE_STACK.as_bytes(), &overrides) {
        Ok(stack) => stack,
        Err(diags) => {
            check_diagnostics(&diags, "build_args");
            for d in &diags.items {
                let shown = d.shown_message();
                assert!(
                    !shown.chars().any(char::is_control),
                    "build_args: a message shows a control character: {shown:?}"
                );
            }
            return;
        }
    };
    let unsafe_text = |s: &str| s.chars().any(char::is_control);
    if let Some(p) = &stack.user {
        for field in [&p.home, &p.shell] {
            assert!(
                field.starts_with('/') && !field.contains(':') && !unsafe_text(field),
                "build_args: passwd field {field:?}"
            );
        }
    }
    for c in &stack.components {
        if let Some(w) = &c.config.workdir {
            assert!(!unsafe_text(w), "build_args: workdir {w:?}");
        }
        for step in &c.steps {
            use strata::graph::StepKind;
            let operands: Vec<&String> = match &step.kind {
                StepKind::Apt(a) => a.packages.iter().collect(),
                StepKind::Pip(p) => p.packages.iter().collect(),
                StepKind::Conda(cd) => cd.packages.iter().chain(&cd.channels).collect(),
                StepKind::Copy(cp) => {
                    assert!(!unsafe_text(&cp.dst), "build_args: dst {:?}", cp.dst);
                    Vec::new()
                }
                StepKind::Workdir { path } => {
                    assert!(!unsafe_text(path), "build_args: workdir {path:?}");
                    Vec::new()
                }
                _ => Vec::new(),
            };
            for o in operands {
                assert!(
                    !o.starts_with('-') && !unsafe_text(o),
                    "build_args: operand {o:?}"
                );
            }
        }
    }
    let ctx = build_context();
    for c in stack.enabled() {
        let Ok(lowered) = lower::lower(&stack, &c.name, &ctx) else {
            panic!("build_args: `{}` resolved but does not lower", c.name);
        };
        for op in &lowered.definition.metadata {
            for (k, v) in &op.1.description {
                assert!(!unsafe_text(v), "build_args: op description {k} = {v:?}");
            }
        }
    }
}

/// Any bytes as a bundle: `strata bundle verify` answers ok or an error,
/// never a panic, in bounded memory. True when the bytes verify.
pub fn bundle(data: &[u8]) -> bool {
    match strata::bundle::verify_stream(data, "fuzz.bundle") {
        Ok(v) => {
            assert!(
                v.manifest.format == strata::bundle::FORMAT,
                "bundle: format"
            );
            true
        }
        Err(e) => {
            assert!(!format!("{e:#}").is_empty(), "bundle: an empty error");
            false
        }
    }
}
