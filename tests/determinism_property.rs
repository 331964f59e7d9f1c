//! Property: lowering is deterministic. For random valid stacks (a small
//! deterministic PRNG, no dependency), every enabled component of every
//! profile lowers to
//!
//! - the same bytes, source maps included, when the same text is loaded
//!   and lowered twice; and
//! - the same ops, op metadata and image config when the stack file is
//!   written in another order that does not change its meaning: the order
//!   of the top-level tables, of the components, args and profiles, and of
//!   the keys inside every table (only the source map's lines move).
//!
//! `STRATA_PROPERTY_CASES=N` runs more stacks, `STRATA_PROPERTY_SEED=S`
//! another sequence; a failure prints the seed and both texts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use strata::lower::{self, BuildContext, BuildMetadata};
use strata::spec::Overrides;

/// SplitMix64: tiny, fast and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// One `key = value` line; the value is already TOML.
type Entry = (String, String);

/// A stack as tables of entries, so it can be written in any order.
struct Model {
    /// `[stack]`.
    stack: Vec<Entry>,
    /// `[args]`.
    args: Vec<Entry>,
    /// `[profiles.<name>]`: name, entries.
    profiles: Vec<(String, Vec<Entry>)>,
    /// `[user]`, if any.
    user: Option<Vec<Entry>>,
    /// `[component.<name>]`: name, entries.
    components: Vec<(String, Vec<Entry>)>,
    /// Profile names, to lower each.
    profile_names: Vec<String>,
}

fn quoted(s: &str) -> String {
    format!("{:?}", s)
}

/// An inline table whose keys come in the order given.
fn inline(entries: &[Entry]) -> String {
    let parts: Vec<String> = entries.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!("{{ {} }}", parts.join(", "))
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

const IMAGES: &[&str] = &[
    "strata.local/busybox:1.36",
    "strata.local/debian:bookworm",
    "strata.local/python:3.11-bookworm",
    "debian:bookworm-slim",
];
const NAMES: &[&str] = &["base", "app", "node", "tools", "web", "worker", "x-1"];

/// A random valid stack.
fn model(rng: &mut Rng) -> Model {
    let mut args: Vec<Entry> = Vec::new();
    let has_tag = rng.chance(80);
    let has_gpu = rng.chance(60);
    let has_n = rng.chance(50);
    let has_flavour = rng.chance(40);
    if has_tag {
        args.push(("tag".into(), quoted(rng.pick(&["1.0", "2024.1", "dev"]))));
    }
    if has_gpu {
        args.push(("gpu".into(), rng.pick(&["true", "false"]).to_string()));
    }
    if has_n {
        args.push(("n".into(), rng.below(5).to_string()));
    }
    if has_flavour {
        let mut t = vec![
            ("type".to_owned(), quoted("enum")),
            ("values".to_owned(), list(&[quoted("cpu"), quoted("cuda")])),
            ("default".to_owned(), quoted("cpu")),
            ("description".to_owned(), quoted("which build")),
        ];
        rng.shuffle(&mut t);
        args.push(("flavour".into(), inline(&t)));
    }

    let mut profiles = Vec::new();
    for name in ["all", "small"] {
        if args.is_empty() || !rng.chance(50) {
            continue;
        }
        let mut set: Vec<Entry> = Vec::new();
        if has_gpu && rng.chance(70) {
            set.push(("gpu".into(), rng.pick(&["true", "false"]).to_string()));
        }
        if has_tag && rng.chance(50) {
            set.push(("tag".into(), quoted("p")));
        }
        if has_flavour && rng.chance(50) {
            set.push(("flavour".into(), quoted("cuda")));
        }
        profiles.push((
            name.to_owned(),
            vec![
                ("description".to_owned(), quoted(&format!("the {name} set"))),
                ("args".to_owned(), inline(&set)),
            ],
        ));
    }
    let profile_names = profiles.iter().map(|(n, _)| n.clone()).collect();

    let user = rng.chance(60).then(|| {
        vec![
            ("name".to_owned(), quoted("app")),
            ("uid".to_owned(), rng.pick(&["1000", "2101"]).to_string()),
            ("home".to_owned(), quoted("/home/app")),
            ("shell".to_owned(), quoted("/bin/sh")),
        ]
    });

    // Components: each may build from or copy from earlier ones.
    let count = 1 + rng.below(5);
    let mut names: Vec<String> = NAMES.iter().map(|s| (*s).to_owned()).collect();
    rng.shuffle(&mut names);
    names.truncate(count);
    let mut used = vec![false; count];
    let mut components: Vec<(String, Vec<Entry>)> = Vec::new();
    for i in 0..count {
        let mut e: Vec<Entry> = Vec::new();
        let gpu_of = (i > 0 && rng.chance(15)).then(|| rng.below(i));
        match gpu_of {
            Some(of) => {
                used[of] = true;
                e.push((
                    "gpu".into(),
                    inline(&[
                        ("of".into(), quoted(&names[of])),
                        (
                            "base".into(),
                            quoted("strata.local/cuda:12.1-runtime-ubuntu22.04"),
                        ),
                        ("copy".into(), list(&[quoted("/opt/venv")])),
                    ]),
                ));
            }
            None if i > 0 && rng.chance(60) => {
                let from = rng.below(i);
                used[from] = true;
                e.push(("from".into(), quoted(&names[from])));
            }
            None => e.push(("from".into(), quoted(rng.pick(IMAGES)))),
        }
        if rng.chance(30) {
            e.push(("description".into(), quoted("a component")));
        }
        if user.is_some() && rng.chance(20) {
            e.push(("user".into(), quoted("root")));
        }
        if user.is_none() {
            e.push(("user".into(), quoted("root")));
        }
        if rng.chance(40) {
            e.push((
                "apt".into(),
                list(&[quoted("curl"), quoted("ca-certificates")]),
            ));
        }
        if rng.chance(30) {
            let mut p = vec![
                ("packages".to_owned(), list(&[quoted("requests==2.31.0")])),
                ("venv".to_owned(), quoted("/opt/venv")),
            ];
            rng.shuffle(&mut p);
            e.push(("pip".into(), inline(&p)));
        }
        if rng.chance(40) {
            let mut c = vec![
                (
                    "src".to_owned(),
                    quoted(rng.pick(&["app", "conf/a.txt", "src"])),
                ),
                ("dst".to_owned(), quoted("/srv/")),
            ];
            if rng.chance(30) {
                c.push(("mode".into(), quoted("0644")));
            }
            rng.shuffle(&mut c);
            e.push(("copy".into(), list(&[inline(&c)])));
        }
        if rng.chance(50) {
            let cmd = match (has_n, has_tag) {
                (true, _) if rng.chance(50) => "echo {n} > /n",
                (_, true) => "echo {tag} > /tag",
                _ => "echo hi > /hi",
            };
            let mut r = vec![
                ("cmd".to_owned(), quoted(cmd)),
                ("network".to_owned(), quoted("none")),
            ];
            if rng.chance(30) {
                r.push(("cache".into(), list(&[quoted("/root/.cache")])));
            }
            if rng.chance(20) {
                r.push(("secrets".into(), list(&[quoted("token")])));
            }
            if rng.chance(30) {
                let mut env = vec![("A".to_owned(), quoted("1")), ("B".to_owned(), quoted("2"))];
                rng.shuffle(&mut env);
                r.push(("env".into(), inline(&env)));
            }
            rng.shuffle(&mut r);
            e.push(("run".into(), list(&[inline(&r)])));
        }
        if rng.chance(40) {
            // Ordered steps: their order is meaning, so it never changes.
            let mut steps = vec![inline(&[("workdir".into(), quoted("/work"))])];
            if i > 0 && rng.chance(50) {
                let from = rng.below(i);
                used[from] = true;
                let mut c = vec![
                    ("from".to_owned(), quoted(&names[from])),
                    ("src".to_owned(), quoted("/etc/hostname")),
                    ("dst".to_owned(), quoted("/copied")),
                ];
                rng.shuffle(&mut c);
                steps.push(inline(&[("copy".into(), inline(&c))]));
            }
            steps.push(inline(&[("run".into(), quoted("ls > /work/listing"))]));
            e.push(("steps".into(), list(&steps)));
        }
        if rng.chance(60) {
            let mut env = vec![
                ("PATH".to_owned(), quoted("/opt/venv/bin:/usr/bin:/bin")),
                (
                    "APP_MODE".to_owned(),
                    quoted(if has_tag { "{tag}" } else { "prod" }),
                ),
                ("LANG".to_owned(), quoted("C.UTF-8")),
            ];
            rng.shuffle(&mut env);
            e.push(("env".into(), inline(&env)));
        }
        if rng.chance(40) {
            let mut labels = vec![
                ("\"org.example.a\"".to_owned(), quoted("a")),
                ("\"org.example.b\"".to_owned(), quoted("b")),
            ];
            rng.shuffle(&mut labels);
            e.push(("labels".into(), inline(&labels)));
        }
        if rng.chance(40) {
            e.push(("workdir".into(), quoted("/srv")));
        }
        if rng.chance(30) {
            e.push(("expose".into(), list(&["8080".into(), quoted("53/udp")])));
        }
        if rng.chance(40) {
            e.push((
                "cmd".into(),
                list(&[quoted("sh"), quoted("-c"), quoted("echo ok")]),
            ));
        }
        components.push((names[i].clone(), e));
    }
    // A condition only on components nothing else needs; the first is always built.
    for (i, (_, e)) in components.iter_mut().enumerate().skip(1) {
        if !used[i] && has_gpu && rng.chance(40) {
            e.push(("when".into(), quoted(rng.pick(&["gpu", "!gpu"]))));
        } else if !used[i] && has_flavour && rng.chance(30) {
            e.push(("when".into(), quoted("flavour == 'cuda'")));
        }
    }

    let mut stack = vec![("name".to_owned(), quoted("prop"))];
    if has_tag && rng.chance(70) {
        stack.push(("image".into(), quoted("reg.local/{component}:{tag}")));
    }
    if rng.chance(30) {
        stack.push(("description".into(), quoted("a random stack")));
    }
    Model {
        stack,
        args,
        profiles,
        user,
        components,
        profile_names,
    }
}

/// Writes the model; with `rng`, in a random order of tables and keys.
fn render(m: &Model, mut rng: Option<&mut Rng>) -> String {
    let mut order = |v: &mut Vec<Entry>| {
        if let Some(r) = rng.as_deref_mut() {
            r.shuffle(v);
        }
    };
    let mut sections: Vec<String> = Vec::new();
    let table = |header: &str, entries: &[Entry]| {
        let mut s = format!("[{header}]\n");
        for (k, v) in entries {
            let _ = writeln!(s, "{k} = {v}");
        }
        s
    };
    let mut stack = m.stack.clone();
    order(&mut stack);
    sections.push(table("stack", &stack));
    let mut args = m.args.clone();
    order(&mut args);
    sections.push(table("args", &args));
    for (name, entries) in &m.profiles {
        let mut e = entries.clone();
        order(&mut e);
        sections.push(table(&format!("profiles.{name}"), &e));
    }
    if let Some(u) = &m.user {
        let mut u = u.clone();
        order(&mut u);
        sections.push(table("user", &u));
    }
    for (name, entries) in &m.components {
        let mut e = entries.clone();
        order(&mut e);
        sections.push(table(&format!("component.{name}"), &e));
    }
    if let Some(r) = rng {
        r.shuffle(&mut sections);
    }
    sections.join("\n")
}

/// What one lowering gives: (full bytes, bytes without the source map, image config).
type Lowered = (Vec<u8>, Vec<u8>, String);

/// Every enabled component of every profile, lowered.
fn lower_all(
    text: &str,
    profiles: &[String],
) -> Result<BTreeMap<(String, String), Lowered>, String> {
    let ctx = BuildContext {
        metadata: BuildMetadata {
            revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
            source_date_epoch: Some(1_700_000_000),
            ..BuildMetadata::default()
        },
        ..BuildContext::default()
    };
    let mut out = BTreeMap::new();
    let mut selections = vec![None];
    selections.extend(profiles.iter().cloned().map(Some));
    for profile in selections {
        let overrides = Overrides {
            profile: profile.clone(),
            ..Overrides::default()
        };
        let stack =
            strata::load("strata.toml", text.as_bytes(), &overrides).map_err(|d| d.render())?;
        for c in stack.enabled() {
            let lowered = lower::lower(&stack, &c.name, &ctx).map_err(|e| e.message)?;
            let full = strata_llb::encode_definition(&lowered.definition);
            let mut ops = lowered.definition.clone();
            ops.source = None;
            let ops = strata_llb::encode_definition(&ops);
            let config = serde_json::to_string(&lowered.image_config).map_err(|e| e.to_string())?;
            out.insert(
                (profile.clone().unwrap_or_default(), c.name.clone()),
                (full, ops, config),
            );
        }
    }
    Ok(out)
}

fn cases() -> (u64, usize) {
    let seed = std::env::var("STRATA_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5742_a7a5);
    let cases = std::env::var("STRATA_PROPERTY_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    (seed, cases)
}

#[test]
fn random_stacks_lower_to_the_same_bytes_twice_and_in_any_order() {
    let (seed, cases) = cases();
    let mut lowered_total = 0;
    for case in 0..cases {
        let case_seed = seed.wrapping_add(case as u64);
        let mut rng = Rng(case_seed);
        let m = model(&mut rng);
        let text = render(&m, None);
        let first = lower_all(&text, &m.profile_names).unwrap_or_else(|e| {
            panic!("seed {case_seed}: a generated stack is invalid:\n{e}\n{text}")
        });
        assert!(
            !first.is_empty(),
            "seed {case_seed}: nothing enabled:\n{text}"
        );
        let second = lower_all(&text, &m.profile_names).expect("loads again");
        for (key, (full, _, config)) in &first {
            let (full2, _, config2) = &second[key];
            assert!(
                full == full2 && config == config2,
                "seed {case_seed}: {key:?} lowers to different bytes twice:\n{text}"
            );
        }

        for shuffle in 0..3u64 {
            let mut order = Rng(case_seed ^ (0xdead_beef << shuffle));
            let reordered = render(&m, Some(&mut order));
            let other = lower_all(&reordered, &m.profile_names).unwrap_or_else(|e| {
                panic!("seed {case_seed}: the reordered stack is invalid:\n{e}\n{reordered}")
            });
            assert_eq!(
                first.keys().collect::<Vec<_>>(),
                other.keys().collect::<Vec<_>>(),
                "seed {case_seed}: other components enabled after reordering"
            );
            for (key, (_, ops, config)) in &first {
                let (_, ops2, config2) = &other[key];
                assert!(
                    ops == ops2,
                    "seed {case_seed}: {key:?}: other ops after reordering\n--- as generated\n{text}\n--- reordered\n{reordered}"
                );
                assert_eq!(
                    config, config2,
                    "seed {case_seed}: {key:?}: another image config after reordering"
                );
            }
        }
        lowered_total += first.len();
    }
    eprintln!("{cases} stacks, {lowered_total} component lowerings compared (seed {seed})");
    assert!(lowered_total >= cases);
}

/// The generator's own check: reordering really moves things.
#[test]
fn reordering_changes_the_text() {
    let mut rng = Rng(7);
    let mut moved = 0;
    for case in 0..20 {
        let m = model(&mut rng);
        let a = render(&m, None);
        let b = render(&m, Some(&mut Rng(case)));
        if a != b {
            moved += 1;
        }
    }
    assert!(moved >= 15, "only {moved} of 20 stacks were reordered");
}
