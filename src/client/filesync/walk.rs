//! Walking a shared directory as fsutil does: its filter (include and
//! exclude patterns, followpaths), its order, and each entry's `Stat`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use strata_proto::fsutil::Stat;

use super::SyncOptions;
use crate::context::{glob_match, Pattern, PatternMatcher};
use crate::lower::clean_path;

// Go's `os.FileMode` bits, which `Stat.mode` carries over the wire.
pub(super) const MODE_DIR: u32 = 1 << 31;
pub(super) const MODE_SYMLINK: u32 = 1 << 27;
pub(super) const MODE_DEVICE: u32 = 1 << 26;
pub(super) const MODE_NAMED_PIPE: u32 = 1 << 25;
pub(super) const MODE_SOCKET: u32 = 1 << 24;
pub(super) const MODE_SETUID: u32 = 1 << 23;
pub(super) const MODE_SETGID: u32 = 1 << 22;
pub(super) const MODE_CHAR_DEVICE: u32 = 1 << 21;
pub(super) const MODE_STICKY: u32 = 1 << 20;
pub(super) const MODE_IRREGULAR: u32 = 1 << 19;
pub(super) const MODE_TYPE: u32 = MODE_DIR
    | MODE_SYMLINK
    | MODE_NAMED_PIPE
    | MODE_SOCKET
    | MODE_DEVICE
    | MODE_CHAR_DEVICE
    | MODE_IRREGULAR;

/// fsutil's `FilterOpt` made ready for a walk.
#[derive(Debug)]
pub(super) struct Filter {
    include: Option<PatternMatcher>,
    exclude: Option<PatternMatcher>,
    /// No include pattern has a wildcard before its trailing `/*` or `/**`:
    /// a directory none of them starts with can be skipped whole.
    only_prefix_includes: bool,
    /// The same for the exclude list's `!` exceptions.
    only_prefix_exclude_exceptions: bool,
}

impl Filter {
    pub(super) fn new(root: &Path, opts: &SyncOptions) -> Result<Self, String> {
        let mut includes = opts.include_patterns.clone();
        if !opts.follow_paths.is_empty() {
            if let Some(targets) = follow_links(root, &opts.follow_paths)? {
                includes.extend(targets);
                includes = dedupe_paths(includes).unwrap_or_default();
            }
        }
        let wild =
            |p: &Pattern| without_trailing_glob(p.text()).contains(['*', '[', ']', '?', '^', '\\']);
        let mut filter = Filter {
            include: None,
            exclude: None,
            only_prefix_includes: true,
            only_prefix_exclude_exceptions: true,
        };
        if !includes.is_empty() {
            let m = PatternMatcher::new(&includes)
                .map_err(|e| format!("invalid include patterns {includes:?}: {e}"))?;
            filter.only_prefix_includes = !m.patterns().iter().any(|p| !p.exclusion() && wild(p));
            filter.include = Some(m);
        }
        if !opts.exclude_patterns.is_empty() {
            let m = PatternMatcher::new(&opts.exclude_patterns).map_err(|e| {
                format!("invalid exclude patterns {:?}: {e}", opts.exclude_patterns)
            })?;
            filter.only_prefix_exclude_exceptions =
                !m.patterns().iter().any(|p| p.exclusion() && wild(p));
            filter.exclude = Some(m);
        }
        Ok(filter)
    }
}

fn without_trailing_glob(p: &str) -> &str {
    let p = p.strip_suffix("/**").unwrap_or(p);
    p.strip_suffix("/*").unwrap_or(p)
}

/// Whether a pattern of `m` (an exception or not, as `exception`) names a
/// path inside `dir`, so that the walk has to enter it.
fn names_inside(m: &PatternMatcher, dir: &str, exception: bool) -> bool {
    let dir = format!("{dir}/");
    m.patterns()
        .iter()
        .filter(|p| p.exclusion() == exception)
        .any(|p| format!("{}/", without_trailing_glob(p.text())).starts_with(&dir))
}

/// A directory above the entries being walked.
struct Ancestor {
    rel: String,
    abs: PathBuf,
    utf8: bool,
    sent: bool,
    include: Vec<bool>,
    exclude: Vec<bool>,
}

/// Walks `root` as fsutil's filtered walk does and hands each entry to be
/// sent, with its absolute path, to `emit`.
pub(super) fn walk(
    root: &Path,
    filter: &Filter,
    stop: &AtomicBool,
    emit: &mut dyn FnMut(Stat, &Path) -> Result<(), String>,
) -> Result<(), String> {
    let mut walker = Walker {
        filter,
        stop,
        emit,
        hardlinks: HashMap::new(),
    };
    walker.dir("", root, &mut Vec::new(), false)
}

struct Walker<'a> {
    filter: &'a Filter,
    stop: &'a AtomicBool,
    emit: &'a mut dyn FnMut(Stat, &Path) -> Result<(), String>,
    /// The first path sent for each inode with more than one link.
    hardlinks: HashMap<u64, String>,
}

impl Walker<'_> {
    fn dir(
        &mut self,
        rel: &str,
        abs: &Path,
        up: &mut Vec<Ancestor>,
        skipped: bool,
    ) -> Result<(), String> {
        let entries = match read_dir_sorted(abs) {
            Ok(entries) => entries,
            Err(e) if not_exist(&e) => return Ok(()),
            Err(e) if skipped && e.kind() == io::ErrorKind::PermissionDenied => return Ok(()),
            Err(e) => return Err(format!("open {}: {e}", abs.display())),
        };
        for (name, is_dir) in entries {
            if self.stop.load(Ordering::Relaxed) {
                return Err("the transfer was stopped".to_owned());
            }
            let shown = name.to_string_lossy();
            let path = if rel.is_empty() {
                shown.to_string()
            } else {
                format!("{rel}/{shown}")
            };
            let parent = up.last();
            let mut skip = false;
            let mut include = Vec::new();
            let mut exclude = Vec::new();
            if let Some(m) = &self.filter.include {
                let (hit, info) =
                    m.matches_using_parent_results(&path, parent.map_or(&[], |a| &a.include));
                include = info;
                if !hit {
                    if is_dir && self.filter.only_prefix_includes && !names_inside(m, &path, false)
                    {
                        continue;
                    }
                    skip = true;
                }
            }
            if let Some(m) = &self.filter.exclude {
                let (hit, info) =
                    m.matches_using_parent_results(&path, parent.map_or(&[], |a| &a.exclude));
                exclude = info;
                if hit {
                    if is_dir
                        && self.filter.only_prefix_exclude_exceptions
                        && !(m.exclusions() && names_inside(m, &path, true))
                    {
                        continue;
                    }
                    skip = true;
                }
            }
            let entry_abs = abs.join(&name);
            let utf8 = name.to_str().is_some();
            if !skip {
                self.send_ancestors(up)?;
                if !self.send(&path, &entry_abs, utf8)? {
                    continue;
                }
            }
            if is_dir {
                up.push(Ancestor {
                    rel: path.clone(),
                    abs: entry_abs.clone(),
                    utf8,
                    sent: !skip,
                    include,
                    exclude,
                });
                let result = self.dir(&path, &entry_abs, up, skip);
                up.pop();
                result?;
            }
        }
        Ok(())
    }

    /// Sends the directories above an entry that were skipped until now
    /// (the entry matched where they did not).
    fn send_ancestors(&mut self, up: &mut [Ancestor]) -> Result<(), String> {
        for a in up.iter_mut().filter(|a| !a.sent) {
            a.sent = true;
            self.send(&a.rel, &a.abs, a.utf8)?;
        }
        Ok(())
    }

    /// Sends one entry; false when it vanished since it was listed.
    fn send(&mut self, rel: &str, abs: &Path, utf8: bool) -> Result<bool, String> {
        if !utf8 {
            return Err(format!(
                "{rel}: the file name is not valid UTF-8, which BuildKit's file transfer cannot \
                 carry; rename it, or exclude it in the ignore file"
            ));
        }
        let md = match fs::symlink_metadata(abs) {
            Ok(md) => md,
            Err(e) if not_exist(&e) => return Ok(false),
            Err(e) => return Err(format!("lstat {}: {e}", abs.display())),
        };
        let stat = make_stat(rel, abs, &md, &mut self.hardlinks)?;
        (self.emit)(stat, abs)?;
        Ok(true)
    }
}

/// A directory's entries as `(name, is a directory)`, names in byte order;
/// a symlink to a directory is not a directory.
fn read_dir_sorted(dir: &Path) -> io::Result<Vec<(OsString, bool)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        out.push((entry.file_name(), entry.file_type()?.is_dir()));
    }
    out.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
    Ok(out)
}

pub(super) fn not_exist(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory
}

/// fsutil's `mkstat`: the entry's metadata as the receiver wants it.
fn make_stat(
    rel: &str,
    abs: &Path,
    md: &Metadata,
    hardlinks: &mut HashMap<u64, String>,
) -> Result<Stat, String> {
    let raw = md.mode();
    let mode = go_mode(raw);
    let mut stat = Stat {
        path: rel.to_owned(),
        mode,
        uid: md.uid(),
        gid: md.gid(),
        mod_time: md
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(md.mtime_nsec()),
        ..Stat::default()
    };
    if mode & MODE_DIR == 0 {
        // fsutil tests the block and character device bits, not the type.
        if raw & 0o060000 != 0 {
            let rdev = md.rdev();
            stat.devmajor = ((rdev >> 8) & 0xfff) as i64;
            stat.devminor = ((rdev & 0xff) | ((rdev >> 12) & 0xfff00)) as i64;
        }
        match hardlinks.get(&md.ino()) {
            Some(first) if md.nlink() > 1 => stat.linkname = first.clone(),
            _ => {
                hardlinks.insert(md.ino(), rel.to_owned());
            }
        }
        stat.size = i64::try_from(md.size()).unwrap_or(i64::MAX);
        if mode & MODE_SYMLINK != 0 {
            let target =
                fs::read_link(abs).map_err(|e| format!("readlink {}: {e}", abs.display()))?;
            stat.linkname = target.into_os_string().into_string().map_err(|t| {
                format!("{rel}: the symlink's target {t:?} is not valid UTF-8; BuildKit's file transfer cannot carry it")
            })?;
        }
    }
    stat.xattrs =
        xattrs(abs).map_err(|e| format!("failed to read the xattrs of {}: {e}", abs.display()))?;
    Ok(stat)
}

/// Go's `os.FileMode` for a Unix `st_mode`, without the socket bit
/// (fsutil clears it: tar cannot carry sockets).
pub(super) fn go_mode(raw: u32) -> u32 {
    let mut mode = raw & 0o777;
    mode |= match raw & 0o170000 {
        0o060000 => MODE_DEVICE,
        0o020000 => MODE_DEVICE | MODE_CHAR_DEVICE,
        0o040000 => MODE_DIR,
        0o010000 => MODE_NAMED_PIPE,
        0o120000 => MODE_SYMLINK,
        _ => 0,
    };
    for (bit, go) in [
        (0o4000, MODE_SETUID),
        (0o2000, MODE_SETGID),
        (0o1000, MODE_STICKY),
    ] {
        if raw & bit != 0 {
            mode |= go;
        }
    }
    mode
}

/// The extended attributes of `path` (not followed), as fsutil reads them:
/// none where the filesystem has none, `com.apple.*` left out, an attribute
/// that cannot be read left out.
#[cfg(target_os = "linux")]
fn xattrs(path: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let mut out = BTreeMap::new();
    let c_path =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: `c_path` is NUL-terminated and `buf` is valid for `len` bytes.
    let names = match xattr_call(|buf, len| unsafe {
        libc::llistxattr(c_path.as_ptr(), buf.cast(), len)
    }) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(out),
        Err(e) => return Err(e),
    };
    for name in names
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty() && !n.starts_with(b"com.apple."))
    {
        let Ok(c_name) = CString::new(name) else {
            continue;
        };
        // SAFETY: both strings are NUL-terminated and `buf` is valid for `len` bytes.
        let value = xattr_call(|buf, len| unsafe {
            libc::lgetxattr(c_path.as_ptr(), c_name.as_ptr(), buf.cast(), len)
        });
        if let Ok(value) = value {
            out.insert(String::from_utf8_lossy(name).into_owned(), value);
        }
    }
    Ok(out)
}

/// Runs an xattr call that reports its size first, growing the buffer when
/// the attribute grew in between.
#[cfg(target_os = "linux")]
fn xattr_call(mut call: impl FnMut(*mut u8, usize) -> isize) -> io::Result<Vec<u8>> {
    for _ in 0..4 {
        let size = call(std::ptr::null_mut(), 0);
        let size = usize::try_from(size).map_err(|_| io::Error::last_os_error())?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size];
        match usize::try_from(call(buf.as_mut_ptr(), buf.len())) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ERANGE) {
                    return Err(e);
                }
            }
        }
    }
    Err(io::Error::from_raw_os_error(libc::ERANGE))
}

#[cfg(not(target_os = "linux"))]
fn xattrs(_: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    Ok(BTreeMap::new())
}

/// Go's `filepath.Join` of two relative parts.
fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean_path(b),
        (false, true) => clean_path(a),
        (false, false) => clean_path(&format!("{a}/{b}")),
    }
}

/// fsutil's `FollowLinks`: each path with the symlinks along it resolved
/// (the links themselves kept), as include patterns; `None` when one of
/// them is the whole directory.
pub(super) fn follow_links(root: &Path, paths: &[String]) -> Result<Option<Vec<String>>, String> {
    let mut resolved = BTreeSet::new();
    for p in paths {
        follow(root, p, &mut resolved)?;
    }
    Ok(dedupe_paths(resolved.into_iter().collect()))
}

fn follow(root: &Path, p: &str, resolved: &mut BTreeSet<String>) -> Result<(), String> {
    let mut rest = join(".", p);
    let mut current = ".".to_owned();
    loop {
        let (first, tail) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
        current = join(&current, first);
        let tail = tail.to_owned();
        let targets = read_symlink(root, &current, true)?;
        if (tail.is_empty() || targets.is_some()) && resolved.contains(&current) {
            return Ok(());
        }
        if let Some(targets) = targets {
            resolved.insert(current);
            for target in targets {
                follow(root, &join(&target, &tail), resolved)?;
            }
            return Ok(());
        }
        if tail.is_empty() {
            resolved.insert(current);
            return Ok(());
        }
        rest = tail;
    }
}

/// Where the symlink at `p` points (from the root, as `/...`), or, for a
/// last part with wildcards, where the matching symlinks point; `None` when
/// there is no symlink there.
fn read_symlink(root: &Path, p: &str, wildcards: bool) -> Result<Option<Vec<String>>, String> {
    if p == "." || p == "/" || p == ".." || p.starts_with("../") {
        return Ok(None);
    }
    let (dir, base) = p.rsplit_once('/').unwrap_or((".", p));
    if wildcards && has_wildcards(base) {
        let entries = match read_dir_sorted(&root.join(dir)) {
            Ok(entries) => entries,
            Err(e) if not_exist(&e) => return Ok(None),
            Err(e) => return Err(format!("readdir {dir}: {e}")),
        };
        let mut out = Vec::new();
        for (name, _) in entries {
            let name = name.to_string_lossy();
            if glob_match(base, &name) {
                out.extend(read_symlink(root, &join(dir, &name), false)?.unwrap_or_default());
            }
        }
        return Ok((!out.is_empty()).then_some(out));
    }
    let abs = root.join(p);
    match fs::symlink_metadata(&abs) {
        Ok(md) if md.file_type().is_symlink() => {}
        Ok(_) => return Ok(None),
        Err(e) if not_exist(&e) => return Ok(None),
        Err(e) => return Err(format!("lstat {p}: {e}")),
    }
    let link = fs::read_link(&abs).map_err(|e| format!("readlink {p}: {e}"))?;
    let link = clean_path(&link.to_string_lossy());
    if link.starts_with('/') {
        return Ok(Some(vec![link]));
    }
    Ok(Some(vec![clean_path(&format!("/{}", join(dir, &link)))]))
}

/// fsutil's `containsWildcards`: `*`, `?` or `[` not escaped by `\`.
fn has_wildcards(name: &str) -> bool {
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// fsutil's `dedupePaths`: drops a path right after one it is inside;
/// `None` when a path is `.` (everything).
pub(super) fn dedupe_paths(paths: Vec<String>) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(paths.len());
    let mut last = String::new();
    for p in paths {
        if p == "." {
            return None;
        }
        if p.starts_with(&format!("{last}/")) {
            continue;
        }
        last.clone_from(&p);
        out.push(p);
    }
    Some(out)
}
