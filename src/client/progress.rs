//! BuildKit's status stream shown to the user, as buildx shows it: a live
//! view with a line per running step on a terminal (`tty`), numbered lines
//! for CI logs (`plain`), or nothing but errors (`quiet`). Steps shared by
//! several components (one base under all of them) are shown once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::time::Instant;

use prost_types::Timestamp;
use strata_proto::control::StatusResponse;

pub use crate::cli::progress::Mode;

/// Log lines kept per step, shown when it fails.
const KEPT_LOGS: usize = 12;

#[derive(Default)]
struct Step {
    number: usize,
    name: String,
    started: Option<Timestamp>,
    completed: Option<Timestamp>,
    cached: bool,
    error: String,
    announced: bool,
    finished: bool,
    seen_at: Option<Instant>,
    logs: VecDeque<String>,
    partial: String,
}

/// The progress of one build (every component's solve reports into it).
pub struct Progress {
    mode: Mode,
    out: Box<dyn Write>,
    steps: BTreeMap<String, Step>,
    running: Vec<String>,
    /// Finished transfers (vertex, id) already shown.
    transfers: BTreeSet<(String, String)>,
    started: Instant,
    live_lines: usize,
}

fn seconds(from: &Timestamp, to: &Timestamp) -> f64 {
    let ns = |t: &Timestamp| t.seconds as f64 + f64::from(t.nanos) / 1e9;
    (ns(to) - ns(from)).max(0.0)
}

impl Progress {
    /// Progress written to stderr.
    pub fn new(mode: Mode) -> Progress {
        Progress::to(mode, Box::new(std::io::stderr()))
    }

    /// Progress written to `out`.
    pub fn to(mode: Mode, out: Box<dyn Write>) -> Progress {
        Progress {
            mode,
            out,
            steps: BTreeMap::new(),
            running: Vec::new(),
            transfers: BTreeSet::new(),
            started: Instant::now(),
            live_lines: 0,
        }
    }

    /// Takes one message of a solve's status stream.
    pub fn update(&mut self, msg: StatusResponse) {
        self.clear_live();
        for v in msg.vertexes {
            let number = self.steps.len() + 1;
            let step = self.steps.entry(v.digest.clone()).or_insert_with(|| Step {
                number,
                ..Step::default()
            });
            step.name = v.name;
            step.cached |= v.cached;
            if v.started.is_some() {
                step.started = v.started;
            }
            if v.completed.is_some() {
                step.completed = v.completed;
            }
            if !v.error.is_empty() {
                step.error = v.error;
            }
            if step.seen_at.is_none() && (step.started.is_some() || step.cached) {
                step.seen_at = Some(Instant::now());
            }
            self.show_step(&v.digest);
        }
        for s in msg.statuses {
            if self.mode == Mode::Plain
                && s.completed.is_some()
                && self.transfers.insert((s.vertex.clone(), s.id.clone()))
            {
                if let Some(step) = self.steps.get(&s.vertex) {
                    let amount = if s.total > 0 {
                        format!(" {} / {}", bytes(s.current), bytes(s.total))
                    } else if s.current > 0 {
                        format!(" {}", bytes(s.current))
                    } else {
                        String::new()
                    };
                    let _ = writeln!(self.out, "#{} {}{amount} done", step.number, s.id);
                }
            }
        }
        for l in msg.logs {
            let Some(step) = self.steps.get_mut(&l.vertex) else {
                continue;
            };
            step.partial.push_str(&String::from_utf8_lossy(&l.msg));
            while let Some(i) = step.partial.find('\n') {
                let line: String = step.partial.drain(..=i).collect();
                let line = line.trim_end_matches(['\n', '\r']).to_owned();
                if self.mode == Mode::Plain {
                    let at = match (&step.started, &l.timestamp) {
                        (Some(s), Some(t)) => seconds(s, t),
                        _ => 0.0,
                    };
                    let _ = writeln!(self.out, "#{} {at:.3} {line}", step.number);
                }
                if step.logs.len() == KEPT_LOGS {
                    step.logs.pop_front();
                }
                step.logs.push_back(line);
            }
        }
        for w in msg.warnings {
            if self.mode != Mode::Quiet {
                let short = String::from_utf8_lossy(&w.short);
                let _ = writeln!(self.out, "WARNING: {short}");
            }
        }
        self.draw_live();
    }

    fn show_step(&mut self, digest: &str) {
        let mode = self.mode;
        let Some(step) = self.steps.get_mut(digest) else {
            return;
        };
        let done = step.completed.is_some();
        if mode == Mode::Plain && !step.announced && (step.started.is_some() || step.cached) {
            let _ = writeln!(self.out, "#{} {}", step.number, step.name);
            step.announced = true;
        }
        if done && !step.finished {
            step.finished = true;
            self.running.retain(|d| d != digest);
            let took = match (&step.started, &step.completed) {
                (Some(s), Some(c)) => seconds(s, c),
                _ => 0.0,
            };
            let line = match mode {
                Mode::Plain if !step.error.is_empty() => {
                    format!("#{} ERROR: {}", step.number, step.error)
                }
                Mode::Plain if step.cached => format!("#{} CACHED", step.number),
                Mode::Plain => format!("#{} DONE {took:.1}s", step.number),
                Mode::Tty if !step.error.is_empty() => {
                    format!(" => ERROR {} {took:.1}s", step.name)
                }
                Mode::Tty if step.cached => format!(" => CACHED {}", step.name),
                Mode::Tty => format!(" => {} {took:.1}s", step.name),
                _ => return,
            };
            let _ = writeln!(self.out, "{line}");
        } else if !done && step.started.is_some() && !self.running.iter().any(|d| d == digest) {
            self.running.push(digest.to_owned());
        }
    }

    /// Redraws the live view (on a terminal); called on a timer too.
    pub fn tick(&mut self) {
        if self.mode == Mode::Tty {
            self.clear_live();
            self.draw_live();
        }
    }

    fn clear_live(&mut self) {
        if self.mode == Mode::Tty && self.live_lines > 0 {
            let _ = write!(self.out, "\x1b[{}A\x1b[J", self.live_lines);
            self.live_lines = 0;
        }
    }

    fn draw_live(&mut self) {
        if self.mode != Mode::Tty {
            let _ = self.out.flush();
            return;
        }
        let done = self.steps.values().filter(|s| s.finished).count();
        let mut lines = vec![format!(
            "[+] Building {:.1}s ({done}/{})",
            self.started.elapsed().as_secs_f64(),
            self.steps.len()
        )];
        let width = terminal_width();
        for d in &self.running {
            if let Some(s) = self.steps.get(d) {
                let took = s.seen_at.map_or(0.0, |t| t.elapsed().as_secs_f64());
                let mut line = format!(" => {} {took:.1}s", s.name);
                if let Some(last) = s.logs.back() {
                    line.push_str(&format!("  {last}"));
                }
                lines.push(truncate(&line, width));
            }
        }
        for l in &lines {
            let _ = writeln!(self.out, "{l}");
        }
        self.live_lines = lines.len();
        let _ = self.out.flush();
    }

    /// Ends the live view.
    pub fn finish(&mut self) {
        self.clear_live();
        let _ = self.out.flush();
    }

    /// The failed steps: name, BuildKit's error and the last lines they logged.
    pub fn failures(&self) -> Vec<(&str, &str, Vec<&str>)> {
        self.steps
            .values()
            .filter(|s| !s.error.is_empty())
            .map(|s| {
                (
                    s.name.as_str(),
                    s.error.as_str(),
                    s.logs.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    /// How many steps ran and how many came from the cache.
    pub fn counts(&self) -> (usize, usize) {
        let cached = self.steps.values().filter(|s| s.cached).count();
        (self.steps.len() - cached, cached)
    }

    /// Whether a step of this name was reported (for tests and summaries).
    pub fn step_names(&self) -> impl Iterator<Item = (&str, bool)> {
        self.steps.values().map(|s| (s.name.as_str(), s.cached))
    }
}

fn truncate(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_owned();
    }
    line.chars()
        .take(width.saturating_sub(1))
        .collect::<String>()
        + "…"
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w| *w >= 20)
        .unwrap_or(100)
}

/// A byte count as buildx shows it (`1.23MB`).
pub fn bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    if n < 1e3 {
        format!("{n}B")
    } else if n < 1e6 {
        format!("{:.2}kB", n / 1e3)
    } else if n < 1e9 {
        format!("{:.2}MB", n / 1e6)
    } else {
        format!("{:.2}GB", n / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use strata_proto::control::{Vertex, VertexLog};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn ts(s: i64) -> Option<Timestamp> {
        Some(Timestamp {
            seconds: s,
            nanos: 0,
        })
    }

    #[test]
    fn plain_progress_numbers_each_step_once_even_when_two_solves_share_it() {
        let out = Shared::default();
        let mut p = Progress::to(Mode::Plain, Box::new(out.clone()));
        let base = Vertex {
            digest: "sha256:a".into(),
            name: "[base] RUN apt-get install".into(),
            started: ts(10),
            ..Vertex::default()
        };
        // Both components' status streams report the shared step.
        for _ in 0..2 {
            p.update(StatusResponse {
                vertexes: vec![base.clone()],
                ..StatusResponse::default()
            });
        }
        p.update(StatusResponse {
            logs: vec![VertexLog {
                vertex: "sha256:a".into(),
                timestamp: ts(11),
                stream: 1,
                msg: b"unpacking\nsetting up".to_vec(),
            }],
            ..StatusResponse::default()
        });
        let done = Vertex {
            completed: ts(13),
            ..base.clone()
        };
        for _ in 0..2 {
            p.update(StatusResponse {
                vertexes: vec![done.clone()],
                ..StatusResponse::default()
            });
        }
        let cached = Vertex {
            digest: "sha256:b".into(),
            name: "[app] COPY app.py".into(),
            cached: true,
            started: ts(13),
            completed: ts(13),
            ..Vertex::default()
        };
        p.update(StatusResponse {
            vertexes: vec![cached],
            ..StatusResponse::default()
        });
        let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf8");
        assert_eq!(
            text,
            "#1 [base] RUN apt-get install\n#1 1.000 unpacking\n#1 DONE 3.0s\n#2 [app] COPY app.py\n#2 CACHED\n"
        );
        assert_eq!(p.counts(), (1, 1));
    }

    #[test]
    fn a_failed_step_keeps_its_last_lines() {
        let mut p = Progress::to(Mode::Quiet, Box::new(Shared::default()));
        let v = Vertex {
            digest: "sha256:c".into(),
            name: "[app] RUN make".into(),
            started: ts(1),
            ..Vertex::default()
        };
        p.update(StatusResponse {
            vertexes: vec![v.clone()],
            logs: (0..20)
                .map(|i| VertexLog {
                    vertex: "sha256:c".into(),
                    msg: format!("line {i}\n").into_bytes(),
                    ..VertexLog::default()
                })
                .collect(),
            ..StatusResponse::default()
        });
        p.update(StatusResponse {
            vertexes: vec![Vertex {
                completed: ts(2),
                error: "exit code: 2".into(),
                ..v
            }],
            ..StatusResponse::default()
        });
        let f = p.failures();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].1, "exit code: 2");
        assert_eq!(f[0].2.len(), KEPT_LOGS);
        assert_eq!(f[0].2.last().copied(), Some("line 19"));
    }
}
