//! The benchmark harness, end to end on the real engine, in its quick form:
//! `BENCH_QUICK=1 bench/run.sh` (steps scaled down, one run of each, about
//! a minute). It checks that the table has all five parts and that
//! `strata build` ran the shared base's step exactly once. Timings are
//! never asserted: the figures are noisy on a shared machine.
//!
//! Needs what `scripts/test.sh` sets up first: `scripts/engine.sh` and
//! `scripts/frontend-image.sh`.

mod common;

use std::process::Command;

use common::{frontend_image, root};

/// The `strata build` row, `(c)`, of a part, and its cells.
fn strata_build_row<'a>(table: &'a str, heading: &str) -> (&'a str, Vec<&'a str>) {
    let row = part(table, heading)
        .into_iter()
        .find(|l| l.starts_with("| (c) "))
        .unwrap_or_else(|| panic!("no (c) row under `{heading}`"));
    (row, cells(row))
}

/// The lines of the part whose heading starts with `heading`, up to the next `## `.
fn part<'a>(table: &'a str, heading: &str) -> Vec<&'a str> {
    table
        .lines()
        .skip_while(|l| !l.starts_with(heading))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect()
}

/// The cells of a Markdown table row, trimmed, without the outer pipes.
fn cells(row: &str) -> Vec<&str> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(str::trim).collect()
}

#[test]
fn quick_bench_has_every_part_and_runs_the_shared_base_once() {
    frontend_image();
    let out = std::env::temp_dir().join(format!("strata-bench-smoke-{}.md", std::process::id()));
    let run = Command::new("bash")
        .arg(root().join("bench/run.sh"))
        .env("BENCH_QUICK", "1")
        .env("STRATA_BIN", env!("CARGO_BIN_EXE_strata"))
        .env("BENCH_OUT", &out)
        .env_remove("BENCH_RUNS")
        .env_remove("BENCH_SCALE")
        .env_remove("STRATA_MIRRORS")
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "bench/run.sh failed:\n{stderr}");
    let table = std::fs::read_to_string(&out).expect("bench/run.sh writes BENCH_OUT");
    let _ = std::fs::remove_file(&out);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        table,
        "the table is printed as written"
    );

    let headings = [
        "## 1. Stack build time against the critical path",
        "## 2. Shared base executed once",
        "## 3. Incremental rebuild",
        "## 4. LLB generation",
        "## 5. Frontend overhead",
    ];
    for h in headings {
        let rows: Vec<&str> = part(&table, h)
            .into_iter()
            .filter(|l| l.starts_with("| ") && !l.starts_with("|---"))
            .collect();
        assert!(rows.len() >= 2, "no table under `{h}`:\n{table}");
    }
    for h in &headings[..3] {
        for build in ["| (a) ", "| (b) ", "| (c) ", "| (d) "] {
            assert!(
                part(&table, h).iter().any(|l| l.starts_with(build)),
                "`{h}` has no row `{build}`:\n{table}"
            );
        }
    }

    // Part 2: the base step of `strata build` ran once for its five images.
    let (row, c) = strata_build_row(&table, "## 2.");
    assert_eq!(
        c.get(1).copied(),
        Some("1"),
        "strata build ran the base step more than once (distinct /base-id): {row}\n{table}"
    );
    assert_eq!(c.get(3).copied(), Some("5"), "five images: {row}");

    // Part 3: an edit of node's file re-runs node's and node-gpu's steps, not the base's.
    let (row, c) = strata_build_row(&table, "## 3.");
    let ran = c.get(3).copied().unwrap_or_default();
    assert!(
        ran.contains("node RUN") && !ran.contains("base"),
        "after editing node's file, strata build ran: {ran}\n{table}"
    );
    assert!(
        c.get(5).is_some_and(|s| s.starts_with('0')),
        "a no-op rebuild ran steps: {row}"
    );
}
