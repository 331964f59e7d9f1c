//! The LLB of every component of every `examples/*/strata.toml`, lowered
//! with a fixed build context and kept as insta snapshots named
//! `<example>__<component>` (the readable dump of the Definition, the
//! image config, and each test's own ops). Also: the bytes are the same every time, in this process
//! and from `strata llb` run as separate processes; they decode and
//! validate as buildkitd would load them; the order of the tables in
//! the stack file does not matter; and the FATE example, written with
//! templates and matrices, lowers as its written-out version did.
//!
//! Examples are found by listing `examples/`, so a new one is covered as
//! soon as it exists (accept its snapshots with `INSTA_UPDATE=always` or
//! `cargo insta review`). A component disabled by default is lowered with
//! the first profile that enables it, or else with every bool arg on.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::{root, strata_command, succeeded};

use serde_json::{json, Value};
use strata::graph::{ArgType, Stack};
use strata::lower::{self, BuildContext, BuildMetadata, Lowered};
use strata::spec::Overrides;
use strata_llb::{decode_definition, digest_of, encode_definition, pb, validate};

const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";
const SOURCE: &str = "https://example.com/repo.git";
const EPOCH: i64 = 1_700_000_000;

/// One component to lower, with the args that enable it.
struct Target {
    example: String,
    /// `examples/<example>/strata.toml`, relative to the crate root (as
    /// the CLI is given it, so source maps name the same file).
    file: String,
    component: String,
    profile: Option<String>,
    args: Vec<(String, String)>,
}

impl Target {
    fn overrides(&self) -> Overrides {
        Overrides {
            args: self.args.clone(),
            profile: self.profile.clone(),
            mirrors: Vec::new(),
            ..Overrides::default()
        }
    }

    fn snapshot(&self) -> String {
        format!("{}__{}", self.example, self.component)
    }

    fn load(&self) -> Stack {
        load_text(&self.file, &read(&self.file), &self.overrides())
    }
}

fn read(file: &str) -> String {
    std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn load_text(name: &str, text: &str, overrides: &Overrides) -> Stack {
    strata::load(name, text.as_bytes(), overrides).unwrap_or_else(|d| {
        panic!(
            "{name} (profile {:?}, args {:?}) does not load:\n{d}",
            overrides.profile, overrides.args
        )
    })
}

/// Every example: its name and its stack file, relative to the root.
fn examples() -> Vec<(String, String)> {
    common::examples()
        .into_iter()
        .map(|(name, _)| {
            let file = format!("examples/{name}/strata.toml");
            (name, file)
        })
        .collect()
}

/// Every component of every example, each with the first overrides that
/// enable it: none, then each profile in order, then every bool arg true.
fn targets() -> Vec<Target> {
    let mut out = Vec::new();
    for (example, file) in examples() {
        let text = read(&file);
        let default = load_text(&file, &text, &Overrides::default());
        let mut candidates = vec![Overrides::default()];
        candidates.extend(default.profiles.iter().map(|p| Overrides {
            profile: Some(p.name.clone()),
            ..Overrides::default()
        }));
        candidates.push(Overrides {
            args: default
                .args
                .iter()
                .filter(|a| a.kind == ArgType::Bool)
                .map(|a| (a.name.clone(), "true".to_owned()))
                .collect(),
            ..Overrides::default()
        });
        let stacks: Vec<(Overrides, Stack)> = candidates
            .into_iter()
            .map(|o| {
                let stack = load_text(&file, &text, &o);
                (o, stack)
            })
            .collect();
        for c in &default.components {
            let Some((o, _)) = stacks
                .iter()
                .find(|(_, s)| s.component(&c.name).is_some_and(|c| c.enabled))
            else {
                panic!("{file}: no profile or args enable `{}`", c.name);
            };
            out.push(Target {
                example: example.clone(),
                file: file.clone(),
                component: c.name.clone(),
                profile: o.profile.clone(),
                args: o.args.clone(),
            });
        }
    }
    out
}

/// The fixed context of the snapshots.
fn golden_context(stack: &Stack, target: &Target) -> BuildContext {
    BuildContext {
        metadata: BuildMetadata {
            revision: Some(REVISION.into()),
            branch: None,
            source: Some(SOURCE.into()),
            source_date_epoch: Some(EPOCH),
        },
        ignore_files: ignore_files(stack, target),
        ..BuildContext::default()
    }
}

/// The context `strata llb --source-date-epoch` builds.
fn cli_context(stack: &Stack, target: &Target) -> BuildContext {
    BuildContext {
        metadata: BuildMetadata {
            source_date_epoch: Some(EPOCH),
            ..BuildMetadata::default()
        },
        ignore_files: ignore_files(stack, target),
        ..BuildContext::default()
    }
}

fn ignore_files(stack: &Stack, target: &Target) -> BTreeMap<String, String> {
    let dir: PathBuf = root().join(&target.file);
    let dir = dir.parent().expect("the example's directory");
    strata::cli::read_ignore_files(dir, stack, &target.component)
}

fn lower_target(stack: &Stack, target: &Target, ctx: &BuildContext) -> Lowered {
    lower::lower(stack, &target.component, ctx)
        .unwrap_or_else(|e| panic!("{}: lowering: {e}", target.snapshot()))
}

fn bytes(l: &Lowered) -> Vec<u8> {
    encode_definition(&l.definition)
}

/// The target's tests, each as its name and the ops it adds to the image's
/// graph (its exec on the finished image; the rest is the image's own).
fn tests_json(l: &Lowered) -> Value {
    let image = strata_llb::dump::to_json(&l.definition);
    let in_image: BTreeSet<&str> = image["ops"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|op| op["digest"].as_str())
        .collect();
    l.tests
        .iter()
        .map(|t| {
            let dump = strata_llb::dump::to_json(&t.definition);
            let ops: Vec<&Value> = dump["ops"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|op| op["kind"] != "terminal")
                .filter(|op| !op["digest"].as_str().is_some_and(|d| in_image.contains(d)))
                .collect();
            json!({ "name": t.name, "ops": ops })
        })
        .collect()
}

/// The Definition without its source map (the stack file's text and the
/// lines of each op): what the build depends on.
fn without_source(def: &pb::Definition) -> Vec<u8> {
    encode_definition(&pb::Definition {
        source: None,
        ..def.clone()
    })
}

#[test]
fn every_component_of_every_example() {
    let targets = targets();
    for t in &targets {
        let stack = t.load();
        let lowered = lower_target(&stack, t, &golden_context(&stack, t));
        let mut overrides = serde_json::Map::new();
        if let Some(p) = &t.profile {
            overrides.insert("profile".into(), json!(p));
        }
        if !t.args.is_empty() {
            overrides.insert("args".into(), json!(t.args));
        }
        let doc = json!({
            "component": t.component,
            "overrides": overrides,
            "definition": strata_llb::dump::to_json(&lowered.definition),
            "image_config": lowered.image_config,
            "tests": tests_json(&lowered),
        });
        let text = serde_json::to_string_pretty(&doc).expect("JSON") + "\n";
        insta::assert_snapshot!(t.snapshot(), text);
    }
    // Every example contributes, and names are unique.
    let mut names: Vec<String> = targets.iter().map(Target::snapshot).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), targets.len());
    for (example, _) in examples() {
        assert!(targets.iter().any(|t| t.example == example), "{example}");
    }
}

#[test]
fn marshalling_twice_gives_the_same_bytes() {
    for t in targets() {
        let stack = t.load();
        let ctx = golden_context(&stack, &t);
        let a = lower_target(&stack, &t, &ctx);
        let b = lower_target(&stack, &t, &ctx);
        let again = lower_target(&t.load(), &t, &ctx);
        assert_eq!(
            encode_definition(&a.definition),
            encode_definition(&a.definition),
            "{}",
            t.snapshot()
        );
        assert!(bytes(&a) == bytes(&b), "{}: same stack", t.snapshot());
        assert!(
            bytes(&a) == bytes(&again),
            "{}: stack loaded again",
            t.snapshot()
        );
        assert_eq!(a.image_config, b.image_config);
        assert_eq!(a.image_config, again.image_config);
        // The build's VCS metadata is image config only, never layers.
        let cli = lower_target(&stack, &t, &cli_context(&stack, &t));
        assert!(
            bytes(&a) == bytes(&cli),
            "{}: metadata reached the ops",
            t.snapshot()
        );
        // Nor the tests: a new commit does not run them again.
        let tests = |l: &Lowered| -> Vec<Vec<u8>> {
            l.tests
                .iter()
                .map(|t| encode_definition(&t.definition))
                .collect()
        };
        assert!(
            tests(&a) == tests(&b),
            "{}: tests, same stack",
            t.snapshot()
        );
        assert!(
            tests(&a) == tests(&cli),
            "{}: metadata reached the tests",
            t.snapshot()
        );
    }
}

fn run_cli(t: &Target) -> Vec<u8> {
    let mut cmd = strata_command();
    cmd.args([
        "llb",
        &t.file,
        "--target",
        &t.component,
        "--format",
        "binary",
    ])
    .args(["--source-date-epoch", &EPOCH.to_string()])
    .env_remove("SOURCE_DATE_EPOCH");
    if let Some(p) = &t.profile {
        cmd.args(["--profile", p]);
    }
    for (k, v) in &t.args {
        cmd.args(["--arg", &format!("{k}={v}")]);
    }
    let out = cmd.output().expect("strata runs");
    succeeded(out, "strata llb for", &[&t.snapshot()]).stdout
}

#[test]
fn the_cli_writes_the_same_bytes_as_the_library() {
    for t in targets() {
        let first = run_cli(&t);
        let second = run_cli(&t);
        assert!(
            first == second,
            "{}: two runs of strata llb differ",
            t.snapshot()
        );
        let stack = t.load();
        let lowered = lower_target(&stack, &t, &cli_context(&stack, &t));
        let ours = bytes(&lowered);
        if first != ours {
            let theirs = decode_definition(&first).expect("the CLI's bytes decode");
            assert_eq!(
                strata_llb::dump::to_pretty_string(&theirs),
                strata_llb::dump::to_pretty_string(&lowered.definition),
                "{}",
                t.snapshot()
            );
            panic!("{}: same ops, other bytes", t.snapshot());
        }
    }
}

#[test]
fn every_definition_decodes_and_validates() {
    for t in targets() {
        let stack = t.load();
        let lowered = lower_target(&stack, &t, &golden_context(&stack, &t));
        let wire = bytes(&lowered);
        let def = decode_definition(&wire).expect("decodes");
        assert_eq!(def, lowered.definition, "{}", t.snapshot());
        validate(&def).unwrap_or_else(|e| panic!("{}: {e}", t.snapshot()));

        // The same rules, spelled out.
        let ops: Vec<(String, pb::Op)> = def
            .def
            .iter()
            .map(|b| {
                use prost::Message;
                (digest_of(b), pb::Op::decode(b.as_slice()).expect("op"))
            })
            .collect();
        assert!(ops.len() >= 2, "{}", t.snapshot());
        let digests: Vec<&str> = ops.iter().map(|(d, _)| d.as_str()).collect();
        for (i, (d, op)) in ops.iter().enumerate() {
            assert!(d.starts_with("sha256:") && d.len() == 71);
            assert_eq!(
                digests.iter().filter(|x| **x == d).count(),
                1,
                "{}: op {d} emitted twice",
                t.snapshot()
            );
            for input in &op.inputs {
                let at = digests
                    .iter()
                    .position(|x| *x == input.digest)
                    .unwrap_or_else(|| {
                        panic!("{}: input {} of {d} is no op", t.snapshot(), input.digest)
                    });
                assert!(at < i, "{}: inputs come first", t.snapshot());
            }
            if i + 1 < ops.len() {
                assert!(
                    op.op.is_some(),
                    "{}: only the last op is a terminal",
                    t.snapshot()
                );
                assert!(
                    def.metadata.contains_key(d.as_str()),
                    "{}: metadata of {d}",
                    t.snapshot()
                );
            }
        }
        let (terminal_digest, terminal) = ops.last().expect("ops");
        assert!(terminal.op.is_none() && terminal.inputs.len() == 1);
        assert!(terminal.platform.is_none() && terminal.constraints.is_none());
        let caps = &def.metadata[terminal_digest.as_str()].caps;
        assert_eq!(caps.get("constraints"), Some(&true));
        assert_eq!(caps.get("platform"), Some(&true));
        for key in def.metadata.keys() {
            assert!(
                digests.contains(&key.as_str()),
                "{}: metadata key {key}",
                t.snapshot()
            );
        }
        let source = def.source.as_ref().expect("a source map");
        assert_eq!(source.infos.len(), 1);
        assert_eq!(source.infos[0].filename, t.file);
        assert_eq!(source.infos[0].data, read(&t.file).into_bytes());
        for key in source.locations.keys() {
            assert!(
                digests.contains(&key.as_str()),
                "{}: location key {key}",
                t.snapshot()
            );
        }
    }
}

/// The file with its top-level tables (`[x]`, `[x.y]`) in reverse order;
/// comment and blank lines travel with the table above them.
fn reverse_tables(text: &str) -> String {
    let is_header = |line: &str| {
        let l = line.trim_end();
        l.starts_with('[')
            && !l.starts_with("[[")
            && l.ends_with(']')
            && l[1..l.len() - 1]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.\"".contains(c))
    };
    let mut preamble = String::new();
    let mut tables: Vec<String> = Vec::new();
    for line in text.split_inclusive('\n') {
        if is_header(line) {
            tables.push(String::new());
        }
        match tables.last_mut() {
            Some(t) => t.push_str(line),
            None => preamble.push_str(line),
        }
    }
    for t in &mut tables {
        if !t.ends_with('\n') {
            t.push('\n');
        }
    }
    tables.reverse();
    preamble + &tables.concat()
}

#[test]
fn the_order_of_tables_does_not_change_the_llb() {
    for t in targets() {
        let text = read(&t.file);
        let reversed = reverse_tables(&text);
        assert_ne!(reversed, text, "{}: nothing to reorder", t.file);
        let a = t.load();
        let b = load_text(&t.file, &reversed, &t.overrides());
        let ctx = golden_context(&a, &t);
        let la = lower_target(&a, &t, &ctx);
        let lb = lower_target(&b, &t, &ctx);
        // The ops, their digests and metadata are the same; only the source
        // map (the file's text and each op's line) follows the file.
        if without_source(&la.definition) != without_source(&lb.definition) {
            assert_eq!(
                strata_llb::dump::to_pretty_string(&la.definition),
                strata_llb::dump::to_pretty_string(&lb.definition),
                "{}",
                t.snapshot()
            );
            panic!("{}: same ops, other bytes", t.snapshot());
        }
        assert_eq!(la.definition.def, lb.definition.def);
        assert_eq!(la.image_config, lb.image_config, "{}", t.snapshot());
        let keys = |l: &Lowered| {
            l.definition
                .source
                .as_ref()
                .map(|s| s.locations.keys().cloned().collect::<Vec<_>>())
        };
        assert_eq!(keys(&la), keys(&lb), "{}", t.snapshot());
    }
}

#[test]
fn reverse_tables_moves_whole_tables() {
    let text = "# head\n[a]\nx = 1\n# about b\n\n[b.c]\ny = [\n  1,\n]\n";
    assert_eq!(
        reverse_tables(text),
        "# head\n[b.c]\ny = [\n  1,\n]\n[a]\nx = 1\n# about b\n\n"
    );
}

/// The FATE example as it was before templates and matrices, every
/// component written out.
const FATE_UNROLLED: &str = "tests/data/stacks/fate-unrolled.toml";

fn enabled(stack: &Stack) -> BTreeSet<String> {
    stack
        .components
        .iter()
        .filter(|c| c.enabled)
        .map(|c| c.name.clone())
        .collect()
}

#[test]
fn fate_with_templates_and_matrices_lowers_as_written_out() {
    let unrolled = read(FATE_UNROLLED);
    let file = "examples/fate/strata.toml";
    let text = read(file);
    let names =
        |s: &Stack| -> Vec<String> { s.components.iter().map(|c| c.name.clone()).collect() };
    let (ours, theirs) = (
        load_text(file, &text, &Overrides::default()),
        load_text(FATE_UNROLLED, &unrolled, &Overrides::default()),
    );
    assert_eq!(
        names(&ours),
        names(&theirs),
        "the same components, in the same order"
    );
    // The rewritten conditions switch the same components for every flag.
    let flags: Vec<&str> = ours
        .args
        .iter()
        .filter(|a| a.kind == ArgType::Bool)
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(flags.len(), 8, "{flags:?}");
    for bits in 0u32..(1 << flags.len()) {
        let o = Overrides {
            args: flags
                .iter()
                .enumerate()
                .map(|(i, f)| ((*f).to_owned(), (bits >> i & 1).to_string()))
                .collect(),
            ..Overrides::default()
        };
        assert_eq!(
            enabled(&load_text(file, &text, &o)),
            enabled(&load_text(FATE_UNROLLED, &unrolled, &o)),
            "{o:?}"
        );
    }
    let targets: Vec<Target> = targets()
        .into_iter()
        .filter(|t| t.example == "fate")
        .collect();
    assert_eq!(targets.len(), names(&ours).len());
    for t in &targets {
        let (ours, theirs) = (
            t.load(),
            load_text(FATE_UNROLLED, &unrolled, &t.overrides()),
        );
        let ctx = golden_context(&ours, t);
        let (a, b) = (lower_target(&ours, t, &ctx), lower_target(&theirs, t, &ctx));
        let root = |l: &Lowered| digest_of(&without_source(&l.definition));
        assert_eq!(
            root(&a),
            root(&b),
            "{}: the image's Definition",
            t.component
        );
        assert_eq!(
            a.image_config, b.image_config,
            "{}: image config",
            t.component
        );
        let tests = |l: &Lowered| -> Vec<(String, String)> {
            l.tests
                .iter()
                .map(|x| (x.name.clone(), digest_of(&without_source(&x.definition))))
                .collect()
        };
        assert_eq!(tests(&a), tests(&b), "{}: its tests", t.component);
    }
}
