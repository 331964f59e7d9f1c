//! What lowering emits, op by op: small inline stacks, their Definitions
//! decoded and inspected as `pb::Op`s.
//!
//! Ops are found by their progress name (`llb.customname`, e.g.
//! `[app] apt install curl`), which names the component and the step.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use strata::graph::Stack;
use strata::lower::{self, BaseImage, BuildContext, BuildMetadata, Lowered};
use strata::spec::{self, Overrides};
use strata_llb::pb::{self, file_action::Action, op::Op, user_opt::User};
use strata_llb::{decode_definition, encode_definition, validate};

const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";
const SOURCE: &str = "https://example.com/repo.git";
const EPOCH: i64 = 1_700_000_000;
const EPOCH_RFC3339: &str = "2023-11-14T22:13:20Z";

// ------------------------------------------------------------ helpers ----

/// A test stack's text: `[stack]` named `t` on lines 2 and 3, then
/// `tables`, which start with a line break (a raw string's first line).
fn stack_text(tables: &str) -> String {
    format!("\n[stack]\nname = \"t\"{tables}")
}

/// Loads a test stack: `[stack]` named `t`, then `tables`.
fn stack(tables: &str) -> Stack {
    strata::load(
        "strata.toml",
        stack_text(tables).as_bytes(),
        &Overrides::default(),
    )
    .unwrap_or_else(|d| panic!("the test stack does not load:\n{d}"))
}

fn lower_with(stack: &Stack, target: &str, ctx: &BuildContext) -> Lowered {
    lower::lower(stack, target, ctx).unwrap_or_else(|e| panic!("lowering `{target}`: {e}"))
}

fn lower(stack: &Stack, target: &str) -> Lowered {
    lower_with(stack, target, &BuildContext::default())
}

/// A decoded, validated Definition.
struct Llb {
    def: pb::Definition,
    ops: Vec<(String, pb::Op)>,
}

impl Llb {
    fn new(def: &pb::Definition) -> Llb {
        validate(def).expect("the definition validates");
        // What goes over the wire decodes back to the same thing.
        let bytes = encode_definition(def);
        assert_eq!(&decode_definition(&bytes).expect("decodes"), def);
        let ops = strata_llb::validate::decode_ops(def).expect("ops decode");
        Llb {
            def: def.clone(),
            ops,
        }
    }

    fn of(lowered: &Lowered) -> Llb {
        Llb::new(&lowered.definition)
    }

    fn bytes(&self) -> Vec<u8> {
        encode_definition(&self.def)
    }

    fn digests(&self) -> Vec<&str> {
        self.ops.iter().map(|(d, _)| d.as_str()).collect()
    }

    fn name(&self, digest: &str) -> &str {
        self.def
            .metadata
            .get(digest)
            .and_then(|m| m.description.get("llb.customname"))
            .map_or("", String::as_str)
    }

    fn op(&self, digest: &str) -> &pb::Op {
        self.ops
            .iter()
            .find(|(d, _)| d == digest)
            .map(|(_, op)| op)
            .unwrap_or_else(|| panic!("no op {digest}"))
    }

    /// The op an input of `op` points at.
    fn input(&self, op: &pb::Op, index: i64) -> &pb::Op {
        let i = usize::try_from(index).expect("a real input");
        self.op(&op.inputs[i].digest)
    }

    /// Digest of the op the terminal points at: the component's filesystem.
    fn result(&self) -> &str {
        let (_, terminal) = self.ops.last().expect("a terminal");
        assert!(terminal.op.is_none());
        &terminal.inputs[0].digest
    }

    /// Every op whose name starts with `prefix`.
    fn named_all(&self, prefix: &str) -> Vec<(&str, &pb::Op)> {
        self.ops
            .iter()
            .filter(|(d, _)| self.name(d).starts_with(prefix))
            .map(|(d, op)| (d.as_str(), op))
            .collect()
    }

    /// The one op whose name starts with `prefix`.
    fn named(&self, prefix: &str) -> (&str, &pb::Op) {
        let found = self.named_all(prefix);
        assert_eq!(
            found.len(),
            1,
            "ops named `{prefix}*`: {:?}",
            self.ops
                .iter()
                .map(|(d, _)| self.name(d))
                .collect::<Vec<_>>()
        );
        found[0]
    }

    fn exec(&self, prefix: &str) -> (&pb::Op, &pb::ExecOp) {
        let (_, op) = self.named(prefix);
        match &op.op {
            Some(Op::Exec(e)) => (op, e),
            other => panic!("`{prefix}` is not an exec: {other:?}"),
        }
    }

    fn file(&self, prefix: &str) -> (&pb::Op, &pb::FileOp) {
        let (_, op) = self.named(prefix);
        match &op.op {
            Some(Op::File(f)) => (op, f),
            other => panic!("`{prefix}` is not a file op: {other:?}"),
        }
    }

    fn execs(&self) -> Vec<(&str, &pb::ExecOp)> {
        self.ops
            .iter()
            .filter_map(|(d, op)| match &op.op {
                Some(Op::Exec(e)) => Some((d.as_str(), e)),
                _ => None,
            })
            .collect()
    }

    fn sources(&self) -> Vec<&pb::SourceOp> {
        self.ops
            .iter()
            .filter_map(|(_, op)| match &op.op {
                Some(Op::Source(s)) => Some(s),
                _ => None,
            })
            .collect()
    }
}

fn source(op: &pb::Op) -> &pb::SourceOp {
    match &op.op {
        Some(Op::Source(s)) => s,
        other => panic!("not a source: {other:?}"),
    }
}

/// The `sh -c` script of an exec.
fn script(e: &pb::ExecOp) -> &str {
    let args = &e.meta.as_ref().expect("meta").args;
    assert_eq!(args[..2], ["/bin/sh", "-c"], "{args:?}");
    &args[2]
}

fn env(e: &pb::ExecOp) -> &[String] {
    &e.meta.as_ref().expect("meta").env
}

fn mount<'a>(e: &'a pb::ExecOp, dest: &str) -> &'a pb::Mount {
    e.mounts
        .iter()
        .find(|m| m.dest == dest)
        .unwrap_or_else(|| panic!("no mount at {dest}: {:?}", e.mounts))
}

fn copies(f: &pb::FileOp) -> Vec<(&pb::FileAction, &pb::FileActionCopy)> {
    f.actions
        .iter()
        .filter_map(|a| match &a.action {
            Some(Action::Copy(c)) => Some((a, c)),
            _ => None,
        })
        .collect()
}

/// A `local.*` JSON list attribute of a source.
fn patterns(s: &pb::SourceOp, attr: &str) -> Option<Vec<String>> {
    s.attrs
        .get(attr)
        .map(|v| serde_json::from_str(v).expect("a JSON list"))
}

fn owner(c: &pb::FileActionCopy) -> (u32, u32) {
    let id = |u: Option<&pb::UserOpt>| match u.and_then(|u| u.user.as_ref()) {
        Some(User::ById(id)) => *id,
        other => panic!("not a numeric owner: {other:?}"),
    };
    let chown = c.owner.as_ref().expect("an owner");
    (id(chown.user.as_ref()), id(chown.group.as_ref()))
}

/// Asserts two lowerings encode to the same bytes, showing the ops if not.
fn same_bytes(a: &Lowered, b: &Lowered, what: &str) {
    if encode_definition(&a.definition) != encode_definition(&b.definition) {
        assert_eq!(
            strata_llb::dump::to_pretty_string(&a.definition),
            strata_llb::dump::to_pretty_string(&b.definition),
            "{what}"
        );
        panic!("{what}: same ops, other bytes");
    }
}

fn cfg(l: &Lowered) -> &Value {
    &l.image_config["config"]
}

fn config_env(l: &Lowered) -> Vec<String> {
    serde_json::from_value(cfg(l)["Env"].clone()).expect("Env is a list")
}

fn metadata_ctx(epoch: Option<i64>) -> BuildContext {
    BuildContext {
        metadata: BuildMetadata {
            revision: Some(REVISION.into()),
            branch: None,
            source: Some(SOURCE.into()),
            source_date_epoch: epoch,
        },
        ..BuildContext::default()
    }
}

const POLICY: &str = r#"
[user]
name = "app"
uid = 1234
gid = 1234
home = "/home/app"
shell = "/bin/sh"
"#;

// ---------------------------------------------------------------- apt ----

#[test]
fn apt_is_one_exec_that_updates_and_installs_with_locked_cache_mounts() {
    let s = stack(
        r#"
[component.app]
from = "debian:bookworm-slim"
apt = ["curl", "ca-certificates"]
"#,
    );
    let l = Llb::of(&lower(&s, "app"));
    let apt: Vec<_> = l
        .execs()
        .into_iter()
        .filter(|(_, e)| script(e).contains("apt-get"))
        .collect();
    assert_eq!(apt.len(), 1, "one exec runs apt-get");
    let (_, e) = apt[0];
    assert_eq!(l.exec("[app] apt install").1, e);
    let sh = script(e);
    let update = sh.find(" update").expect("apt-get update");
    let install = sh
        .find(" install -y -qq --no-install-recommends curl ca-certificates")
        .expect("apt-get install without recommends");
    assert!(update < install, "{sh}");
    assert!(
        sh.starts_with("set -eu\n"),
        "a failed update fails the step"
    );
    for dest in ["/var/cache/apt", "/var/lib/apt"] {
        let m = mount(e, dest);
        assert_eq!(m.mount_type, pb::MountType::Cache as i32, "{dest}");
        let cache = m.cache_opt.as_ref().expect("cache options");
        assert_eq!(cache.sharing, pb::CacheSharingOpt::Locked as i32, "{dest}");
        assert!(!cache.id.is_empty());
        assert_eq!((m.input, m.output), (-1, -1), "{dest}: not an output");
    }
    assert_ne!(
        mount(e, "/var/cache/apt").cache_opt.as_ref().map(|c| &c.id),
        mount(e, "/var/lib/apt").cache_opt.as_ref().map(|c| &c.id),
    );
    assert_eq!(
        e.network,
        pb::NetMode::Unset as i32,
        "the base's sources need the network"
    );
    assert_eq!(e.meta.as_ref().map(|m| m.user.as_str()), Some("0:0"));
}

#[test]
fn apt_with_a_repository_is_offline_and_mounts_the_repository_read_only() {
    let s = stack(
        r#"
[packages]
apt-repo = "vendor/apt"
[component.app]
from = "debian:bookworm-slim"
apt = ["tini"]
copy = [{ src = "src", dst = "/src" }]
"#,
    );
    let l = Llb::of(&lower(&s, "app"));
    let (op, e) = l.exec("[app] apt install tini");
    assert_eq!(e.network, pb::NetMode::None as i32);
    let repo = mount(e, strata::lower::apt::REPO_MOUNT);
    assert_eq!(repo.mount_type, pb::MountType::Bind as i32);
    assert!(repo.readonly);
    assert_eq!(repo.output, -1);
    assert_eq!(repo.selector, "/vendor/apt");
    let src = source(l.input(op, repo.input));
    assert_eq!(src.identifier, "local://context");
    assert_eq!(
        patterns(src, "local.includepattern"),
        Some(vec!["vendor/apt/".to_owned()]),
        "only the repository is sent"
    );
    let sh = script(e);
    assert!(sh.contains("file:/run/strata/apt-repo ./"), "{sh}");
    assert!(sh.contains("Dir::Etc::SourceParts=/dev/null"), "{sh}");
    for dest in ["/var/cache/apt", "/var/lib/apt"] {
        assert_eq!(mount(e, dest).mount_type, pb::MountType::Cache as i32);
    }
    // A step-level repo wins over [packages].
    let s = stack(
        r#"
[component.app]
from = "debian:bookworm-slim"
apt = { packages = ["tini"], repo = "debs" }
"#,
    );
    let l = Llb::of(&lower(&s, "app"));
    let (_, e) = l.exec("[app] apt install tini");
    assert_eq!(e.network, pb::NetMode::None as i32);
    assert_eq!(mount(e, "/run/strata/apt-repo").selector, "/debs");
}

// ---------------------------------------------------------------- pip ----

fn pip_stack(copy: &str, requirements: &str) -> Stack {
    stack(&format!(
        r#"
[component.app]
from = "python:3.11-slim"
pip = {{ requirements = [{requirements}], venv = "/opt/venv", packages = ["six==1.16.0"] }}
copy = [{copy}]
"#
    ))
}

#[test]
fn pip_makes_a_venv_with_a_cache_mount_and_mounts_only_the_requirement_files() {
    let s = pip_stack(
        r#"{ src = "app", dst = "/app" }"#,
        r#""requirements.txt", "envs/dev.txt""#,
    );
    let l = Llb::of(&lower(&s, "app"));
    let (pip_digest, _) = l.named("[app] pip install");
    let (op, e) = l.exec("[app] pip install");
    let sh = script(e);
    assert!(
        sh.contains("[ -x /opt/venv/bin/python ] || python3 -m venv /opt/venv"),
        "{sh}"
    );
    assert!(
        sh.contains("/opt/venv/bin/pip install --cache-dir=/root/.cache/pip"),
        "{sh}"
    );
    assert!(sh.contains("-r /run/strata/requirements/requirements.txt -r /run/strata/requirements/envs/dev.txt six==1.16.0"), "{sh}");
    assert!(!sh.contains("--no-index"), "{sh}");
    assert_eq!(e.network, pb::NetMode::Unset as i32);

    let cache = mount(e, "/root/.cache/pip");
    assert_eq!(cache.mount_type, pb::MountType::Cache as i32);
    assert_eq!(
        cache.cache_opt.as_ref().map(|c| c.sharing),
        Some(pb::CacheSharingOpt::Locked as i32)
    );

    let reqs = mount(e, "/run/strata/requirements");
    assert_eq!(reqs.mount_type, pb::MountType::Bind as i32);
    assert!(reqs.readonly);
    let src = source(l.input(op, reqs.input));
    assert_eq!(src.identifier, "local://context");
    assert_eq!(
        patterns(src, "local.includepattern"),
        Some(vec![
            "requirements.txt".to_owned(),
            "envs/dev.txt".to_owned()
        ]),
        "the requirement files and nothing else"
    );

    // The venv is on PATH for what follows.
    let out = lower(&s, "app");
    let env = config_env(&out);
    assert!(env.contains(&"VIRTUAL_ENV=/opt/venv".to_owned()), "{env:?}");

    // Other context files (code) do not reach the pip step: changing the
    // copied paths leaves the pip exec, and its requirements source, as they were.
    let other = pip_stack(
        r#"{ src = ["app", "lib"], dst = "/app" }, { src = "tests", dst = "/tests" }"#,
        r#""requirements.txt", "envs/dev.txt""#,
    );
    let l2 = Llb::of(&lower(&other, "app"));
    assert_eq!(l2.named("[app] pip install").0, pip_digest);
    assert_ne!(l2.result(), l.result());
    // ...while another requirement file does change it.
    let third = pip_stack(r#"{ src = "app", dst = "/app" }"#, r#""requirements.txt""#);
    assert_ne!(
        Llb::of(&lower(&third, "app")).named("[app] pip install").0,
        pip_digest
    );
}

#[test]
fn pip_with_find_links_is_offline() {
    let s = stack(
        r#"
[packages]
find-links = "vendor/wheels"
[component.app]
from = "python:3.11-slim"
pip = ["six==1.16.0"]
"#,
    );
    let l = Llb::of(&lower(&s, "app"));
    let (op, e) = l.exec("[app] pip install");
    let sh = script(e);
    assert!(
        sh.contains("--no-index --find-links=/run/strata/wheels"),
        "{sh}"
    );
    assert!(
        sh.contains("python3 -m venv /opt/venv"),
        "the default venv: {sh}"
    );
    assert_eq!(e.network, pb::NetMode::None as i32);
    let wheels = mount(e, "/run/strata/wheels");
    assert!(wheels.readonly);
    assert_eq!(wheels.selector, "/vendor/wheels");
    let src = source(l.input(op, wheels.input));
    assert_eq!(src.identifier, "local://context");
    assert_eq!(
        patterns(src, "local.includepattern"),
        Some(vec!["vendor/wheels/".to_owned()])
    );
    assert_eq!(
        mount(e, "/root/.cache/pip").mount_type,
        pb::MountType::Cache as i32
    );
}

// -------------------------------------------------------------- conda ----

#[test]
fn conda_creates_a_named_env_with_channels_and_a_cache_mount() {
    let s = stack(
        r#"
[component.app]
from = "continuumio/miniconda3:24.7.1-0"
conda = [{ env = "py", packages = ["python=3.11", "pandas"], channels = ["conda-forge", "bioconda"], tool = "conda" }]
"#,
    );
    let l = Llb::of(&lower(&s, "app"));
    let (_, e) = l.exec("[app] conda create -n py");
    let sh = script(e);
    assert!(
        sh.contains("conda create -y -n py -c conda-forge -c bioconda python=3.11 pandas"),
        "{sh}"
    );
    let cache = mount(e, strata::lower::conda::PKGS_DIR);
    assert_eq!(cache.mount_type, pb::MountType::Cache as i32);
    assert_eq!(
        cache.cache_opt.as_ref().map(|c| c.sharing),
        Some(pb::CacheSharingOpt::Locked as i32)
    );
    assert!(sh.contains(&format!(
        "CONDA_PKGS_DIRS={}",
        strata::lower::conda::PKGS_DIR
    )));
}

// --------------------------------------------------------------- copy ----

#[test]
fn copy_from_the_context_sends_only_the_copied_paths_minus_the_ignore_file() {
    let s = stack(&format!(
        r#"
{POLICY}
[component.app]
from = "debian:bookworm-slim"
copy = [
  {{ src = ["src", "README.md"], dst = "/app/" }},
  {{ src = "conf", dst = "/etc/app", owner = "root" }},
]
"#
    ));
    let ctx = BuildContext {
        ignore_files: BTreeMap::from([(
            ".dockerignore".to_owned(),
            "# build output\n*.pyc\n\n/.git\n**/__pycache__\n".to_owned(),
        )]),
        ..BuildContext::default()
    };
    assert_eq!(lower::ignore_files(&s, "app"), [".dockerignore"]);
    let l = Llb::of(&lower_with(&s, "app", &ctx));

    let (op, f) = l.file("[app] COPY src README.md");
    let actions = copies(f);
    assert_eq!(actions.len(), 2);
    for ((a, c), src) in actions.iter().zip(["/src", "/README.md"]) {
        assert_eq!(c.src, src);
        assert_eq!(c.dest, "/app/");
        assert_eq!(
            owner(c),
            (0, 0),
            "root by default, even as the policy user runs"
        );
        let local = source(l.input(op, a.secondary_input));
        assert_eq!(local.identifier, "local://context");
        assert_eq!(
            patterns(local, "local.includepattern"),
            Some(vec!["src".to_owned(), "README.md".to_owned()])
        );
        assert_eq!(
            patterns(local, "local.excludepatterns"),
            Some(vec![
                "*.pyc".to_owned(),
                ".git".to_owned(),
                "**/__pycache__".to_owned()
            ])
        );
        assert_eq!(
            local.attrs.get("local.sharedkeyhint").map(String::as_str),
            Some("context")
        );
        assert!(
            !local.attrs.contains_key("local.session"),
            "no session given"
        );
    }
    // The first action reads the component, the second the first's result.
    assert_eq!(actions[0].0.input, 0);
    let (_, f) = l.file("[app] COPY conf");
    let [(_, c)] = copies(f)[..] else {
        panic!("one copy")
    };
    assert_eq!(owner(c), (0, 0), "owner = \"root\"");

    // A session id reaches the local sources.
    let with_session = BuildContext {
        session_id: Some("s3ss10n".into()),
        ..ctx
    };
    let l = Llb::of(&lower_with(&s, "app", &with_session));
    let (op, f) = l.file("[app] COPY conf");
    let local = source(l.input(op, f.actions[0].secondary_input));
    assert_eq!(
        local.attrs.get("local.session").map(String::as_str),
        Some("s3ss10n")
    );
}

#[test]
fn copies_belong_to_root_unless_the_owner_says_user() {
    let s = stack(&format!(
        r#"
{POLICY}
[component.app]
from = "debian:bookworm-slim"
copy = [{{ src = "a", dst = "/a" }}, {{ src = "b", dst = "/b", owner = "user" }}]
[component.tool]
from = "debian:bookworm-slim"
user = "root"
copy = [{{ src = "a", dst = "/a" }}, {{ src = "b", dst = "/b", owner = "user" }}]
"#
    ));
    for name in ["app", "tool"] {
        let l = Llb::of(&lower(&s, name));
        let (_, f) = l.file(&format!("[{name}] COPY a"));
        assert_eq!(
            owner(copies(f)[0].1),
            (0, 0),
            "{name}: root by default, whoever the image runs as"
        );
        let (_, f) = l.file(&format!("[{name}] COPY b"));
        assert_eq!(owner(copies(f)[0].1), (1234, 1234), "{name}: owner = user");
    }
}

#[test]
fn copy_of_the_whole_context_sends_the_whole_context() {
    // `src = "."`: the include pattern "." would match no path in
    // BuildKit's walk (patterns are matched against `dir/file`), so the
    // context is sent whole, minus the ignore file.
    let s = stack(
        r#"
[component.app]
from = "debian:bookworm-slim"
copy = [{ src = ".", dst = "/app", exclude = ["README.md"] }]
"#,
    );
    let ctx = BuildContext {
        ignore_files: BTreeMap::from([(".dockerignore".to_owned(), "*.pyc\n".to_owned())]),
        ..BuildContext::default()
    };
    let l = Llb::of(&lower_with(&s, "app", &ctx));
    let (op, f) = l.file("[app] COPY . /app");
    let (a, c) = copies(f)[0];
    let local = source(l.input(op, a.secondary_input));
    let include = patterns(local, "local.includepattern").unwrap_or_default();
    assert!(
        include
            .iter()
            .all(|p| !matches!(p.as_str(), "." | "" | "./")),
        "{include:?}"
    );
    assert_eq!(
        patterns(local, "local.excludepatterns"),
        Some(vec!["*.pyc".to_owned(), "README.md".to_owned()])
    );
    assert_eq!(c.exclude_patterns, ["README.md"]);
}

#[test]
fn a_context_directory_scopes_the_ignore_file() {
    let s = stack(
        r#"
[component.app]
from = "debian:bookworm-slim"
context = "sub"
copy = [{ src = "src", dst = "/app" }]
"#,
    );
    assert_eq!(lower::ignore_files(&s, "app"), ["sub/.dockerignore"]);
    let ctx = BuildContext {
        ignore_files: BTreeMap::from([(
            "sub/.dockerignore".to_owned(),
            "*.pyc\n!keep.pyc\n/build\n".to_owned(),
        )]),
        ..BuildContext::default()
    };
    let l = Llb::of(&lower_with(&s, "app", &ctx));
    let (op, f) = l.file("[app] COPY src");
    let (a, c) = copies(f)[0];
    assert_eq!(c.src, "/sub/src");
    let local = source(l.input(op, a.secondary_input));
    assert_eq!(
        patterns(local, "local.includepattern"),
        Some(vec!["sub/src".to_owned()])
    );
    // The patterns are the context directory's, as Docker reads them.
    assert_eq!(
        patterns(local, "local.excludepatterns"),
        Some(vec![
            "sub/*.pyc".to_owned(),
            "!sub/keep.pyc".to_owned(),
            "sub/build".to_owned()
        ])
    );
}

#[test]
fn copy_from_another_component_reads_its_last_op() {
    let s = stack(&format!(
        r#"
{POLICY}
[component.builder]
from = "debian:bookworm-slim"
run = ["make -C /src"]
[component.app]
from = "busybox:1.36"
copy = [{{ from = "builder", src = "/out/app", dst = "/usr/local/bin/app" }}]
"#
    ));
    let builder = Llb::of(&lower(&s, "builder"));
    let l = Llb::of(&lower(&s, "app"));
    let (op, f) = l.file("[app] COPY --from=builder");
    let (a, c) = copies(f)[0];
    assert_eq!(
        op.inputs[a.secondary_input as usize].digest,
        builder.result()
    );
    assert_eq!(c.src, "/out/app");
    assert_eq!(owner(c), (0, 0));
    for d in builder.digests().iter().take(builder.ops.len() - 1) {
        assert!(
            l.digests().contains(d),
            "builder's op {d} is in app's graph"
        );
    }
}

#[test]
fn copy_from_an_image_reads_an_image_source() {
    let s = stack(
        r#"
[component.app]
from = "debian:bookworm-slim"
copy = [{ from = "busybox:1.36", src = "/bin/busybox", dst = "/bin/busybox", mode = "0755" }]
"#,
    );
    let l = Llb::of(&lower(&s, "app"));
    let (op, f) = l.file("[app] COPY --from=");
    let (a, c) = copies(f)[0];
    let img = source(l.input(op, a.secondary_input));
    assert_eq!(
        img.identifier,
        "docker-image://docker.io/library/busybox:1.36"
    );
    assert_eq!(c.mode, 0o755);
    // Only the component's base needs a config.
    let wanted: Vec<String> = lower::external_images(&s, "app")
        .iter()
        .map(|r| r.normalized())
        .collect();
    assert_eq!(wanted, ["docker.io/library/debian:bookworm-slim"]);
}

// -------------------------------------------------------- user policy ----

const FAMILY: &str = r#"
[user]
name = "app"
uid = 1234
gid = 1234
[component.base]
from = "debian:bookworm-slim"
apt = ["tini"]
[component.node]
from = "base"
run = ["echo node"]
[component.researcher]
from = "base"
run = ["echo researcher"]
"#;

#[test]
fn the_user_policy_runs_once_on_an_external_base_and_never_on_a_component_base() {
    let s = stack(FAMILY);
    let base = Llb::of(&lower(&s, "base"));
    assert_eq!(base.named_all("[base] user policy").len(), 1);
    let (policy_op, policy) = base.exec("[base] user policy");
    let (policy_digest, _) = base.named("[base] user policy");
    assert_eq!(policy.network, pb::NetMode::None as i32);
    assert_eq!(policy.meta.as_ref().map(|m| m.user.as_str()), Some("0:0"));
    assert_eq!(
        source(base.input(policy_op, 0)).identifier,
        "docker-image://docker.io/library/debian:bookworm-slim"
    );

    let mut results = Vec::new();
    for child in ["node", "researcher"] {
        let l = Llb::of(&lower(&s, child));
        let policies: Vec<_> = l
            .execs()
            .into_iter()
            .filter(|(_, e)| script(e).contains("user policy"))
            .collect();
        assert_eq!(policies.len(), 1, "{child}: the base's policy only");
        assert_eq!(policies[0].0, policy_digest);
        assert!(l.named_all(&format!("[{child}] user policy")).is_empty());
        // The base is the same ops, by digest, under both children.
        for d in &base.digests()[..base.ops.len() - 1] {
            assert!(l.digests().contains(d), "{child} shares the base's op {d}");
        }
        let (run, _) = l.exec(&format!("[{child}] RUN echo {child}"));
        assert_eq!(
            run.inputs[0].digest,
            base.result(),
            "{child} starts from base"
        );
        results.push(l.result().to_owned());
    }
    assert_ne!(results[0], results[1]);
}

#[test]
fn the_user_policy_is_the_same_exec_on_every_kind_of_base() {
    let text = |mode: &str| {
        format!(
            r#"
[user]
name = "app"
uid = 1000
gid = 1000
home = "/home/app"
on-conflict = "{mode}"
[component.tiny]
from = "busybox:1.36"
[component.deb]
from = "debian:bookworm-slim"
[component.cuda]
from = "nvidia/cuda:12.1.1-base-ubuntu22.04"
"#
        )
    };
    // The CUDA stand-in is Ubuntu-like: uid 1000 is taken (by `ubuntu`),
    // which only the script can see, at build time.
    let mut ctx = BuildContext::default();
    ctx.bases.insert(
        "docker.io/nvidia/cuda:12.1.1-base-ubuntu22.04".into(),
        BaseImage {
            reference: "docker.io/nvidia/cuda:12.1.1-base-ubuntu22.04".into(),
            config: json!({"config": {"User": "1000", "Env": ["PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/bin:/bin", "NVIDIA_VISIBLE_DEVICES=all"]}}),
        },
    );
    for mode in ["rename", "error"] {
        let s = stack(&text(mode));
        let mut execs = Vec::new();
        for c in ["tiny", "deb", "cuda"] {
            let l = Llb::of(&lower_with(&s, c, &ctx));
            let (op, e) = l.exec(&format!("[{c}] user policy: app (1000:1000)"));
            assert!(matches!(l.input(op, 0).op, Some(Op::Source(_))));
            assert_eq!(l.execs().len(), 1, "{c}: the policy is the only exec");
            execs.push((e.clone(), op.platform.clone()));
        }
        assert_eq!(execs[0], execs[1], "busybox-like and debian-like");
        assert_eq!(execs[0], execs[2], "debian-like and the CUDA stand-in");
        let sh = script(&execs[0].0);
        assert!(sh.contains(&format!("mode={mode}")), "{sh}");
        assert!(sh.contains("uid=1000; gid=1000"), "{sh}");
        assert!(
            sh.contains("taking over user $old (uid $uid) as $u"),
            "{sh}"
        );
        assert!(
            sh.contains("taking over group $old (gid $gid) as $g"),
            "{sh}"
        );
        assert!(sh.contains("already belongs to user $old in the base image (on-conflict = error)"));
        assert!(
            !sh.contains("useradd") && !sh.contains("adduser"),
            "no tools the base may lack"
        );
    }
}

// ---------------------------------------------------------------- GPU ----

#[test]
fn a_gpu_flavour_grafts_the_cpu_component_onto_cuda() {
    let s = stack(&format!(
        r#"
{POLICY}
[component.cpu]
from = "python:3.11-slim"
pip = {{ packages = ["six"], venv = "/opt/venv" }}
copy = [{{ src = "app", dst = "/opt/app" }}]
env = {{ APP_MODE = "cpu" }}
workdir = "/opt/app"
expose = [8080]
entrypoint = ["/usr/bin/tini", "--"]
cmd = ["python", "-m", "app"]
[component.gpu]
gpu = {{ of = "cpu", base = "nvidia/cuda:12.1.1-base-ubuntu22.04", copy = ["/opt/venv", "/opt/app"] }}
env = {{ APP_MODE = "gpu" }}
"#
    ));
    let cpu = Llb::of(&lower(&s, "cpu"));
    let out = lower(&s, "gpu");
    let l = Llb::of(&out);
    assert!(l
        .sources()
        .iter()
        .any(|s| s.identifier == "docker-image://docker.io/nvidia/cuda:12.1.1-base-ubuntu22.04"));
    let (policy, _) = l.exec("[gpu] user policy");
    assert_eq!(
        source(l.input(policy, 0)).identifier,
        "docker-image://docker.io/nvidia/cuda:12.1.1-base-ubuntu22.04"
    );
    let (policy_digest, _) = l.named("[gpu] user policy");
    // The graft: the CPU component's last op mounted read-only and its
    // paths copied with `cp -a` (owners and modes kept), offline, as root.
    let (op, e) = l.exec("[gpu] GPU: copy /opt/venv /opt/app from cpu");
    assert_eq!(
        op.inputs[0].digest, policy_digest,
        "on the policy'd CUDA base"
    );
    let cpu_mount = mount(e, "/run/strata/cpu");
    assert_eq!(cpu_mount.mount_type, pb::MountType::Bind as i32);
    assert!(cpu_mount.readonly);
    assert_eq!(
        op.inputs[cpu_mount.input as usize].digest,
        cpu.result(),
        "the CPU component's state"
    );
    let sh = script(e);
    for p in ["/opt/venv", "/opt/app"] {
        assert!(
            sh.contains(&format!("cp -a /run/strata/cpu{p} {p}")),
            "{sh}"
        );
    }
    assert_eq!(e.network, pb::NetMode::None as i32);
    assert_eq!(e.meta.as_ref().map(|m| m.user.as_str()), Some("0:0"));
    // The CPU component's own ops are in the graph once, by digest.
    for d in &cpu.digests()[..cpu.ops.len() - 1] {
        assert!(l.digests().contains(d));
    }

    let env = config_env(&out);
    for e in [
        "NVIDIA_VISIBLE_DEVICES=all",
        "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
        "VIRTUAL_ENV=/opt/venv",
        "APP_MODE=gpu",
    ] {
        assert!(env.contains(&e.to_owned()), "{e} in {env:?}");
    }
    let c = cfg(&out);
    assert_eq!(c["Entrypoint"], json!(["/usr/bin/tini", "--"]));
    assert_eq!(c["Cmd"], json!(["python", "-m", "app"]));
    assert_eq!(c["WorkingDir"], json!("/opt/app"));
    assert_eq!(c["ExposedPorts"], json!({"8080/tcp": {}}));
    assert_eq!(c["User"], json!("1234:1234"));
}

// ----------------------------------------------------------- metadata ----

const META: &str = r#"
image = "registry.example.com/{component}:1.2.3"
[metadata]
env = { APP_REVISION = "revision", APP_CREATED = "created", APP_VERSION = "version" }
labels = { "org.opencontainers.image.vendor" = "Example" }
[component.base]
from = "debian:bookworm-slim"
description = "the base"
[component.app]
from = "base"
run = ["echo app"]
"#;

#[test]
fn metadata_sets_oci_labels_and_env_from_the_build_context() {
    let s = stack(META);
    let out = lower_with(&s, "app", &metadata_ctx(Some(EPOCH)));
    let labels = &cfg(&out)["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "app");
    assert_eq!(labels["org.opencontainers.image.version"], "1.2.3");
    assert_eq!(labels["org.opencontainers.image.revision"], REVISION);
    assert_eq!(labels["org.opencontainers.image.source"], SOURCE);
    assert_eq!(labels["org.opencontainers.image.created"], EPOCH_RFC3339);
    assert_eq!(labels["org.opencontainers.image.vendor"], "Example");
    assert!(
        labels.get("org.opencontainers.image.description").is_none(),
        "the base's description is not app's"
    );
    assert_eq!(out.image_config["created"], EPOCH_RFC3339);
    let env = config_env(&out);
    for e in [
        format!("APP_REVISION={REVISION}"),
        format!("APP_CREATED={EPOCH_RFC3339}"),
        "APP_VERSION=1.2.3".to_owned(),
    ] {
        assert!(env.contains(&e), "{e} in {env:?}");
    }

    // Without SOURCE_DATE_EPOCH there is no time at all.
    let out = lower_with(&s, "app", &metadata_ctx(None));
    assert!(cfg(&out)["Labels"]
        .get("org.opencontainers.image.created")
        .is_none());
    assert!(out.image_config.get("created").is_none());
    assert!(!config_env(&out)
        .iter()
        .any(|e| e.starts_with("APP_CREATED=")));
    assert_eq!(
        cfg(&out)["Labels"]["org.opencontainers.image.revision"],
        REVISION
    );
}

#[test]
fn no_wall_clock_anywhere() {
    let s = stack(META);
    for ctx in [metadata_ctx(None), metadata_ctx(Some(EPOCH))] {
        let a = lower_with(&s, "app", &ctx);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = lower_with(&s, "app", &ctx);
        same_bytes(&a, &b, "two lowerings a second apart");
        assert_eq!(a.image_config, b.image_config);
        let text = a.image_config.to_string();
        assert!(!text.contains("2025") && !text.contains("2026"), "{text}");
    }
}

#[test]
fn version_control_metadata_never_changes_the_layers() {
    // Metadata is image config only: a new commit or a new
    // SOURCE_DATE_EPOCH must not invalidate any op, even in a component
    // whose base carries the metadata env.
    let s = stack(META);
    for target in ["base", "app"] {
        let plain = lower(&s, target);
        let with = lower_with(&s, target, &metadata_ctx(Some(EPOCH)));
        let other = lower_with(
            &s,
            target,
            &BuildContext {
                metadata: BuildMetadata {
                    revision: Some("f".repeat(40)),
                    branch: Some("main".into()),
                    source: Some("https://example.org/other.git".into()),
                    source_date_epoch: Some(EPOCH + 3600),
                },
                ..BuildContext::default()
            },
        );
        same_bytes(&plain, &with, target);
        same_bytes(&plain, &other, target);
        assert_ne!(with.image_config, other.image_config);
    }
}

// ---------------------------------------------------------------- run ----

const RUNS: &str = r#"
[user]
name = "app"
uid = 1234
gid = 1234
[component.app]
from = "debian:bookworm-slim"
run = [
  "echo default",
  { cmd = "echo offline", network = "none" },
  { cmd = "curl -H @/run/secrets/api_token https://example.com", secrets = ["api_token"], name = "fetch" },
  { cmd = "id", as = "user", secrets = ["api_token"], name = "as user" },
  { cmd = ["/bin/echo", "exec", "form"], cache = ["/root/.cache/x"] },
]
"#;

#[test]
fn run_steps_network_secrets_and_users() {
    let s = stack(RUNS);
    let l = Llb::of(&lower(&s, "app"));
    let (_, e) = l.exec("[app] RUN echo default");
    assert_eq!(e.network, pb::NetMode::Unset as i32, "sandbox by default");
    assert_eq!(e.meta.as_ref().map(|m| m.user.as_str()), Some("0:0"));
    assert!(
        env(e).contains(&"STRATA_UID=1234".to_owned()),
        "{:?}",
        env(e)
    );
    assert!(env(e).iter().any(|v| v.starts_with("PATH=")));
    let (_, e) = l.exec("[app] RUN echo offline");
    assert_eq!(e.network, pb::NetMode::None as i32);

    let (_, e) = l.exec("[app] fetch");
    assert_eq!(e.network, pb::NetMode::Unset as i32);
    let m = mount(e, "/run/secrets/api_token");
    assert_eq!(m.mount_type, pb::MountType::Secret as i32);
    assert_eq!((m.input, m.output), (-1, -1));
    let secret = m.secret_opt.as_ref().expect("secret options");
    assert_eq!(secret.id, "api_token");
    assert_eq!((secret.uid, secret.gid, secret.mode), (0, 0, 0o400));
    assert!(!secret.optional, "a missing secret fails the step");

    let (_, e) = l.exec("[app] as user");
    assert_eq!(e.meta.as_ref().map(|m| m.user.as_str()), Some("1234:1234"));
    let secret = mount(e, "/run/secrets/api_token")
        .secret_opt
        .clone()
        .expect("secret");
    assert_eq!(
        (secret.uid, secret.gid),
        (1234, 1234),
        "readable by the user it runs as"
    );

    let (_, e) = l.exec("[app] RUN /bin/echo exec form");
    assert_eq!(
        e.meta.as_ref().map(|m| m.args.clone()),
        Some(vec![
            "/bin/echo".to_owned(),
            "exec".to_owned(),
            "form".to_owned()
        ])
    );
    let cache = mount(e, "/root/.cache/x");
    assert_eq!(cache.mount_type, pb::MountType::Cache as i32);
}

#[test]
fn a_secret_value_never_reaches_the_definition() {
    // Secrets are named in the stack and read by BuildKit from the client
    // at run time: the value in the client's environment must not leak in.
    let value = "s3cr3t-value-7f1d2c";
    let dir = std::env::temp_dir().join(format!("strata-lowering-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("strata.toml");
    std::fs::write(&file, stack_text(RUNS)).expect("write the stack");
    for format in ["binary", "json"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["llb", "--target", "app", "--format", format])
            .arg(&file)
            .env("API_TOKEN", value)
            .env("api_token", value)
            .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
            .env_remove("STRATA_MIRRORS")
            .output()
            .expect("strata runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.stdout
                .windows(value.len())
                .any(|w| w == value.as_bytes()),
            "{format}: the secret's value is in the output"
        );
        if format == "binary" {
            let def = decode_definition(&out.stdout).expect("decodes");
            let l = Llb::new(&def);
            assert!(mount(l.exec("[app] fetch").1, "/run/secrets/api_token")
                .secret_opt
                .is_some());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------- image config ----

#[test]
fn image_config_user_is_the_policy_or_root() {
    let s = stack(&format!(
        r#"
{POLICY}
[component.app]
from = "debian:bookworm-slim"
[component.admin]
from = "app"
user = "root"
"#
    ));
    assert_eq!(cfg(&lower(&s, "app"))["User"], "1234:1234");
    assert_eq!(cfg(&lower(&s, "admin"))["User"], "0:0");
    let s = stack(
        r#"
[component.app]
from = "debian:bookworm-slim"
"#,
    );
    assert!(
        cfg(&lower(&s, "app")).get("User").is_none(),
        "no policy: the base's user"
    );
}

#[test]
fn env_expands_path_over_the_base_config() {
    let s = stack(
        r#"
[component.app]
from = "python:3.11-slim"
env = { PATH = "/opt/tools/bin:$PATH", GREETING = "$LANG-hello" }
run = ["echo $PATH"]
"#,
    );
    let mut ctx = BuildContext::default();
    let pinned = "docker.io/library/python:3.11-slim@sha256:".to_owned() + &"a".repeat(64);
    ctx.bases.insert(
        "docker.io/library/python:3.11-slim".into(),
        BaseImage {
            reference: pinned.clone(),
            config: json!({
                "architecture": "amd64", "os": "linux",
                "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"], "Cmd": ["python3"]},
                "history": [{"created_by": "base"}]
            }),
        },
    );
    let out = lower_with(&s, "app", &ctx);
    let env = config_env(&out);
    assert_eq!(
        env,
        [
            "PATH=/opt/tools/bin:/usr/local/bin:/usr/bin:/bin",
            "LANG=C.UTF-8",
            "GREETING=C.UTF-8-hello"
        ]
    );
    assert_eq!(cfg(&out)["Cmd"], json!(["python3"]), "inherited");
    assert_eq!(out.image_config["history"], json!([{"created_by": "base"}]));
    let l = Llb::of(&out);
    assert!(l
        .sources()
        .iter()
        .any(|s| s.identifier == format!("docker-image://{pinned}")));
    let (_, e) = l.exec("[app] RUN echo $PATH");
    assert!(env_has(
        e,
        "PATH=/opt/tools/bin:/usr/local/bin:/usr/bin:/bin"
    ));

    // Without a base config, `$PATH` expands over Docker's default PATH.
    let out = lower(&s, "app");
    assert!(config_env(&out).contains(&format!(
        "PATH=/opt/tools/bin:{}",
        strata::lower::DEFAULT_PATH
    )));
}

fn env_has(e: &pb::ExecOp, var: &str) -> bool {
    env(e).iter().any(|v| v == var)
}

#[test]
fn a_venv_goes_before_the_default_path_without_a_base_config() {
    let s = stack(
        r#"
[component.app]
from = "python:3.11-slim"
pip = { packages = ["six"], venv = "/opt/venv" }
run = ["mkdir -p /data"]
"#,
    );
    let out = lower(&s, "app");
    let path = format!("PATH=/opt/venv/bin:{}", strata::lower::DEFAULT_PATH);
    assert!(config_env(&out).contains(&path), "{:?}", config_env(&out));
    let l = Llb::of(&out);
    let (_, e) = l.exec("[app] RUN mkdir -p /data");
    assert!(env_has(e, &path), "{:?}", env(e));
}

#[test]
fn an_entrypoint_resets_the_inherited_cmd() {
    let s = stack(
        r#"
[component.web]
from = "nginx:1.27"
entrypoint = ["/usr/bin/tini", "--"]
[component.base]
from = "debian:bookworm-slim"
cmd = ["/start.sh"]
[component.child]
from = "base"
entrypoint = ["/entry.sh"]
[component.both]
from = "base"
entrypoint = ["/entry.sh"]
cmd = ["serve"]
[component.keep]
from = "base"
"#,
    );
    let mut ctx = BuildContext::default();
    ctx.bases.insert(
        "docker.io/library/nginx:1.27".into(),
        BaseImage {
            reference: "docker.io/library/nginx:1.27".into(),
            config: json!({"config": {"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["nginx", "-g", "daemon off;"]}}),
        },
    );
    let web = lower_with(&s, "web", &ctx);
    assert_eq!(cfg(&web)["Entrypoint"], json!(["/usr/bin/tini", "--"]));
    assert!(cfg(&web).get("Cmd").is_none(), "{}", cfg(&web));
    let child = lower(&s, "child");
    assert_eq!(cfg(&child)["Entrypoint"], json!(["/entry.sh"]));
    assert!(cfg(&child).get("Cmd").is_none());
    let both = lower(&s, "both");
    assert_eq!(cfg(&both)["Cmd"], json!(["serve"]));
    assert_eq!(cfg(&lower(&s, "keep"))["Cmd"], json!(["/start.sh"]));
}

#[test]
fn platform_and_resolve_mode_reach_the_image_sources() {
    let s = stack(
        r#"
[component.app]
from = "debian:bookworm-slim"
run = ["true"]
"#,
    );
    let ctx = BuildContext {
        platform: "linux/arm/v7".parse().expect("a platform"),
        image_resolve_mode: Some(strata_llb::ResolveMode::PreferLocal),
        no_cache: true,
        ..BuildContext::default()
    };
    let out = lower_with(&s, "app", &ctx);
    assert_eq!(out.image_config["architecture"], "arm");
    assert_eq!(out.image_config["variant"], "v7");
    let l = Llb::of(&out);
    let (op, e) = l.exec("[app] RUN true");
    let img = l.input(op, 0);
    assert_eq!(
        img.platform
            .as_ref()
            .map(|p| (p.architecture.as_str(), p.variant.as_str())),
        Some(("arm", "v7"))
    );
    assert_eq!(
        source(img)
            .attrs
            .get("image.resolvemode")
            .map(String::as_str),
        Some("local")
    );
    assert!(e.meta.is_some());
    let (digest, _) = l.named("[app] RUN true");
    assert!(l.def.metadata[digest].ignore_cache, "no-cache");
    // Same stack, default context: other bytes.
    assert_ne!(Llb::of(&lower(&s, "app")).bytes(), l.bytes());
}

#[test]
fn a_venv_is_on_path_once_however_many_pip_steps_use_it() {
    let s = stack(
        r#"
[component.base]
from = "python:3.11-slim"
pip = { packages = ["six"], venv = "/opt/venv" }
[component.app]
from = "base"
steps = [
  { pip = { packages = ["attrs"], venv = "/opt/venv" } },
  { pip = { packages = ["idna"], venv = "/opt/other" } },
  { pip = { packages = ["wheel"], venv = "/opt/venv" } },
  { run = "true" },
]
"#,
    );
    let out = lower(&s, "app");
    let path = format!(
        "PATH=/opt/venv/bin:/opt/other/bin:{}",
        strata::lower::DEFAULT_PATH
    );
    assert!(config_env(&out).contains(&path), "{:?}", config_env(&out));
    assert!(config_env(&out).contains(&"VIRTUAL_ENV=/opt/venv".to_owned()));
    let l = Llb::of(&out);
    assert!(env_has(l.exec("[app] RUN true").1, &path));
}

#[test]
fn package_caches_are_named_after_the_root_base() {
    let s = stack(
        r#"
[component.base]
from = "debian:bookworm-slim"
apt = ["tini"]
[component.mid]
from = "base"
pip = ["six"]
[component.app]
from = "mid"
apt = ["curl"]
conda = [{ env = "e", packages = ["python"] }]
[component.other]
from = "ubuntu:24.04"
apt = ["curl"]
"#,
    );
    let cache_id = |target: &str, prefix: &str, dest: &str| {
        let out = lower(&s, target);
        let l = Llb::of(&out);
        let (_, e) = l.exec(prefix);
        mount(e, dest).cache_opt.clone().expect("a cache").id
    };
    let root = "docker.io/library/debian:bookworm-slim";
    assert_eq!(
        cache_id("base", "[base] apt install", "/var/lib/apt"),
        format!("strata-apt-lists:{root}")
    );
    assert_eq!(
        cache_id("app", "[app] apt install", "/var/lib/apt"),
        format!("strata-apt-lists:{root}")
    );
    assert_eq!(
        cache_id("app", "[mid] pip install", "/root/.cache/pip"),
        format!("strata-pip:{root}")
    );
    assert_eq!(
        cache_id(
            "app",
            "[app] micromamba create",
            strata::lower::conda::PKGS_DIR
        ),
        format!("strata-conda:{root}")
    );
    assert_eq!(
        cache_id("other", "[other] apt install", "/var/lib/apt"),
        "strata-apt-lists:docker.io/library/ubuntu:24.04"
    );
}

#[test]
fn a_build_platform_component_runs_on_the_build_platform_for_the_target() {
    let text = stack_text(
        r#"
[user]
name = "app"
uid = 2101

[component.builder]
platform = "build"
from = "debian:bookworm-slim"
env = { TARGETARCH = "{TARGETARCH}" }
run = [{ cmd = "mkdir -p /out && uname -m > /out/arch", network = "none" }]

[component.tools]
platform = "build"
from = "scratch"
copy = [{ from = "busybox:1.36", src = "/bin/busybox", dst = "/bin/busybox" }]
run = [["/bin/busybox", "true"]]

[component.app]
from = "debian:bookworm-slim"
copy = [
  { from = "builder", src = "/out/arch", dst = "/etc/built-by" },
  { from = "tools", src = "/bin/busybox", dst = "/bin/busybox-build" },
]
run = ["true"]
"#,
    );
    let overrides = Overrides {
        platform: Some(spec::PlatformVars::new(
            ("linux", "arm64", None),
            ("linux", "amd64", None),
        )),
        ..Overrides::default()
    };
    let s = strata::load("strata.toml", text.as_bytes(), &overrides)
        .unwrap_or_else(|d| panic!("the test stack does not load:\n{d}"));
    assert!(!s.component("builder").expect("builder").publish);
    assert!(s.component("app").expect("app").publish);
    assert_eq!(
        lower::external_images(&s, "app")
            .iter()
            .map(|r| r.familiar())
            .collect::<Vec<_>>(),
        ["debian:bookworm-slim"]
    );
    assert_eq!(
        lower::build_platform_images(&s, "app")
            .iter()
            .map(|r| r.familiar())
            .collect::<Vec<_>>(),
        ["debian:bookworm-slim"]
    );
    // The same reference resolves to another image on each platform.
    let base = |digest: char| BaseImage {
        reference: format!(
            "docker.io/library/debian:bookworm-slim@sha256:{}",
            digest.to_string().repeat(64)
        ),
        config: json!({"config": {"Env": ["PATH=/usr/bin:/bin"]}}),
    };
    let mut ctx = BuildContext {
        platform: "linux/arm64".parse().expect("a platform"),
        build_platform: "linux/amd64".parse().expect("a platform"),
        ..BuildContext::default()
    };
    let key = "docker.io/library/debian:bookworm-slim".to_owned();
    ctx.bases.insert(key.clone(), base('a'));
    ctx.build_bases.insert(key, base('b'));
    let out = lower_with(&s, "app", &ctx);
    assert_eq!(out.image_config["architecture"], "arm64");
    let l = Llb::of(&out);
    let arch = |op: &pb::Op| {
        op.platform
            .as_ref()
            .map(|p| format!("{}/{}", p.os, p.architecture))
            .unwrap_or_default()
    };

    // The builder: its base is the build platform's image, its steps
    // (the user policy too) run there, and its env names the target.
    let (op, e) = l.exec("[builder] RUN mkdir -p /out");
    assert_eq!(arch(op), "linux/amd64");
    assert!(env(e).contains(&"TARGETARCH=arm64".to_owned()), "{e:?}");
    let (policy, _) = l.exec("[builder] user policy");
    assert_eq!(arch(policy), "linux/amd64");
    let img = l.input(policy, 0);
    assert_eq!(arch(img), "linux/amd64");
    assert!(source(img).identifier.ends_with(&"b".repeat(64)), "{img:?}");

    // From scratch, and with a copy from an image: the build platform too.
    let (op, _) = l.exec("[tools] RUN /bin/busybox true");
    assert_eq!(arch(op), "linux/amd64");
    let busybox: Vec<&pb::Op> = l
        .ops
        .iter()
        .map(|(_, op)| op)
        .filter(|op| matches!(&op.op, Some(Op::Source(s)) if s.identifier.contains("busybox")))
        .collect();
    assert_eq!(busybox.len(), 1);
    assert_eq!(arch(busybox[0]), "linux/amd64");

    // The published component: the target's base and steps; it copies
    // the builder's bytes.
    let (op, _) = l.exec("[app] RUN true");
    assert_eq!(arch(op), "linux/arm64");
    let (policy, _) = l.exec("[app] user policy");
    let img = l.input(policy, 0);
    assert_eq!(arch(img), "linux/arm64");
    assert!(source(img).identifier.ends_with(&"a".repeat(64)), "{img:?}");
    let (op, f) = l.file("[app] COPY --from=builder");
    let (_, c) = copies(f)[0];
    assert_eq!(c.src, "/out/arch");
    let (builder_run, _) = l.named("[builder] RUN mkdir -p /out");
    assert!(
        op.inputs.iter().any(|i| i.digest == builder_run),
        "the copy reads the builder's filesystem"
    );
}
