//! Progress of long commands (bundle, push, pull, lock) on stderr.
//!
//! A [`Reporter`] counts items done (images, layers, sources) and bytes,
//! and shows them in one of three ways: on a terminal, one live line
//! redrawn in place (at most ten times a second, cleared at the end); in
//! logs, one plain line per item done; or nothing at all. stdout is never
//! written: it is the commands' data.

use std::cell::RefCell;
use std::io::{self, IsTerminal, Read, Write};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

/// The shortest time between two redraws of the live line.
pub const MIN_REDRAW: Duration = Duration::from_millis(100);

/// `--progress`: how progress shows on stderr (buildx's words).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// tty when stderr is a terminal, plain otherwise.
    #[default]
    Auto,
    /// One live line, redrawn in place.
    Tty,
    /// One line per image or step done, for logs.
    Plain,
    /// No progress (errors and the final summary still print).
    Quiet,
}

/// The `--progress` option, flattened into the arguments of a command.
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct ProgressOpt {
    /// How progress shows on stderr (auto: tty when stderr is a terminal, plain otherwise).
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
}

impl ProgressOpt {
    /// The mode this option asks for on this process's stderr.
    pub fn mode(self) -> Mode {
        self.progress.mode()
    }
}

/// How a [`Reporter`] shows progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A live line redrawn in place with `\r`.
    Tty,
    /// One line per item done.
    Plain,
    /// Nothing.
    Quiet,
}

impl ProgressArg {
    /// The mode, with `auto` decided by whether stderr is a terminal.
    pub fn mode(self) -> Mode {
        match self {
            ProgressArg::Auto => Mode::auto(),
            ProgressArg::Tty => Mode::Tty,
            ProgressArg::Plain => Mode::Plain,
            ProgressArg::Quiet => Mode::Quiet,
        }
    }
}

impl Mode {
    /// `Tty` when stderr is a terminal (and `TERM` is not `dumb`), else `Plain`.
    pub fn auto() -> Mode {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        if io::stderr().is_terminal() && !dumb {
            Mode::Tty
        } else {
            Mode::Plain
        }
    }
}

/// Reports the progress of one long operation; see the module comment.
///
/// Its methods take `&self`, so a reader being copied (see
/// [`Reporter::reader`]) and the loop around it can report together.
pub struct Reporter<W: Write = io::Stderr> {
    mode: Mode,
    label: String,
    unit: &'static str,
    clock: Box<dyn Fn() -> Duration>,
    width: usize,
    state: RefCell<State<W>>,
}

struct State<W> {
    out: W,
    total: Option<usize>,
    done: usize,
    bytes: Option<u64>,
    total_bytes: Option<u64>,
    note: String,
    current: String,
    last_draw: Option<Duration>,
    /// A live line is on the terminal and must be cleared before other output.
    shown: bool,
}

impl Reporter<io::Stderr> {
    /// A reporter on stderr: `label` starts every line (`bundle`), `unit`
    /// names the items counted (`images`).
    pub fn new(mode: Mode, label: impl Into<String>, unit: &'static str) -> Self {
        let started = Instant::now();
        let width = if mode == Mode::Tty {
            terminal_width()
        } else {
            0
        };
        Reporter::with_output(
            mode,
            label,
            unit,
            io::stderr(),
            Box::new(move || started.elapsed()),
            width,
        )
    }
}

impl<W: Write> Reporter<W> {
    /// A reporter writing to `out`, reading the time since the start from
    /// `clock`, with live lines cut to `width` columns (0: not cut).
    pub fn with_output(
        mode: Mode,
        label: impl Into<String>,
        unit: &'static str,
        out: W,
        clock: Box<dyn Fn() -> Duration>,
        width: usize,
    ) -> Self {
        Reporter {
            mode,
            label: label.into(),
            unit,
            clock,
            width,
            state: RefCell::new(State {
                out,
                total: None,
                done: 0,
                bytes: None,
                total_bytes: None,
                note: String::new(),
                current: String::new(),
                last_draw: None,
                shown: false,
            }),
        }
    }

    /// How this reporter shows progress.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// How many items there are in all (shown from the next draw on).
    pub fn set_total(&self, total: usize) {
        self.state.borrow_mut().total = Some(total);
    }

    /// What is under way now, shown at the end of the live line ("" for nothing).
    pub fn set_current(&self, what: &str) {
        {
            let mut s = self.state.borrow_mut();
            if s.current == what {
                return;
            }
            s.current = what.to_owned();
        }
        self.redraw(false);
    }

    /// A second count shown after the items (`2/4 images`), in every
    /// line from the next draw on.
    pub fn set_note(&self, note: &str) {
        self.state.borrow_mut().note = note.to_owned();
    }

    /// How many bytes there are to move in all (`120 MiB of 438 MiB`).
    pub fn set_total_bytes(&self, total: u64) {
        self.state.borrow_mut().total_bytes = Some(total);
    }

    /// Adds bytes moved.
    pub fn add_bytes(&self, n: u64) {
        {
            let mut s = self.state.borrow_mut();
            s.bytes = Some(s.bytes.unwrap_or(0) + n);
        }
        self.redraw(false);
    }

    /// Sets the bytes moved so far.
    pub fn set_bytes(&self, n: u64) {
        self.state.borrow_mut().bytes = Some(n);
        self.redraw(false);
    }

    /// One more item done: a line in plain mode, a redraw on a terminal.
    pub fn item_done(&self) {
        self.state.borrow_mut().done += 1;
        if self.mode == Mode::Plain {
            let line = self.status();
            let mut s = self.state.borrow_mut();
            let _ = writeln!(s.out, "{line}");
            let _ = s.out.flush();
        }
        self.redraw(true);
    }

    /// One more item done that is not worth a line of its own in plain
    /// mode (a layer the registry already had).
    pub fn item_done_silently(&self) {
        self.state.borrow_mut().done += 1;
        self.redraw(false);
    }

    /// Redraws the live line if it is time to (elapsed time moves on).
    pub fn tick(&self) {
        self.redraw(false);
    }

    /// Prints a line of its own (a result or a warning), in every mode,
    /// above the live line.
    pub fn println(&self, line: &str) {
        {
            let mut s = self.state.borrow_mut();
            if s.shown {
                let _ = write!(s.out, "\r\x1b[K");
                s.shown = false;
            }
            let _ = writeln!(s.out, "{line}");
            let _ = s.out.flush();
        }
        self.redraw(true);
    }

    /// Clears the live line; nothing more is drawn.
    pub fn finish(&self) {
        let mut s = self.state.borrow_mut();
        if s.shown {
            let _ = write!(s.out, "\r\x1b[K");
            let _ = s.out.flush();
            s.shown = false;
        }
        s.last_draw = Some(Duration::MAX);
    }

    /// Wraps a reader so the bytes read through it count as moved.
    pub fn reader<R: Read>(&self, inner: R) -> ProgressReader<'_, R, W> {
        ProgressReader {
            inner,
            reporter: self,
        }
    }

    /// `bundle: 13/18 blobs, 2/4 images, 251 MiB, 9.4 MiB/s`, from the
    /// counts now (no items when the unit is "").
    pub fn status(&self) -> String {
        let now = (self.clock)();
        let s = self.state.borrow();
        let mut parts = Vec::new();
        match s.total {
            _ if self.unit.is_empty() => {}
            Some(t) => parts.push(format!("{}/{t} {}", s.done, self.unit)),
            None => parts.push(format!("{} {}", s.done, self.unit)),
        }
        if !s.note.is_empty() {
            parts.push(s.note.clone());
        }
        if let Some(b) = s.bytes {
            match s.total_bytes {
                Some(t) => parts.push(format!("{} of {}", format_bytes(b), format_bytes(t))),
                None => parts.push(format_bytes(b)),
            }
            parts.extend(format_rate(b, now));
        }
        format!("{}: {}", self.label, parts.join(", "))
    }

    /// Draws the live line on a terminal: always when `force`, otherwise
    /// only when the last draw is [`MIN_REDRAW`] old.
    fn redraw(&self, force: bool) {
        if self.mode != Mode::Tty {
            return;
        }
        let now = (self.clock)();
        {
            let s = self.state.borrow();
            match s.last_draw {
                Some(Duration::MAX) => return,
                Some(last) if !force && now.saturating_sub(last) < MIN_REDRAW => return,
                _ => {}
            }
        }
        let mut line = self.status();
        line.push_str(&format!(", {}", format_duration(now)));
        let mut s = self.state.borrow_mut();
        if !s.current.is_empty() {
            line.push_str(&format!(": {}", s.current));
        }
        if self.width > 1 {
            if let Some((cut, _)) = line.char_indices().nth(self.width - 1) {
                line.truncate(cut);
            }
        }
        let _ = write!(s.out, "\r{line}\x1b[K");
        let _ = s.out.flush();
        s.shown = true;
        s.last_draw = Some(now);
    }
}

impl<W: Write> Drop for Reporter<W> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A reader whose bytes count as moved on a [`Reporter`].
pub struct ProgressReader<'r, R, W: Write> {
    inner: R,
    reporter: &'r Reporter<W>,
}

impl<R: Read, W: Write> Read for ProgressReader<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.reporter.add_bytes(n as u64);
        }
        Ok(n)
    }
}

/// The columns of the terminal on stderr (80 when it cannot be read).
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct it is given.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

/// `512 B`, `4.5 KiB`, `812 MiB`, `1.2 GiB`: one decimal below 10.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    // 9.96 would print as "10.0": round first, then choose the precision.
    if (v * 10.0).round() < 100.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

/// The average rate, `41 MiB/s`; None before any time has passed.
pub fn format_rate(bytes: u64, elapsed: Duration) -> Option<String> {
    let secs = elapsed.as_secs_f64();
    (secs >= 0.001).then(|| format!("{}/s", format_bytes((bytes as f64 / secs) as u64)))
}

/// `4.2s`, `49s`, `2m05s`, `1h02m`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 10 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A Vec the test keeps reading after the reporter is gone.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A reporter on a [`Shared`] Vec, with a clock the test moves by hand.
    fn reporter(mode: Mode, width: usize) -> (Reporter<Shared>, Rc<Cell<Duration>>) {
        let now = Rc::new(Cell::new(Duration::ZERO));
        let clock = now.clone();
        let r = Reporter::with_output(
            mode,
            "bundle",
            "images",
            Shared::default(),
            Box::new(move || clock.get()),
            width,
        );
        (r, now)
    }

    /// Everything the reporter wrote, once it is dropped.
    fn text(r: Reporter<Shared>) -> String {
        let out = r.state.borrow().out.clone();
        drop(r);
        let bytes = out.0.borrow().clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn bytes_rates_and_durations_read_as_people_write_them() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1.0 KiB");
        assert_eq!(format_bytes(4608), "4.5 KiB");
        assert_eq!(format_bytes(812 << 20), "812 MiB");
        assert_eq!(format_bytes((10 << 20) - 1), "10 MiB");
        assert_eq!(format_bytes((12 << 30) / 10), "1.2 GiB");
        assert_eq!(format_bytes(3 << 40), "3.0 TiB");
        assert_eq!(format_bytes(u64::MAX), "16384 PiB");
        assert_eq!(
            format_rate(82 << 20, Duration::from_secs(2)).as_deref(),
            Some("41 MiB/s")
        );
        assert_eq!(format_rate(5, Duration::ZERO), None);
        assert_eq!(format_duration(Duration::from_millis(4200)), "4.2s");
        assert_eq!(format_duration(Duration::from_secs(49)), "49s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
        assert_eq!(format_duration(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn plain_mode_writes_one_line_per_item_done_and_nothing_else() {
        let (r, now) = reporter(Mode::Plain, 0);
        r.set_total(7);
        r.set_current("waiting for docker save");
        for _ in 0..50 {
            now.set(now.get() + Duration::from_millis(10));
            r.add_bytes(1 << 20);
            r.tick();
        }
        r.item_done();
        r.item_done_silently();
        now.set(Duration::from_secs(20));
        r.set_bytes(812 << 20);
        r.set_note("1/2 stacks");
        r.item_done();
        r.println("strata: a warning");
        assert_eq!(
            text(r),
            "bundle: 1/7 images, 50 MiB, 100 MiB/s\n\
             bundle: 3/7 images, 1/2 stacks, 812 MiB, 41 MiB/s\n\
             strata: a warning\n"
        );
    }

    #[test]
    fn plain_mode_without_bytes_or_total_counts_items_only() {
        let now = Rc::new(Cell::new(Duration::from_secs(1)));
        let clock = now.clone();
        let r = Reporter::with_output(
            Mode::Plain,
            "push x:1",
            "layers",
            Shared::default(),
            Box::new(move || clock.get()),
            0,
        );
        r.item_done();
        assert_eq!(text(r), "push x:1: 1 layers\n");
    }

    #[test]
    fn quiet_mode_writes_only_what_is_printed_on_purpose() {
        let (r, now) = reporter(Mode::Quiet, 80);
        r.set_total(2);
        r.add_bytes(10);
        now.set(Duration::from_secs(1));
        r.item_done();
        r.println("strata: wrote x");
        r.item_done();
        assert_eq!(text(r), "strata: wrote x\n");
    }

    #[test]
    fn the_live_line_is_redrawn_at_most_every_100ms_by_the_clock() {
        let (r, now) = reporter(Mode::Tty, 0);
        r.set_total(3);
        r.tick(); // first draw, at 0 ms
        for ms in 1..=250u64 {
            now.set(Duration::from_millis(ms));
            r.add_bytes(1024);
        }
        let out = text(r);
        let draws = out.matches('\r').count() - 1; // the last `\r` clears
        assert_eq!(draws, 3, "draws at 0, 100 and 200 ms: {out:?}");
        assert!(
            out.starts_with("\rbundle: 0/3 images, 0.0s\x1b[K"),
            "{out:?}"
        );
        assert!(
            out.contains("\rbundle: 0/3 images, 200 KiB, 1000 KiB/s, 0.2s\x1b[K"),
            "{out:?}"
        );
        assert!(out.ends_with("\r\x1b[K"), "cleared at the end: {out:?}");
    }

    #[test]
    fn items_done_and_lines_redraw_at_once_and_lines_go_above_the_live_line() {
        let (r, now) = reporter(Mode::Tty, 0);
        r.set_total(2);
        r.tick();
        r.item_done(); // same instant: drawn anyway
        r.println("node:1: sha256:abc");
        now.set(Duration::from_millis(5));
        r.set_current("resolving base");
        r.finish();
        r.item_done(); // after finish: nothing more is drawn
        let out = text(r);
        assert_eq!(
            out,
            "\rbundle: 0/2 images, 0.0s\x1b[K\
             \rbundle: 1/2 images, 0.0s\x1b[K\
             \r\x1b[Knode:1: sha256:abc\n\
             \rbundle: 1/2 images, 0.0s\x1b[K\
             \r\x1b[K"
        );
    }

    #[test]
    fn the_live_line_is_cut_to_the_terminal_width() {
        let (r, _) = reporter(Mode::Tty, 20);
        r.set_current("fedbiomed/researcher:6.3.3");
        let out = text(r);
        assert_eq!(out, "\rbundle: 0 images, 0\x1b[K\r\x1b[K");
    }

    #[test]
    fn bytes_out_of_a_known_total_without_items() {
        let now = Rc::new(Cell::new(Duration::from_secs(2)));
        let clock = now.clone();
        let r = Reporter::with_output(
            Mode::Tty,
            "verify",
            "",
            Shared::default(),
            Box::new(move || clock.get()),
            0,
        );
        r.set_total_bytes(438 << 20);
        r.set_bytes(120 << 20);
        assert_eq!(r.status(), "verify: 120 MiB of 438 MiB, 60 MiB/s");
        assert_eq!(
            text(r),
            "\rverify: 120 MiB of 438 MiB, 60 MiB/s, 2.0s\x1b[K\r\x1b[K"
        );
    }

    #[test]
    fn a_reader_counts_its_bytes() {
        let (r, _) = reporter(Mode::Plain, 0);
        let mut data = Vec::new();
        r.reader(&b"0123456789"[..])
            .read_to_end(&mut data)
            .expect("read");
        r.item_done();
        assert_eq!(data.len(), 10);
        assert_eq!(text(r), "bundle: 1 images, 10 B\n");
    }
}
