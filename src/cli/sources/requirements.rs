//! Requirement files as `strata sources` reads them: pip's include forms,
//! continuation lines and comments, paths kept inside the build context,
//! and bounds on what is read.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Most bytes `strata sources` reads from one requirements file.
const REQUIREMENTS_FILE_BYTES: u64 = 4 << 20;
/// Most bytes it reads from one requirements file and its includes, in all.
const REQUIREMENTS_TOTAL_BYTES: u64 = 64 << 20;
/// Most lines it reads from one requirements file and its includes, in all.
const REQUIREMENTS_TOTAL_LINES: usize = 200_000;
/// How much of a refused line an error message quotes.
const QUOTED_LINE_CHARS: usize = 120;

/// What one requirements file of a component, and its includes, list.
#[derive(Debug, Default)]
pub(super) struct Requirements {
    /// The requirement specifiers, in pip's order; a file that is not
    /// there is listed as `(cannot read FILE)`.
    pub(super) specs: Vec<String>,
    /// Why paths were refused, each naming where it was written.
    pub(super) refused: Vec<String>,
    /// The files read, as the listing shows them, each once.
    pub(super) files: Vec<String>,
}

/// A requirements or constraints file named by `-r` or `-c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Include {
    Requirements,
    Constraints,
}

/// The file a `-r`/`--requirement` or `-c`/`--constraint` line names,
/// in the forms pip accepts (`-r f`, `-rf`, `--requirement f`, `--requirement=f`).
fn include_of(line: &str) -> Option<(Include, &str)> {
    for (long, kind) in [
        ("--requirement", Include::Requirements),
        ("--constraint", Include::Constraints),
    ] {
        if let Some(rest) = line.strip_prefix(long) {
            let path = rest.strip_prefix('=').or_else(|| {
                rest.starts_with(char::is_whitespace)
                    .then_some(rest.trim_start())
            })?;
            return Some((kind, path.trim()));
        }
    }
    for (short, kind) in [("-r", Include::Requirements), ("-c", Include::Constraints)] {
        if let Some(rest) = line.strip_prefix(short) {
            return Some((kind, rest.trim()));
        }
    }
    None
}

/// A requirements file's logical lines, with the 1-based line each
/// starts on: comments dropped, `\` continuations joined, as pip reads them.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut line) = pending.take().unwrap_or((i + 1, String::new()));
        line.push_str(raw);
        if let Some(joined) = line.strip_suffix('\\') {
            pending = Some((start, joined.to_owned()));
            continue;
        }
        out.push((start, line));
    }
    out.extend(pending);
    out.into_iter()
        .filter_map(|(n, line)| {
            let line = strip_comment(&line).trim();
            (!line.is_empty()).then(|| (n, line.to_owned()))
        })
        .collect()
}

/// A line without its comment: `#` at the start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, ch) in line.char_indices() {
        if ch == '#' && prev_space {
            return &line[..i];
        }
        prev_space = ch.is_whitespace();
    }
    line
}

/// A path relative to the context, `..` and `.` resolved by name;
/// None when it climbs above the context.
fn normalize_in_context(dir: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Where a requirements path written in `dir` (relative to the context)
/// leads, relative to the context; or why it is refused.
fn context_relative(dir: &str, path: &str) -> Result<String, &'static str> {
    if path.starts_with('/') {
        Err("names an absolute path")
    } else if path.contains("://") {
        Err("names a URL, not a file")
    } else {
        normalize_in_context(dir, path).ok_or("climbs out of the build context with `..`")
    }
}

/// A path as the listing shows it: relative to the stack file's directory.
pub(super) fn in_context(context: &str, p: &str) -> String {
    if context == "." || context.is_empty() {
        p.to_owned()
    } else {
        format!("{}/{p}", context.trim_end_matches('/'))
    }
}

/// The text of a line quoted in a message, cut short when long.
fn quoted(line: &str) -> String {
    let mut q: String = line.chars().take(QUOTED_LINE_CHARS).collect();
    if q.len() < line.len() {
        q.push_str("...");
    }
    q
}

/// Where a context path leads.
enum Located {
    /// Inside the context: its canonical path.
    Inside(PathBuf),
    /// Nowhere: it is not there (or a link to nothing).
    Missing,
    /// Outside the context, through a symbolic link.
    Outside,
}

/// Reads one component's pip requirements, only inside its build context.
struct RequirementReader<'a> {
    /// The component, for messages.
    component: &'a str,
    /// The context as the stack file writes it (relative to `root`).
    context: &'a str,
    /// The context directory on this machine.
    dir: PathBuf,
    /// `dir` with every symbolic link followed.
    canonical: PathBuf,
    /// Every file opened, by canonical path: each is read once.
    visited: BTreeSet<PathBuf>,
    lines: usize,
    bytes: u64,
    out: Requirements,
}

impl RequirementReader<'_> {
    fn refuse(&mut self, at: &str, why: &str) {
        self.out.refused.push(format!("{at}: {why}"));
    }

    /// A context file's canonical path, if it is there and inside the context.
    fn locate(&self, rel: &str) -> Located {
        match self.dir.join(rel).canonicalize() {
            Err(_) => Located::Missing,
            Ok(path) if path.starts_with(&self.canonical) => Located::Inside(path),
            Ok(_) => Located::Outside,
        }
    }

    fn refuse_outside(&mut self, at: &str, written: &str) {
        self.refuse(
            at,
            &format!("`{written}` leads outside the build context through a symbolic link"),
        );
    }

    /// A requirements file's text, when it is a regular file within the size limits.
    fn read(&mut self, path: &Path, at: &str, written: &str) -> Option<String> {
        use std::io::Read;
        if !path.is_file() {
            self.refuse(at, &format!("`{written}` is not a regular file"));
            return None;
        }
        let mut bytes = Vec::new();
        let read = std::fs::File::open(path)
            .and_then(|f| f.take(REQUIREMENTS_FILE_BYTES + 1).read_to_end(&mut bytes));
        if read.is_err() {
            let shown = format!("(cannot read {})", self.shown(path));
            self.out.specs.push(shown);
            return None;
        }
        if bytes.len() as u64 > REQUIREMENTS_FILE_BYTES {
            self.refuse(
                at,
                &format!(
                    "`{written}` is larger than {} MiB",
                    REQUIREMENTS_FILE_BYTES >> 20
                ),
            );
            return None;
        }
        self.bytes += bytes.len() as u64;
        if self.bytes > REQUIREMENTS_TOTAL_BYTES {
            self.refuse(
                at,
                &format!(
                    "stopped at `{written}`: more than {} MiB of requirements in all",
                    REQUIREMENTS_TOTAL_BYTES >> 20
                ),
            );
            return None;
        }
        match String::from_utf8(bytes) {
            Ok(t) => Some(t),
            Err(_) => {
                self.refuse(at, &format!("`{written}` is not UTF-8 text"));
                None
            }
        }
    }

    /// A canonical path inside the context, shown as the listing shows paths.
    fn shown(&self, path: &Path) -> String {
        let rel = path
            .strip_prefix(&self.canonical)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        in_context(self.context, &rel)
    }

    /// Reads `file` (relative to the context) and the files it includes,
    /// depth first in pip's order, each once.
    fn read_all(mut self, file: &str) -> Requirements {
        struct Open {
            rel: String,
            lines: std::vec::IntoIter<(usize, String)>,
        }
        let mut stack: Vec<Open> = Vec::new();
        let at = at_component(self.component);
        // The stack file's paths were checked when it loaded; checked again here.
        let mut next = match context_relative("", file) {
            Ok(rel) => Some((rel, at, file.to_owned())),
            Err(why) => {
                self.refuse(&at, &format!("`{file}` {why}"));
                None
            }
        };
        loop {
            if let Some((rel, at, written)) = next.take() {
                match self.locate(&rel) {
                    Located::Missing => self
                        .out
                        .specs
                        .push(format!("(cannot read {})", in_context(self.context, &rel))),
                    Located::Outside => self.refuse_outside(&at, &written),
                    Located::Inside(path) => {
                        if self.visited.insert(path.clone()) {
                            if let Some(text) = self.read(&path, &at, &written) {
                                self.out.files.push(in_context(self.context, &rel));
                                stack.push(Open {
                                    rel,
                                    lines: logical_lines(&text).into_iter(),
                                });
                            }
                        }
                    }
                }
            }
            let Some(top) = stack.last_mut() else {
                break;
            };
            let Some((n, line)) = top.lines.next() else {
                stack.pop();
                continue;
            };
            self.lines += 1;
            let at = format!("{}:{n}", in_context(self.context, &top.rel));
            if self.lines > REQUIREMENTS_TOTAL_LINES {
                self.refuse(
                    &at,
                    &format!(
                        "stopped reading: more than {REQUIREMENTS_TOTAL_LINES} requirement lines in all"
                    ),
                );
                break;
            }
            let Some((kind, target)) = include_of(&line) else {
                if !line.starts_with('-') {
                    self.out.specs.push(line);
                }
                continue;
            };
            let written = quoted(&line);
            let dir = top.rel.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
            match context_relative(&dir, target) {
                Err(why) => self.refuse(&at, &format!("`{written}` {why}")),
                // A constraints file lists versions, not packages: checked, not read.
                Ok(rel) if kind == Include::Constraints => {
                    if matches!(self.locate(&rel), Located::Outside) {
                        self.refuse_outside(&at, &written);
                    }
                }
                Ok(rel) => next = Some((rel, at, written)),
            }
        }
        self.out
    }
}

/// Where a requirements path the stack file names was written.
fn at_component(component: &str) -> String {
    format!("component `{component}`")
}

/// The requirement specifiers of a component's pip requirements file
/// and its `-r` includes, read only inside the component's build context.
pub(super) fn read_requirements(
    root: &Path,
    context: &str,
    component: &str,
    file: &str,
) -> Requirements {
    let context = if context == "." { "" } else { context };
    let root = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    let dir = root.join(context);
    let Ok(canonical) = dir.canonicalize() else {
        return Requirements {
            specs: vec![format!("(cannot read {})", in_context(context, file))],
            ..Requirements::default()
        };
    };
    RequirementReader {
        component,
        context,
        dir,
        canonical,
        visited: BTreeSet::new(),
        lines: 0,
        bytes: 0,
        out: Requirements::default(),
    }
    .read_all(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test's build context.
    fn temp_context(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-lock-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ctx/sub")).expect("temp dir");
        dir
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn includes_are_read_in_every_form_pip_accepts() {
        let cases = [
            ("-r a.txt", Some((Include::Requirements, "a.txt"))),
            ("-ra.txt", Some((Include::Requirements, "a.txt"))),
            (
                "--requirement a.txt",
                Some((Include::Requirements, "a.txt")),
            ),
            (
                "--requirement=a.txt",
                Some((Include::Requirements, "a.txt")),
            ),
            ("-c c.txt", Some((Include::Constraints, "c.txt"))),
            ("--constraint=c.txt", Some((Include::Constraints, "c.txt"))),
            ("--requirements-x", None),
            ("--pre", None),
            ("six==1.16.0", None),
        ];
        for (line, want) in cases {
            assert_eq!(include_of(line), want, "{line}");
        }
    }

    #[test]
    fn comments_and_continuations_as_pip_reads_them() {
        let text = "# top\nsix==1.16 # pinned\nnumpy\\\n  >=1.0\n\nurl#frag\n";
        assert_eq!(
            logical_lines(text),
            vec![
                (2, "six==1.16".to_owned()),
                (3, "numpy  >=1.0".to_owned()),
                (6, "url#frag".to_owned()),
            ]
        );
    }

    #[test]
    fn include_paths_stay_inside_the_context_by_name() {
        assert_eq!(context_relative("sub", "../a.txt"), Ok("a.txt".to_owned()));
        assert_eq!(
            context_relative("sub", "./b/../c.txt"),
            Ok("sub/c.txt".to_owned())
        );
        assert!(context_relative("sub", "../../a.txt").is_err());
        assert!(context_relative("", "../a.txt").is_err());
        assert!(context_relative("", "/proc/self/environ").is_err());
        assert!(context_relative("", "https://example.org/r.txt").is_err());
    }

    #[test]
    fn requirements_outside_the_context_are_refused_and_never_read() {
        let dir = temp_context("outside");
        let ctx = dir.join("ctx");
        write(&dir.join("outside.txt"), "outside-secret\n");
        write(
            &ctx.join("requirements.txt"),
            "six\n-r /proc/self/environ\n-r ../outside.txt\n-r sub/link.txt\n-c ../c.txt\n--constraint=sub/c.txt\n",
        );
        write(&ctx.join("sub/c.txt"), "six<2\n");
        std::os::unix::fs::symlink("../../outside.txt", ctx.join("sub/link.txt")).expect("symlink");
        std::os::unix::fs::symlink("../outside.txt", ctx.join("linked.txt")).expect("symlink");
        let r = read_requirements(&dir, "ctx", "app", "requirements.txt");
        assert_eq!(r.specs, vec!["six"]);
        assert_eq!(r.files, vec!["ctx/requirements.txt"]);
        let lines: Vec<&str> = r
            .refused
            .iter()
            .map(|m| m.split(": ").next().unwrap_or(""))
            .collect();
        assert_eq!(
            lines,
            [
                "ctx/requirements.txt:2",
                "ctx/requirements.txt:3",
                "ctx/requirements.txt:4",
                "ctx/requirements.txt:5"
            ]
        );
        assert!(r.refused[0].contains("absolute"), "{:?}", r.refused);
        assert!(r.refused[2].contains("symbolic link"), "{:?}", r.refused);
        let top = read_requirements(&dir, "ctx", "app", "linked.txt");
        assert!(top.specs.is_empty());
        assert_eq!(top.refused.len(), 1);
        assert!(top.refused[0].starts_with("component `app`: `linked.txt` leads outside"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_file_is_read_once_and_cycles_end() {
        let dir = temp_context("once");
        let ctx = dir.join("ctx");
        // Each file includes the next twice: 2^30 reads without the visited set.
        for i in 0..30 {
            let next = format!("-r f{}.txt\n", i + 1);
            write(
                &ctx.join(format!("f{i}.txt")),
                &format!("pkg{i}\n{next}{next}"),
            );
        }
        write(&ctx.join("f30.txt"), "last\n-r sub/../f0.txt\n");
        let r = read_requirements(&dir, "ctx", "app", "f0.txt");
        assert!(r.refused.is_empty(), "{:?}", r.refused);
        assert_eq!(r.files.len(), 31);
        assert_eq!(r.specs.len(), 31);
        assert_eq!(r.specs[30], "last");
        // a -> b -> a, from a subdirectory (relative to the including file).
        write(&ctx.join("a.txt"), "in-a\n-r sub/b.txt\n");
        write(&ctx.join("sub/b.txt"), "in-b\n-r ../a.txt\n");
        let r = read_requirements(&dir, "ctx", "app", "a.txt");
        assert!(r.refused.is_empty(), "{:?}", r.refused);
        assert_eq!(r.specs, vec!["in-a", "in-b"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn large_and_missing_files_are_not_listed() {
        let dir = temp_context("large");
        let ctx = dir.join("ctx");
        let big = "x\n".repeat((REQUIREMENTS_FILE_BYTES as usize) / 2 + 1);
        write(&ctx.join("big.txt"), &big);
        write(&ctx.join("r.txt"), "ok\n-r big.txt\n-r missing.txt\n");
        let r = read_requirements(&dir, "ctx", "app", "r.txt");
        assert_eq!(r.specs, vec!["ok", "(cannot read ctx/missing.txt)"]);
        assert_eq!(r.refused.len(), 1);
        assert!(r.refused[0].starts_with("ctx/r.txt:2: `-r big.txt` is larger than 4 MiB"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
