//! No input panics: `strata::load` returns `Ok` or located diagnostics for
//! truncated, mutated, huge, deeply nested and binary stack files.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use strata::graph::render;
use strata::spec::Overrides;

/// Every example: its name and its stack file's bytes.
fn examples() -> Vec<(String, Vec<u8>)> {
    common::examples()
        .into_iter()
        .map(|(name, path)| (name, std::fs::read(path).expect("read an example")))
        .collect()
}

/// Why an input failed the check, or `None` when it passed.
fn check(bytes: &[u8], overrides: &Overrides) -> Option<String> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        match strata::load("fuzz.toml", bytes, overrides) {
            Ok(stack) => {
                // What the CLI does with a stack must not panic either.
                let _ = render::text(&stack);
                let _ = render::json(&stack);
                None
            }
            Err(diags) => {
                let _ = diags.render();
                let len = diags.file.text.len();
                let located = diags
                    .items
                    .iter()
                    .any(|d| d.span.start <= d.span.end && d.span.end <= len);
                let bad = diags
                    .items
                    .iter()
                    .find(|d| d.span.start > d.span.end || d.span.end > len);
                match (located, bad) {
                    (false, _) => Some(format!("no located diagnostic: {:?}", diags.items)),
                    (_, Some(d)) => Some(format!(
                        "span {:?} outside the file ({len} bytes): {}",
                        d.span, d.message
                    )),
                    _ => None,
                }
            }
        }
    }));
    match result {
        Ok(problem) => problem,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            Some(format!("panicked: {msg}"))
        }
    }
}

/// Runs every input, then fails listing the ones that panicked or were unlocated.
struct Runner {
    failures: Vec<String>,
    runs: usize,
}

impl Runner {
    fn new() -> Self {
        Runner {
            failures: Vec::new(),
            runs: 0,
        }
    }

    fn run(&mut self, label: &str, bytes: &[u8]) {
        self.runs += 1;
        if let Some(problem) = check(bytes, &Overrides::default()) {
            let mut shown = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
            if bytes.len() > 120 {
                shown.push_str("...");
            }
            self.failures
                .push(format!("{label}: {problem}\n  input: {shown:?}"));
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} inputs failed:\n{}",
            self.failures.len(),
            self.runs,
            self.failures.join("\n")
        );
    }
}

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A byte likely to change the TOML's structure, or any byte.
    fn byte(&mut self) -> u8 {
        const TOKENS: &[u8] = b"[]{}\"'=.,#\n\r\t \\{}!&|()0123456789-:/@tf";
        match self.below(4) {
            0 => self.next() as u8,
            _ => TOKENS[self.below(TOKENS.len())],
        }
    }
}

#[test]
fn every_truncation_of_the_examples() {
    let mut r = Runner::new();
    for (name, bytes) in examples() {
        let n = bytes.len();
        let offsets: Vec<usize> = if n < 4096 {
            (0..=n).collect()
        } else {
            (0..=300).map(|i| i * n / 300).collect()
        };
        for at in offsets {
            r.run(&format!("{name} truncated at {at}"), &bytes[..at]);
        }
    }
    r.finish();
}

#[test]
fn random_mutations_of_the_examples() {
    let examples = examples();
    let mut rng = Rng(0x5712_a7a5_eed0_0001);
    let mut r = Runner::new();
    for case in 0..3000 {
        let (name, original) = &examples[case % examples.len()];
        let mut bytes = original.clone();
        let mut ops = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(4) {
                0 if at < bytes.len() => {
                    let b = rng.byte();
                    ops.push(format!("set {at} {b:#04x}"));
                    bytes[at] = b;
                }
                1 if at < bytes.len() => {
                    let b = bytes[at] ^ (1 << rng.below(8));
                    ops.push(format!("flip {at} {b:#04x}"));
                    bytes[at] = b;
                }
                2 => {
                    let len = 1 + rng.below(16);
                    let end = (at + len).min(bytes.len());
                    ops.push(format!("delete {at}..{end}"));
                    bytes.drain(at..end);
                }
                _ => {
                    let b = rng.byte();
                    ops.push(format!("insert {at} {b:#04x}"));
                    bytes.insert(at, b);
                }
            }
        }
        r.run(&format!("{name} case {case}: {}", ops.join(", ")), &bytes);
    }
    r.finish();
}

/// A small valid stack with `extra` inserted before its component.
fn stack_with(extra: &str) -> Vec<u8> {
    format!(
        "[stack]\nname = \"demo\"\n\n[args]\ngpu = false\n\n{extra}\n\n[component.base]\nfrom = \"debian:bookworm-slim\"\n"
    )
    .into_bytes()
}

#[test]
fn hostile_inputs() {
    let mut r = Runner::new();
    let mut rng = Rng(0xdead_beef_cafe_f00d);

    r.run("empty file", b"");
    r.run("one newline", b"\n");
    r.run("only a BOM", b"\xef\xbb\xbf");
    for i in 0..50 {
        let len = rng.below(2048);
        let garbage: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        r.run(&format!("binary garbage {i} ({len} bytes)"), &garbage);
    }
    r.run("invalid UTF-8 first", b"\xff\xfe[stack]\n");
    r.run("invalid UTF-8 last", b"[stack]\nname = \"demo\"\n\xc3");
    r.run("overlong encoding", b"[stack]\nname = \"\xc0\xaf\"\n");
    r.run("UTF-16 text", b"\xff\xfe[\0s\0t\0a\0c\0k\0]\0\n\0");

    let depth = 100_000;
    let arrays = format!("a = {}{}", "[".repeat(depth), "]".repeat(depth));
    r.run("arrays 100,000 deep", arrays.as_bytes());
    let open = format!("a = {}", "[".repeat(depth));
    r.run("unclosed arrays 100,000 deep", open.as_bytes());
    let tables = format!("a = {}1{}", "{ b = ".repeat(depth), " }".repeat(depth));
    r.run("inline tables 100,000 deep", tables.as_bytes());
    let mixed = format!("a = {}", "[{ b = ".repeat(depth / 2));
    r.run("arrays of inline tables", mixed.as_bytes());
    let dotted = format!("{} = 1", vec!["a"; 10_000].join("."));
    r.run("dotted key 10,000 deep", dotted.as_bytes());
    let header = format!("[{}]\nx = 1", vec!["a"; 10_000].join("."));
    r.run("table header 10,000 deep", header.as_bytes());
    let labels = format!(
        "[stack]\nname = \"demo\"\n[component.base]\nfrom = \"debian:bookworm\"\nlabels.{} = \"x\"",
        vec!["a"; 10_000].join(".")
    );
    r.run("component key 10,000 deep", labels.as_bytes());
    let nested_in_string = stack_with(&format!(
        "[profiles.p]\ndescription = \"{}\"",
        "[".repeat(depth)
    ));
    r.run("brackets inside a string", &nested_in_string);

    let when = |cond: String| {
        let mut bytes = stack_with("");
        bytes.extend(format!("when = \"{cond}\"\n").into_bytes());
        bytes
    };
    let nots = when(format!("{}gpu", "!".repeat(10_000)));
    r.run("condition with 10,000 `!`", &nots);
    let parens = when(format!("{}gpu{}", "(".repeat(10_000), ")".repeat(10_000)));
    r.run("condition with 10,000 parentheses", &parens);
    let ors = when(format!("gpu{}", " || gpu".repeat(10_000)));
    r.run("condition with 10,000 `||`", &ors);
    let ands = when(format!("gpu{}", " && !(gpu)".repeat(10_000)));
    r.run("condition with 10,000 `&& !()`", &ands);

    let long_value = stack_with(&format!(
        "[profiles.p]\ndescription = \"{}\"",
        "x".repeat(1 << 20)
    ));
    r.run("a 1 MB line", &long_value);
    let long_error = format!("[stack]\nname = \"demo\" {}= 1\n", "x".repeat(100_000));
    r.run("an error at the end of a long line", long_error.as_bytes());
    let wide = format!("[stack]\nname = \"{}é\"\n", "é".repeat(50_000));
    r.run("a long line of multi-byte characters", wide.as_bytes());
    let braces = format!(
        "[stack]\nname = \"demo\"\nimage = \"{}\"\n",
        "{".repeat(10_000)
    );
    r.run("10,000 `{` in a naming rule", braces.as_bytes());

    r.run(
        "NUL in a string",
        &stack_with("[profiles.p]\ndescription = \"a\0b\""),
    );
    r.run("NUL in a comment", &stack_with("# a\0b"));
    r.run("NUL as a key", &stack_with("\0 = 1"));
    r.run("only NULs", &[0u8; 100]);
    r.run("control characters", &stack_with("# \x01\x02\x1b[31m\x7f"));
    r.run("a lone CR", &stack_with("[profiles.p]\r"));
    r.run(
        "tabs",
        b"[stack]\n\tname\t=\t\"demo\"\n\t[component.base]\n\tfrom = \"debian:bookworm\"",
    );
    r.run("a BOM before an error", b"\xef\xbb\xbf[stack]\nname = 3\n");

    r.finish();
}

#[test]
fn a_10_mb_file_is_rejected_quickly_with_a_location() {
    let mut bytes = stack_with("");
    let filler = "# padding padding padding padding padding padding padding padding\n";
    while bytes.len() < 10 << 20 {
        bytes.extend_from_slice(filler.as_bytes());
    }
    let start = Instant::now();
    let err = strata::load("big.toml", &bytes, &Overrides::default())
        .expect_err("a 10 MB stack file is refused");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let d = err.first_error().expect("an error");
    assert!(d.message.contains("limit"), "{}", d.message);
    assert!(d.span.end <= err.file.text.len());
    let shown = err.render();
    assert!(shown.contains("--> big.toml:1:1"), "{shown}");
}

#[test]
fn crlf_and_bom_load_like_the_original() {
    for (name, bytes) in examples() {
        let text = String::from_utf8(bytes).expect("examples are UTF-8");
        let want = match strata::load("lf.toml", text.as_bytes(), &Overrides::default()) {
            Ok(s) => render::json(&s),
            Err(d) => panic!("{name}: the example does not load:\n{d}"),
        };
        let crlf = text.replace('\n', "\r\n");
        match strata::load("crlf.toml", crlf.as_bytes(), &Overrides::default()) {
            Ok(s) => assert_eq!(render::json(&s), want, "{name} with CRLF"),
            Err(d) => panic!("{name} with CRLF line endings:\n{d}"),
        }
        let bom = format!("\u{feff}{text}");
        match strata::load("bom.toml", bom.as_bytes(), &Overrides::default()) {
            Ok(s) => assert_eq!(render::json(&s), want, "{name} with a BOM"),
            Err(d) => panic!("{name} with a byte order mark:\n{d}"),
        }
    }
}

#[test]
fn crlf_keeps_error_locations() {
    let text = "[stack]\nname = \"demo\"\n\n[component.base]\nfrom = \"debian:bookworm\"\nwhen = \"gpu\"\n";
    let locate = |t: &str| {
        let err =
            strata::load("s.toml", t.as_bytes(), &Overrides::default()).expect_err("unknown arg");
        let d = err.first_error().expect("an error").clone();
        (err.file.line_col(d.span.start), err.render())
    };
    let (lf, _) = locate(text);
    let (crlf, shown) = locate(&text.replace('\n', "\r\n"));
    assert_eq!(lf, crlf);
    assert!(shown.contains("--> s.toml:6:9"), "{shown}");
    assert!(!shown.contains('\r'), "{shown:?}");
}
