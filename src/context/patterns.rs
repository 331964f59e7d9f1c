//! Patterns: ignore-file globs as Docker reads them, and the pattern lists
//! BuildKit's file sync filters a local directory with.

use crate::lower::{clean_path, parse_ignore};

/// Whether `path` has wildcards (copied as a pattern, not checked).
pub(super) fn has_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// The ignore file's pattern that excludes `path` (relative to the
/// context root), read as Docker reads it: patterns are relative to the
/// component's context directory (`prefix`), later ones win, `!` re-includes,
/// and a pattern that matches a parent directory excludes what is in it.
pub fn excluded_by(text: &str, prefix: &str, path: &str) -> Option<String> {
    let rel = path.strip_prefix(prefix).unwrap_or(path);
    let mut verdict = None;
    for p in parse_ignore(text) {
        let (negated, pattern) = match p.strip_prefix('!') {
            Some(rest) => (true, rest.to_owned()),
            None => (false, p.clone()),
        };
        if pattern.is_empty() || pattern == "." {
            continue;
        }
        let mut hit = glob_match(&pattern, rel);
        let mut parent = rel;
        while !hit {
            match parent.rfind('/') {
                Some(i) => {
                    parent = &parent[..i];
                    hit = glob_match(&pattern, parent);
                }
                None => break,
            }
        }
        if hit {
            verdict = if negated { None } else { Some(pattern) };
        }
    }
    verdict
}

/// Docker's ignore-pattern match (moby/patternmatcher): `*` and `?` stay
/// within a path part, `**` crosses parts, `[...]` is a class, `\` escapes.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    // Bounded work: patterns and paths are short; the memo keeps `**` linear.
    let mut memo = vec![None; (p.len() + 1) * (s.len() + 1)];
    glob_at(&p, &s, 0, 0, &mut memo)
}

fn glob_at(p: &[char], s: &[char], i: usize, j: usize, memo: &mut Vec<Option<bool>>) -> bool {
    let key = i * (s.len() + 1) + j;
    if let Some(v) = memo[key] {
        return v;
    }
    let v = if i == p.len() {
        j == s.len()
    } else if p[i] == '*' && p.get(i + 1) == Some(&'*') {
        let mut k = i;
        while k < p.len() && p[k] == '*' {
            k += 1;
        }
        if p.get(k) == Some(&'/') {
            // `**/`: zero or more whole directories.
            glob_at(p, s, k + 1, j, memo)
                || (j..s.len()).any(|m| s[m] == '/' && glob_at(p, s, k + 1, m + 1, memo))
        } else {
            (j..=s.len()).any(|m| glob_at(p, s, k, m, memo))
        }
    } else if p[i] == '*' {
        let mut m = j;
        loop {
            if glob_at(p, s, i + 1, m, memo) {
                break true;
            }
            if m == s.len() || s[m] == '/' {
                break false;
            }
            m += 1;
        }
    } else if j == s.len() {
        false
    } else if p[i] == '?' {
        s[j] != '/' && glob_at(p, s, i + 1, j + 1, memo)
    } else if p[i] == '[' {
        match class(p, i, s[j]) {
            Some((true, next)) => s[j] != '/' && glob_at(p, s, next, j + 1, memo),
            Some((false, _)) => false,
            None => s[j] == '[' && glob_at(p, s, i + 1, j + 1, memo),
        }
    } else if p[i] == '\\' && i + 1 < p.len() {
        p[i + 1] == s[j] && glob_at(p, s, i + 2, j + 1, memo)
    } else {
        p[i] == s[j] && glob_at(p, s, i + 1, j + 1, memo)
    };
    memo[key] = Some(v);
    v
}

/// Whether `c` is in the class that starts at `p[i]` (`[`), and where the
/// pattern goes on; `None` for an unclosed class (a literal `[`).
fn class(p: &[char], i: usize, c: char) -> Option<(bool, usize)> {
    let mut k = i + 1;
    let negated = matches!(p.get(k), Some('^' | '!'));
    if negated {
        k += 1;
    }
    let mut hit = false;
    let mut first = true;
    while k < p.len() {
        if p[k] == ']' && !first {
            return Some((hit != negated, k + 1));
        }
        first = false;
        let lo = if p[k] == '\\' && k + 1 < p.len() {
            k += 1;
            p[k]
        } else {
            p[k]
        };
        if p.get(k + 1) == Some(&'-') && p.get(k + 2).is_some_and(|e| *e != ']') {
            let hi = p[k + 2];
            hit |= lo <= c && c <= hi;
            k += 3;
        } else {
            hit |= lo == c;
            k += 1;
        }
    }
    None
}

/// A list of patterns read as moby/patternmatcher reads them, which is how
/// BuildKit's file sync filters a local directory (`include-patterns`,
/// `exclude-patterns`): each pattern is trimmed and cleaned, `!` makes an
/// exception, later patterns win, and a pattern that matches a parent
/// directory matches what is in it. Matching differs from [`glob_match`] where
/// patternmatcher differs from a glob: a `**` that ends the pattern matches
/// anything after it, a `**` inside a part only matches across whole
/// directories, and a pattern that starts with `**` and has no other
/// wildcard matches any path ending with the rest.
#[derive(Debug, Clone)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

/// One pattern of a [`PatternMatcher`].
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: PatternKind,
}

#[derive(Debug, Clone)]
enum PatternKind {
    Exact,
    Prefix(String),
    Suffix(String),
    Tokens(Vec<Token>),
}

/// What patternmatcher turns each piece of a pattern into (a regexp there).
#[derive(Debug, Clone)]
enum Token {
    Char(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    One,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class(bool, Vec<(char, char)>),
    /// `**` inside the pattern: nothing, or anything that ends with `/`.
    Dirs,
    /// `**` that ends the pattern: anything.
    Rest,
}

impl PatternMatcher {
    /// Reads `patterns`; a pattern that is `!` alone or has a malformed
    /// `[...]` class or a trailing `\` is an error naming it.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let mut out = Vec::new();
        let mut exclusions = false;
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut cleaned = clean_path(p);
            let exclusion = cleaned.starts_with('!');
            if exclusion {
                if cleaned.len() == 1 {
                    return Err("illegal exclusion pattern: \"!\"".to_owned());
                }
                cleaned.remove(0);
                exclusions = true;
            }
            let kind = compile(&cleaned).ok_or_else(|| format!("syntax error in pattern {p:?}"))?;
            out.push(Pattern {
                cleaned,
                exclusion,
                kind,
            });
        }
        Ok(Self {
            patterns: out,
            exclusions,
        })
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is a `!` exception.
    pub fn exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `file` (a `/`-separated relative path) matches, given which
    /// patterns its parent directory matched (`parent`, from this call on
    /// the parent; empty when unknown, then the parents are checked here).
    /// Returns the verdict and the per-pattern results for `file`'s children.
    pub fn matches_using_parent_results(&self, file: &str, parent: &[bool]) -> (bool, Vec<bool>) {
        let known = parent.len() == self.patterns.len() && !parent.is_empty();
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = known && parent[i];
            if !hit {
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(file);
                if !hit && !known {
                    if let Some(dir) = file.rfind('/').map(|i| &file[..i]) {
                        hit = dir
                            .match_indices('/')
                            .map(|(k, _)| &dir[..k])
                            .chain([dir])
                            .any(|d| pattern.matches(d));
                    }
                }
            }
            info[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, info)
    }
}

impl Pattern {
    /// The cleaned pattern, without its `!`.
    pub fn text(&self) -> &str {
        &self.cleaned
    }

    /// Whether this is a `!` exception.
    pub fn exclusion(&self) -> bool {
        self.exclusion
    }

    /// Whether `path` itself matches (parents are not considered).
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            PatternKind::Exact => path == self.cleaned,
            PatternKind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            PatternKind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            PatternKind::Tokens(tokens) => {
                let s: Vec<char> = path.chars().collect();
                let mut memo = vec![None; (tokens.len() + 1) * (s.len() + 1)];
                tokens_at(tokens, &s, 0, 0, &mut memo)
            }
        }
    }
}

/// patternmatcher's `compile`, and `filepath.Match`'s syntax check; `None`
/// for a malformed pattern.
fn compile(pattern: &str) -> Option<PatternKind> {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Tokens,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut detected = Detected::Exact;
    let mut k = 0;
    let mut first = true;
    while k < chars.len() {
        let c = chars[k];
        k += 1;
        match c {
            '*' if chars.get(k) == Some(&'*') => {
                k += 1;
                if chars.get(k) == Some(&'/') {
                    k += 1;
                }
                if k == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        tokens.push(Token::Rest);
                        detected = Detected::Tokens;
                    }
                } else {
                    tokens.push(Token::Dirs);
                    detected = Detected::Tokens;
                }
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                detected = Detected::Tokens;
            }
            '?' => {
                tokens.push(Token::One);
                detected = Detected::Tokens;
            }
            '\\' => {
                let escaped = *chars.get(k)?;
                k += 1;
                tokens.push(Token::Char(escaped));
                detected = Detected::Tokens;
            }
            '[' => {
                let (class, next) = parse_class(&chars, k)?;
                tokens.push(class);
                k = next;
                detected = Detected::Tokens;
            }
            c => tokens.push(Token::Char(c)),
        }
        first = false;
    }
    Some(match detected {
        Detected::Exact => PatternKind::Exact,
        // Both cut the (ASCII) `**` that made them.
        Detected::Prefix => PatternKind::Prefix(pattern.get(..pattern.len() - 2)?.to_owned()),
        Detected::Suffix => PatternKind::Suffix(pattern.get(2..)?.to_owned()),
        Detected::Tokens => PatternKind::Tokens(tokens),
    })
}

/// The class whose body starts at `chars[k]` (after `[`), with
/// `filepath.Match`'s syntax: `^` negates, `\` escapes, `a-z` is a range,
/// and a class is never empty. Returns the class and where the pattern goes on.
fn parse_class(chars: &[char], mut k: usize) -> Option<(Token, usize)> {
    let negated = chars.get(k) == Some(&'^');
    if negated {
        k += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(k) == Some(&']') && !ranges.is_empty() {
            return Some((Token::Class(negated, ranges), k + 1));
        }
        let (lo, next) = class_char(chars, k)?;
        k = next;
        let mut hi = lo;
        if chars.get(k) == Some(&'-') {
            let (h, next) = class_char(chars, k + 1)?;
            hi = h;
            k = next;
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], k: usize) -> Option<(char, usize)> {
    match chars.get(k)? {
        '-' | ']' => None,
        '\\' => chars.get(k + 1).map(|c| (*c, k + 2)),
        c => Some((*c, k + 1)),
    }
}

fn tokens_at(t: &[Token], s: &[char], i: usize, j: usize, memo: &mut [Option<bool>]) -> bool {
    let key = i * (s.len() + 1) + j;
    if let Some(v) = memo[key] {
        return v;
    }
    let v = match t.get(i) {
        None => j == s.len(),
        // Both come from a regexp `.*`, whose `.` stops at a newline.
        Some(Token::Rest) => !s[j..].contains(&'\n') && tokens_at(t, s, i + 1, s.len(), memo),
        Some(Token::Dirs) => {
            tokens_at(t, s, i + 1, j, memo)
                || (j..s.len())
                    .take_while(|m| s[*m] != '\n')
                    .any(|m| s[m] == '/' && tokens_at(t, s, i + 1, m + 1, memo))
        }
        Some(Token::Star) => (j..=s.len())
            .take_while(|m| *m == j || s[*m - 1] != '/')
            .any(|m| tokens_at(t, s, i + 1, m, memo)),
        Some(_) if j == s.len() => false,
        Some(Token::Char(c)) => s[j] == *c && tokens_at(t, s, i + 1, j + 1, memo),
        Some(Token::One) => s[j] != '/' && tokens_at(t, s, i + 1, j + 1, memo),
        Some(Token::Class(negated, ranges)) => {
            let inside = ranges.iter().any(|(lo, hi)| *lo <= s[j] && s[j] <= *hi);
            inside != *negated && tokens_at(t, s, i + 1, j + 1, memo)
        }
    };
    memo[key] = Some(v);
    v
}
