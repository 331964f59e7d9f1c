//! A small stack description that `arbitrary` fills from fuzzer bytes,
//! rendered to a stack file's TOML (through `toml`'s serializer, so the
//! text is always valid TOML and the fuzzer spends its time on meaning).
//!
//! Names, images, paths and commands are mostly picked from short lists of
//! plausible and broken values, so most stacks resolve and get lowered;
//! `Text::Free` lets any string through now and then.

use arbitrary::Arbitrary;
use toml::{Table, Value};

const COMPONENTS: Choices = Choices {
    good: &["base", "app", "node", "gpu", "x-1", "a.b", "tools"],
    bad: &["Bad_Name", "", "-x"],
};
const IMAGES: Choices = Choices {
    good: &[
        "strata.local/busybox:1.36",
        "debian:bookworm",
        "python:3.11-slim-bookworm",
        "nvidia/cuda:12.1.1-runtime-ubuntu22.04",
        "alpine",
        "127.0.0.1:5000/x/y:z",
        "busybox@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "{img}",
        "scratch",
    ],
    bad: &["Debian:Bad", "", "a b", "x:", "{nope}"],
};
const PATHS: Choices = Choices {
    good: &[
        "/app",
        "/opt/venv",
        "/",
        "/a b",
        "/{dir}",
        "/tmp/x/../y",
        "/app/",
        "/root/.cache/pip",
    ],
    bad: &["relative", "", "{"],
};
const CONTEXT_PATHS: Choices = Choices {
    good: &[".", "src", "a/b", "*", "{dir}", "./", "f.txt", "a b/c"],
    bad: &["../x", "/abs", ""],
};
const COMMANDS: Choices = Choices {
    good: &[
        "echo hi",
        "apt-get update && apt-get install -y x",
        "pip install x",
        "exit 1",
        "echo {tag} > /t",
        "printf '%s' \"$X\"",
        "cat /run/secrets/token | sha256sum",
        "echo {{literal}}",
    ],
    bad: &["", "  ", "echo {", "echo }"],
};
const ARG_NAMES: Choices = Choices {
    good: &["tag", "gpu", "dir", "img", "n", "flavour"],
    bad: &["STRATA_X", "1bad", "stack", "BUILDKIT_X", ""],
};
const ARG_STRINGS: Choices = Choices {
    good: &["1.0", "cpu", "x", "debian:bookworm", "sub/dir", ""],
    bad: &["a{b", "}"],
};
const CONDITIONS: Choices = Choices {
    good: &[
        "gpu",
        "!gpu",
        "tag == '1'",
        "gpu && !gpu",
        "flavour != 'cpu'",
        "(gpu || n == 2)",
        "true",
    ],
    bad: &["(", "nope", "n", "gpu ==", "tag == 1"],
};
const ENV_NAMES: Choices = Choices {
    good: &["PATH", "X", "API_KEY", "PIP_NO_CACHE_DIR", "_y"],
    bad: &["1X", "A-B", ""],
};
const ENV_VALUES: Choices = Choices {
    good: &["1", "/opt/venv/bin:$PATH", "{tag}", "", "a b"],
    bad: &["{nope}"],
};
const PACKAGES: Choices = Choices {
    good: &["curl", "python3=3.11.2-1", "numpy==1.26.4", "x{tag}"],
    bad: &["-bad", "", "a b"],
};
const LINT_IDS: Choices = Choices {
    good: &[
        "root-user",
        "unpinned-image",
        "apt-split",
        "secret-like-arg",
    ],
    bad: &["nope"],
};
const OWNERS: Choices = Choices {
    good: &["root", "user", "1000:1000"],
    bad: &["x:y", "1000"],
};
const USERS: Choices = Choices {
    good: &["app", "svc_1"],
    bad: &["root", "Bad", "a-very-long-user-name-that-is-over-32"],
};
const SECRETS: Choices = Choices {
    good: &["token", "npm"],
    bad: &[""],
};
const ENUM_VALUES: Choices = Choices {
    good: &["cpu", "cuda", "rocm"],
    bad: &[""],
};
const REQUIREMENTS: Choices = Choices {
    good: &["requirements.txt", "envs/r.txt"],
    bad: &["../r.txt", "/abs.txt"],
};
const VENVS: Choices = Choices {
    good: &["/opt/venv", "system"],
    bad: &["rel"],
};
const CONDA_ENVS: Choices = Choices {
    good: &["py", "R"],
    bad: &["bad env", ""],
};
const CONDA_PACKAGES: Choices = Choices {
    good: &["python=3.11", "numpy"],
    bad: &[],
};
const EXCLUDES: Choices = Choices {
    good: &["*.pyc", ".git", "!keep"],
    bad: &[],
};
const IGNORES: Choices = Choices {
    good: &[".dockerignore", "sub/.ignore"],
    bad: &["/abs"],
};
const ENTRYPOINT: Choices = Choices {
    good: &["sh", "-c", "echo {tag}"],
    bad: &[],
};
const PROFILES: Choices = Choices {
    good: &["gpu", "all"],
    bad: &["Bad Name"],
};
const RULES: Choices = Choices {
    good: &[
        "{stack}/{component}:{tag}",
        "x/{component}",
        "reg.local:5000/{component}:v1",
    ],
    bad: &["{nope}", "Bad:", "{component}:"],
};

/// A string: mostly one of a field's plausible values, sometimes one of its
/// broken ones, rarely anything.
#[derive(Arbitrary, Debug, Clone)]
pub enum Text {
    /// A plausible value.
    Good(u8),
    /// A plausible value (twice as likely as the others).
    Good2(u8),
    /// A plausible value (three times).
    Good3(u8),
    /// A plausible value (four times).
    Good4(u8),
    /// A plausible value (five times).
    Good5(u8),
    /// A broken value.
    Bad(u8),
    /// Anything.
    Free(String),
}

/// A field's values: plausible ones, and ones that must be rejected.
pub struct Choices {
    good: &'static [&'static str],
    bad: &'static [&'static str],
}

impl Text {
    fn get(&self, c: &Choices) -> String {
        let pick = |list: &[&str], i: u8| list[usize::from(i) % list.len()].to_owned();
        match self {
            Text::Good(i) | Text::Good2(i) | Text::Good3(i) | Text::Good4(i) | Text::Good5(i) => {
                pick(c.good, *i)
            }
            Text::Bad(i) if c.bad.is_empty() => pick(c.good, *i),
            Text::Bad(i) => pick(c.bad, *i),
            Text::Free(s) => s.clone(),
        }
    }
}

/// A TOML value for an arg default or a profile value.
#[derive(Arbitrary, Debug)]
pub enum ArgValueDesc {
    /// A string.
    Str(Text),
    /// A bool.
    Bool(bool),
    /// An integer.
    Int(i8),
    /// An enum table: values and the default's index.
    Enum(Vec<Text>, u8),
}

/// One `[args]` entry.
#[derive(Arbitrary, Debug)]
pub struct ArgDesc {
    name: Text,
    value: ArgValueDesc,
}

/// A profile's value for an arg.
#[derive(Arbitrary, Debug)]
pub enum ProfileValue {
    /// The declared arg at this index, with a value of its type.
    Typed(u8, u8),
    /// The declared arg at this index, with a value of its type (more likely).
    Typed2(u8, u8),
    /// Any name and value.
    Any(Text, ArgValueDesc),
}

/// One `[profiles.<name>]`.
#[derive(Arbitrary, Debug)]
pub struct ProfileDesc {
    name: Text,
    args: Vec<ProfileValue>,
}

/// What a component is built from.
#[derive(Arbitrary, Debug)]
pub enum FromDesc {
    /// A component declared before this one (so the graph has no cycle).
    Earlier(u8),
    /// A component declared before this one (more likely).
    Earlier2(u8),
    /// Any component, itself and later ones included.
    Any(u8),
    /// An image.
    Image(Text),
}

/// A build step.
#[derive(Arbitrary, Debug)]
pub enum StepDesc {
    /// `run`.
    Run {
        cmd: Text,
        exec: bool,
        network: u8,
        secrets: Vec<Text>,
        cache: Vec<Text>,
        as_user: bool,
        env: Vec<(Text, Text)>,
    },
    /// `copy`.
    Copy {
        src: Vec<Text>,
        dst: Text,
        from: Option<FromDesc>,
        owner: Option<Text>,
        mode: Option<u16>,
        exclude: Vec<Text>,
    },
    /// `apt`.
    Apt(Vec<Text>),
    /// `pip`.
    Pip {
        packages: Vec<Text>,
        requirements: Vec<Text>,
        venv: Option<Text>,
    },
    /// `conda`.
    Conda { env: Text, packages: Vec<Text> },
    /// `env`.
    Env(Vec<(Text, Text)>),
    /// `workdir`.
    Workdir(Text),
}

/// `[component.<name>]`.
#[derive(Arbitrary, Debug)]
pub struct ComponentDesc {
    name: Text,
    from: FromDesc,
    gpu: Option<(FromDesc, Text)>,
    when: Option<Text>,
    user: Option<Text>,
    root: bool,
    publish: Option<bool>,
    ignore: Option<Text>,
    context: Option<Text>,
    allow: Vec<Text>,
    steps: Vec<StepDesc>,
    env: Vec<(Text, Text)>,
    workdir: Option<Text>,
    entrypoint: Option<Vec<Text>>,
    expose: Vec<u16>,
}

/// A whole stack: at least one component.
#[derive(Arbitrary, Debug)]
pub struct StackDesc {
    /// Declare the args the plausible values interpolate (`{tag}`, `{dir}`, ...) first.
    usual_args: bool,
    rule: Option<Text>,
    args: Vec<ArgDesc>,
    profiles: Vec<ProfileDesc>,
    user: Option<(Text, u16)>,
    mirrors: Vec<(Text, Text)>,
    third_party: Vec<(Text, Text)>,
    first: ComponentDesc,
    components: Vec<ComponentDesc>,
    default: Option<u8>,
}

const MAX_ARGS: usize = 5;
const MAX_COMPONENTS: usize = 6;

fn arr(items: impl IntoIterator<Item = String>) -> Value {
    Value::Array(items.into_iter().map(Value::String).collect())
}

fn arg_value(v: &ArgValueDesc) -> Value {
    match v {
        ArgValueDesc::Str(t) => Value::String(t.get(&ARG_STRINGS)),
        ArgValueDesc::Bool(b) => Value::Boolean(*b),
        ArgValueDesc::Int(i) => Value::Integer(i64::from(*i)),
        ArgValueDesc::Enum(values, default) => {
            let values: Vec<String> = values.iter().take(4).map(|v| v.get(&ENUM_VALUES)).collect();
            let mut t = Table::new();
            t.insert("type".into(), Value::String("enum".into()));
            if let Some(d) = values.get(usize::from(*default) % values.len().max(1)) {
                t.insert("default".into(), Value::String(d.clone()));
            }
            t.insert("values".into(), arr(values));
            Value::Table(t)
        }
    }
}

/// A value of the same type as a declared arg (`which` picks among the
/// enum's values, the bools, a few ints or strings).
fn typed_value(arg: &ArgValueDesc, which: u8) -> Value {
    match arg {
        ArgValueDesc::Str(_) => {
            Value::String(ARG_STRINGS.good[usize::from(which) % ARG_STRINGS.good.len()].into())
        }
        ArgValueDesc::Bool(_) => Value::Boolean(which.is_multiple_of(2)),
        ArgValueDesc::Int(_) => Value::Integer(i64::from(which % 4)),
        ArgValueDesc::Enum(values, _) => {
            let values: Vec<String> = values.iter().take(4).map(|v| v.get(&ENUM_VALUES)).collect();
            Value::String(
                values
                    .get(usize::from(which) % values.len().max(1))
                    .cloned()
                    .unwrap_or_default(),
            )
        }
    }
}

fn env_table(vars: &[(Text, Text)]) -> Value {
    let mut t = Table::new();
    for (k, v) in vars.iter().take(4) {
        t.insert(k.get(&ENV_NAMES), Value::String(v.get(&ENV_VALUES)));
    }
    Value::Table(t)
}

impl StackDesc {
    fn components(&self) -> impl Iterator<Item = &ComponentDesc> {
        std::iter::once(&self.first)
            .chain(&self.components)
            .take(MAX_COMPONENTS)
    }

    fn component_name(&self, i: usize) -> String {
        self.components()
            .nth(i)
            .map_or_else(|| "base".into(), |c| c.name.get(&COMPONENTS))
    }

    /// `from` of the component at `at`.
    fn from(&self, f: &FromDesc, at: usize) -> String {
        let count = self.components().count();
        match f {
            FromDesc::Earlier(i) | FromDesc::Earlier2(i) if at > 0 => {
                self.component_name(usize::from(*i) % at)
            }
            FromDesc::Earlier(_) | FromDesc::Earlier2(_) => IMAGES.good[0].into(),
            FromDesc::Any(i) => self.component_name(usize::from(*i) % count),
            FromDesc::Image(t) => t.get(&IMAGES),
        }
    }

    fn step(&self, s: &StepDesc, at: usize) -> Table {
        let mut t = Table::new();
        match s {
            StepDesc::Run {
                cmd,
                exec,
                network,
                secrets,
                cache,
                as_user,
                env,
            } => {
                let mut r = Table::new();
                let c = cmd.get(&COMMANDS);
                r.insert(
                    "cmd".into(),
                    if *exec {
                        arr(c.split(' ').map(str::to_owned))
                    } else {
                        Value::String(c)
                    },
                );
                let networks = ["none", "default", "none", "host", "sandbox", "bad"];
                r.insert(
                    "network".into(),
                    Value::String(networks[usize::from(*network) % networks.len()].into()),
                );
                r.insert(
                    "secrets".into(),
                    arr(secrets.iter().take(2).map(|s| s.get(&SECRETS))),
                );
                r.insert(
                    "cache".into(),
                    arr(cache.iter().take(2).map(|c| c.get(&PATHS))),
                );
                r.insert(
                    "as".into(),
                    Value::String(if *as_user { "user" } else { "root" }.into()),
                );
                r.insert("env".into(), env_table(env));
                t.insert("run".into(), Value::Table(r));
            }
            StepDesc::Copy {
                src,
                dst,
                from,
                owner,
                mode,
                exclude,
            } => {
                let mut c = Table::new();
                c.insert(
                    "src".into(),
                    arr(src.iter().take(3).map(|s| s.get(&CONTEXT_PATHS))),
                );
                c.insert("dst".into(), Value::String(dst.get(&PATHS)));
                if let Some(f) = from {
                    c.insert("from".into(), Value::String(self.from(f, at)));
                }
                if let Some(o) = owner {
                    c.insert("owner".into(), Value::String(o.get(&OWNERS)));
                }
                if let Some(m) = mode {
                    c.insert("mode".into(), Value::String(format!("{m:o}")));
                }
                c.insert(
                    "exclude".into(),
                    arr(exclude.iter().take(2).map(|e| e.get(&EXCLUDES))),
                );
                t.insert("copy".into(), Value::Table(c));
            }
            StepDesc::Apt(p) => {
                t.insert(
                    "apt".into(),
                    arr(p.iter().take(3).map(|p| p.get(&PACKAGES))),
                );
            }
            StepDesc::Pip {
                packages,
                requirements,
                venv,
            } => {
                let mut p = Table::new();
                p.insert(
                    "packages".into(),
                    arr(packages.iter().take(3).map(|p| p.get(&PACKAGES))),
                );
                p.insert(
                    "requirements".into(),
                    arr(requirements.iter().take(2).map(|r| r.get(&REQUIREMENTS))),
                );
                if let Some(v) = venv {
                    p.insert("venv".into(), Value::String(v.get(&VENVS)));
                }
                t.insert("pip".into(), Value::Table(p));
            }
            StepDesc::Conda { env, packages } => {
                let mut c = Table::new();
                c.insert("env".into(), Value::String(env.get(&CONDA_ENVS)));
                c.insert(
                    "packages".into(),
                    arr(packages.iter().take(3).map(|p| p.get(&CONDA_PACKAGES))),
                );
                t.insert("conda".into(), Value::Table(c));
            }
            StepDesc::Env(vars) => {
                t.insert("env".into(), env_table(vars));
            }
            StepDesc::Workdir(p) => {
                t.insert("workdir".into(), Value::String(p.get(&PATHS)));
            }
        }
        t
    }

    fn component(&self, c: &ComponentDesc, at: usize) -> Table {
        let mut t = Table::new();
        match &c.gpu {
            Some((of, base)) => {
                let mut g = Table::new();
                g.insert("of".into(), Value::String(self.from(of, at)));
                g.insert("base".into(), Value::String(base.get(&IMAGES)));
                g.insert("copy".into(), arr(["/opt/venv".to_owned()]));
                t.insert("gpu".into(), Value::Table(g));
            }
            None => {
                t.insert("from".into(), Value::String(self.from(&c.from, at)));
            }
        }
        if let Some(w) = &c.when {
            t.insert("when".into(), Value::String(w.get(&CONDITIONS)));
        }
        if c.root {
            t.insert("user".into(), Value::String("root".into()));
        } else if let Some(u) = &c.user {
            t.insert("user".into(), Value::String(u.get(&USERS)));
        }
        if let Some(p) = c.publish {
            t.insert("publish".into(), Value::Boolean(p));
        }
        if let Some(i) = &c.ignore {
            t.insert("ignore".into(), Value::String(i.get(&IGNORES)));
        }
        if let Some(x) = &c.context {
            t.insert("context".into(), Value::String(x.get(&CONTEXT_PATHS)));
        }
        t.insert(
            "allow".into(),
            arr(c.allow.iter().take(2).map(|a| a.get(&LINT_IDS))),
        );
        let steps: Vec<Value> = c
            .steps
            .iter()
            .take(6)
            .map(|s| Value::Table(self.step(s, at)))
            .collect();
        t.insert("steps".into(), Value::Array(steps));
        t.insert("env".into(), env_table(&c.env));
        if let Some(w) = &c.workdir {
            t.insert("workdir".into(), Value::String(w.get(&PATHS)));
        }
        if let Some(e) = &c.entrypoint {
            t.insert(
                "entrypoint".into(),
                arr(e.iter().take(3).map(|a| a.get(&ENTRYPOINT))),
            );
        }
        t.insert(
            "expose".into(),
            Value::Array(
                c.expose
                    .iter()
                    .take(2)
                    .map(|p| Value::Integer(i64::from(*p)))
                    .collect(),
            ),
        );
        t
    }

    /// The stack file's text.
    pub fn to_toml(&self) -> String {
        let mut root = Table::new();
        let mut stack = Table::new();
        stack.insert("name".into(), Value::String("fuzz".into()));
        if let Some(r) = &self.rule {
            stack.insert("image".into(), Value::String(r.get(&RULES)));
        }
        if let Some(d) = self.default {
            stack.insert(
                "default".into(),
                Value::String(self.component_name(usize::from(d) % MAX_COMPONENTS)),
            );
        }
        root.insert("stack".into(), Value::Table(stack));

        let mut args = Table::new();
        if self.usual_args {
            for (k, v) in [
                ("tag", Value::String("1.0".into())),
                ("dir", Value::String("src".into())),
                ("img", Value::String("debian:bookworm".into())),
                ("n", Value::Integer(2)),
                ("gpu", Value::Boolean(false)),
                ("flavour", Value::String("cpu".into())),
            ] {
                args.insert(k.into(), v);
            }
        }
        let declared: Vec<(String, &ArgValueDesc)> = self
            .args
            .iter()
            .take(MAX_ARGS)
            .map(|a| (a.name.get(&ARG_NAMES), &a.value))
            .collect();
        for (name, value) in &declared {
            args.insert(name.clone(), arg_value(value));
        }
        root.insert("args".into(), Value::Table(args));

        let mut profiles = Table::new();
        for p in self.profiles.iter().take(2) {
            let mut set = Table::new();
            for v in p.args.iter().take(3) {
                match v {
                    ProfileValue::Typed(i, which) | ProfileValue::Typed2(i, which) => {
                        if let Some((name, arg)) =
                            declared.get(usize::from(*i) % declared.len().max(1))
                        {
                            set.insert(name.clone(), typed_value(arg, *which));
                        }
                    }
                    ProfileValue::Any(name, value) => {
                        set.insert(name.get(&ARG_NAMES), arg_value(value));
                    }
                }
            }
            let mut t = Table::new();
            t.insert("args".into(), Value::Table(set));
            profiles.insert(p.name.get(&PROFILES), Value::Table(t));
        }
        root.insert("profiles".into(), Value::Table(profiles));

        if let Some((name, uid)) = &self.user {
            let mut u = Table::new();
            u.insert("name".into(), Value::String(name.get(&USERS)));
            u.insert("uid".into(), Value::Integer(i64::from(*uid)));
            root.insert("user".into(), Value::Table(u));
        }
        let pairs = |list: &[(Text, Text)]| {
            let mut t = Table::new();
            for (k, v) in list.iter().take(3) {
                t.insert(k.get(&IMAGES), Value::String(v.get(&IMAGES)));
            }
            Value::Table(t)
        };
        root.insert("mirrors".into(), pairs(&self.mirrors));
        root.insert("third-party".into(), pairs(&self.third_party));

        let mut components = Table::new();
        for (at, c) in self.components().enumerate() {
            components.insert(c.name.get(&COMPONENTS), Value::Table(self.component(c, at)));
        }
        root.insert("component".into(), Value::Table(components));
        toml::to_string(&root).unwrap_or_default()
    }
}
