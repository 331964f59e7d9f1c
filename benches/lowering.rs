//! How `load` + `lower` scale with the number of components.
//!
//! Synthetic stacks of 10 to 10,000 components, each with an apt, a pip, a
//! copy and a run step, in two shapes: a chain (each component FROM the
//! previous one) and a fan-out (every component FROM one base). Timed:
//! loading the stack and lowering the leaf (the last component), and
//! loading it and lowering every component. Median of 5 runs, with min and
//! max; the table goes to stdout and to `bench/results/llb-scale.txt`.
//!
//! ```text
//! cargo bench --bench lowering                 # everything
//! cargo bench --bench lowering -- 10 100       # only these sizes
//! ```
//!
//! Lowering every component of a chain produces Θ(N²) ops in all (the
//! component at depth d has ~4d of them), so that row stops at 1,000; any
//! row whose time, extrapolated from the two sizes before it, would pass
//! 60 s a run is skipped too, with the estimate.
//! The run happens on a thread with a large stack: lowering and marshalling
//! recurse once per component and op of a chain (see the depth probe at the
//! end of the output).

// The table is this program's output.
#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use strata::graph::Stack;
use strata::lower::{self, BuildContext, BuildMetadata};
use strata::spec::Overrides;

const RUNS: usize = 5;
const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
/// Largest chain whose every component is lowered (output is quadratic).
const MAX_CHAIN_EVERY: usize = 1_000;

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Chain,
    FanOut,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Chain => "chain",
            Shape::FanOut => "fan-out",
        }
    }
}

fn name(i: usize) -> String {
    format!("c{i:05}")
}

/// A stack of `n` components of the given shape.
fn stack_text(n: usize, shape: Shape) -> String {
    let mut s = String::from(
        "[stack]\nname = \"bench\"\nimage = \"registry.example.com/bench/{component}:1.0\"\n\n\
         [user]\nname = \"app\"\nuid = 1000\ngid = 1000\n\n\
         [metadata]\nenv = { APP_REVISION = \"revision\" }\n\n",
    );
    for i in 0..n {
        let from = match (i, shape) {
            (0, _) => "debian:bookworm-slim".to_owned(),
            (_, Shape::Chain) => name(i - 1),
            (_, Shape::FanOut) => name(0),
        };
        let c = name(i);
        let _ = write!(
            s,
            "[component.{c}]\n\
             description = \"component {i}\"\n\
             from = \"{from}\"\n\
             apt = [\"lib{c}\"]\n\
             pip = [\"{c}==1.0\"]\n\
             copy = [{{ src = \"src/{c}\", dst = \"/opt/{c}\" }}]\n\
             run = [\"echo {c} > /opt/{c}/built\"]\n\n"
        );
    }
    s
}

fn load(text: &str) -> Stack {
    strata::load("strata.toml", text.as_bytes(), &Overrides::default())
        .unwrap_or_else(|d| panic!("the synthetic stack does not load:\n{d}"))
}

fn context() -> BuildContext {
    BuildContext {
        metadata: BuildMetadata {
            revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
            source: Some("https://example.com/repo.git".into()),
            source_date_epoch: Some(1_700_000_000),
            ..BuildMetadata::default()
        },
        ..BuildContext::default()
    }
}

/// What one timed run did, to check the runs did real work.
#[derive(Default)]
struct Work {
    ops: usize,
    bytes: usize,
}

fn lower_one(stack: &Stack, target: &str, ctx: &BuildContext, work: &mut Work) {
    let lowered = lower::lower(stack, target, ctx).expect("lowers");
    work.ops += lowered.definition.def.len();
    work.bytes += lowered.definition.def.iter().map(Vec::len).sum::<usize>();
}

struct Stats {
    median: Duration,
    min: Duration,
    max: Duration,
}

fn time(mut f: impl FnMut() -> Work) -> (Stats, Work) {
    let mut times = Vec::with_capacity(RUNS);
    let mut work = Work::default();
    for _ in 0..RUNS {
        let start = Instant::now();
        work = f();
        times.push(start.elapsed());
    }
    times.sort();
    let stats = Stats {
        median: times[RUNS / 2],
        min: times[0],
        max: times[RUNS - 1],
    };
    (stats, work)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn row(out: &mut String, shape: Shape, what: &str, n: usize, s: &Stats, w: &Work) {
    line(
        out,
        format!(
            "{:<8} {:<6} {:>6} {:>12.2} {:>10.1} {:>10.2} {:>10.2} {:>10} {:>12}",
            shape.name(),
            what,
            n,
            ms(s.median),
            s.median.as_secs_f64() * 1e6 / n as f64,
            ms(s.min),
            ms(s.max),
            w.ops,
            w.bytes,
        ),
    );
}

/// Rows whose median, extrapolated from the two sizes before, would take
/// longer than this are skipped (with the estimate shown).
const BUDGET: Duration = Duration::from_secs(60);

/// Prints and records a line of the table.
fn line(out: &mut String, text: String) {
    println!("{text}");
    out.push_str(&text);
    out.push('\n');
}

fn bench(sizes: &[usize]) -> String {
    let mut out = String::new();
    line(
        &mut out,
        format!(
            "{:<8} {:<6} {:>6} {:>12} {:>10} {:>10} {:>10} {:>10} {:>12}",
            "shape",
            "lower",
            "comps",
            "median ms",
            "us/comp",
            "min ms",
            "max ms",
            "ops",
            "op bytes"
        ),
    );
    let ctx = context();
    for shape in [Shape::Chain, Shape::FanOut] {
        // (size, median) of the rows run so far, per kind of row.
        let mut history: [Vec<(usize, Duration)>; 3] = Default::default();
        for &n in sizes {
            let text = stack_text(n, shape);
            let names: Vec<String> = (0..n).map(name).collect();
            let leaf = names.last().expect("n > 0").clone();
            for (kind, what) in ["none", "leaf", "every"].into_iter().enumerate() {
                let skip = |reason: String| {
                    format!("{:<8} {what:<6} {n:>6}   skipped: {reason}", shape.name())
                };
                if what == "every" && shape == Shape::Chain && n > MAX_CHAIN_EVERY {
                    let ops = n * (n + 1) / 2 * 4;
                    line(&mut out, skip(format!("Θ(N²) output, ~{ops} ops")));
                    continue;
                }
                if let [.., (n1, m1), (n2, m2)] = history[kind][..] {
                    let k =
                        (m2.as_secs_f64() / m1.as_secs_f64()).ln() / (n2 as f64 / n1 as f64).ln();
                    let estimate = m2.as_secs_f64() * (n as f64 / n2 as f64).powf(k);
                    if estimate > BUDGET.as_secs_f64() {
                        line(
                            &mut out,
                            skip(format!(
                                "~{estimate:.0} s a run, extrapolated as N^{k:.2} from {n1} and {n2} (budget {} s)",
                                BUDGET.as_secs()
                            )),
                        );
                        continue;
                    }
                }
                let (s, w) = time(|| {
                    let stack = load(&text);
                    let mut work = Work::default();
                    match what {
                        "leaf" => lower_one(&stack, &leaf, &ctx, &mut work),
                        "every" => {
                            for c in &names {
                                lower_one(&stack, c, &ctx, &mut work);
                            }
                        }
                        _ => {}
                    }
                    work
                });
                history[kind].push((n, s.median));
                row(&mut out, shape, what, n, &s, &w);
            }
        }
    }
    out
}

/// The deepest chain `load` + `lower` of the leaf survives on a thread with
/// `stack` bytes of stack, by doubling then bisecting (a child process per
/// probe, since overflowing the stack aborts).
fn depth_probe(stack_bytes: usize) -> String {
    let exe = std::env::current_exe().expect("the bench's path");
    let ok = |depth: usize| {
        std::process::Command::new(&exe)
            .args(["--probe", &depth.to_string(), &stack_bytes.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let (mut good, mut bad) = (0usize, 0usize);
    let mut d = 64;
    while d <= 32_768 {
        if ok(d) {
            good = d;
            d *= 2;
        } else {
            bad = d;
            break;
        }
    }
    if bad == 0 {
        return format!(
            "chain depth on a {} MiB stack: >= {good}",
            stack_bytes >> 20
        );
    }
    while bad - good > good / 16 + 1 {
        let mid = (good + bad) / 2;
        if ok(mid) {
            good = mid;
        } else {
            bad = mid;
        }
    }
    format!(
        "chain depth on a {} MiB stack: {good} works, {bad} overflows",
        stack_bytes >> 20
    )
}

fn on_big_stack<T: Send + 'static>(bytes: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(bytes)
        .spawn(f)
        .expect("a thread")
        .join()
        .expect("the bench thread")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, depth, stack] = args.as_slice() {
        if flag == "--probe" {
            let depth: usize = depth.parse().expect("a depth");
            let stack: usize = stack.parse().expect("a stack size");
            on_big_stack(stack, move || {
                let text = stack_text(depth, Shape::Chain);
                let s = load(&text);
                let mut w = Work::default();
                lower_one(&s, &name(depth - 1), &context(), &mut w);
                drop(s);
            });
            return;
        }
    }
    if let [flag, n, more @ ..] = args.as_slice() {
        if flag == "--split" {
            // Where the time of one chain leaf goes: load, lower, drop
            // (optionally on a thread with the given stack size).
            let n: usize = n.parse().expect("a size");
            let stack_bytes = more.first().map_or(1 << 30, |s| s.parse().expect("bytes"));
            on_big_stack(stack_bytes, move || {
                let text = stack_text(n, Shape::Chain);
                let t = Instant::now();
                eprintln!("load");
                let stack = load(&text);
                let loaded = t.elapsed();
                let t = Instant::now();
                eprintln!("lower");
                let lowered = lower::lower(&stack, &name(n - 1), &context()).expect("lowers");
                let lowered_in = t.elapsed();
                let t = Instant::now();
                eprintln!("drop");
                drop(lowered);
                drop(stack);
                println!(
                    "chain {n}: load {:.2} ms, lower {:.2} ms, drop {:.2} ms",
                    ms(loaded),
                    ms(lowered_in),
                    ms(t.elapsed())
                );
            });
            return;
        }
    }
    let sizes: Vec<usize> = args
        .iter()
        .filter_map(|a| a.replace([',', '_'], "").parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        SIZES.to_vec()
    } else {
        sizes
    };
    let commit = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut out = format!(
        "# strata {commit}: load + lower of synthetic stacks (benches/lowering.rs)\n\
         # each component: apt, pip, copy, run; chain = FROM the previous one,\n\
         # fan-out = FROM one base. lower: none = load only, leaf = the last\n\
         # component, every = each component in turn. {RUNS} runs: median, min, max;\n\
         # us/comp = median / components. ops/op bytes: Definition ops and bytes\n\
         # of one run (leaf: one Definition; every: summed). {cpus} CPUs, shared.\n\n"
    );
    let full = sizes == SIZES;
    out += &on_big_stack(1 << 30, move || bench(&sizes));
    out.push('\n');
    for mib in [2, 8].into_iter().filter(|_| full) {
        let line = depth_probe(mib << 20);
        println!("{line}");
        out += &line;
        out.push('\n');
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results");
    std::fs::create_dir_all(&dir).expect("bench/results");
    std::fs::write(dir.join("llb-scale.txt"), &out).expect("write the results");
    println!("wrote bench/results/llb-scale.txt");
}
