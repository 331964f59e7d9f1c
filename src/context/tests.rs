//! Unit tests of the context check and of its patterns.

use super::*;

#[test]
fn ignore_patterns_match_as_docker_matches_them() {
    assert!(glob_match("*.pyc", "a.pyc"));
    assert!(!glob_match("*.pyc", "dir/a.pyc"));
    assert!(glob_match("**/*.pyc", "dir/sub/a.pyc"));
    assert!(glob_match("**/*.pyc", "a.pyc"));
    assert!(glob_match("data/**", "data/x/y"));
    assert!(glob_match("d?ta", "data"));
    assert!(glob_match("[a-c]x", "bx"));
    assert!(!glob_match("[!a-c]x", "bx"));
    assert_eq!(
        excluded_by("data\n", "", "data/set.csv").as_deref(),
        Some("data")
    );
    assert_eq!(
        excluded_by("data\n!data/set.csv\n", "", "data/set.csv"),
        None
    );
    assert_eq!(
        excluded_by("*.txt\n", "app/", "app/req.txt").as_deref(),
        Some("*.txt")
    );
    assert_eq!(excluded_by("*.txt\n", "app/", "app/sub/req.txt"), None);
}
/// moby/patternmatcher's own test tables (patternmatcher_test.go).
#[test]
fn pattern_matcher_matches_as_moby_patternmatcher_does() {
    let single: &[(&str, &str, bool)] = &[
        ("**", "file", true),
        ("**", "file/", true),
        ("**/", "file", true),
        ("**/", "file/", true),
        ("**", "/", true),
        ("**/", "/", true),
        ("**", "dir/file", true),
        ("**/", "dir/file", true),
        ("**", "dir/file/", true),
        ("**/", "dir/file/", true),
        ("**/**", "dir/file", true),
        ("**/**", "dir/file/", true),
        ("dir/**", "dir/file", true),
        ("dir/**", "dir/file/", true),
        ("dir/**", "dir/dir2/file", true),
        ("dir/**", "dir/dir2/file/", true),
        ("**/dir", "dir", true),
        ("**/dir", "dir/file", true),
        ("**/dir2/*", "dir/dir2/file", true),
        ("**/dir2/*", "dir/dir2/file/", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**/dir2/**", "dir/dir2/dir3/file/", true),
        ("**file", "file", true),
        ("**file", "dir/file", true),
        ("**/file", "dir/file", true),
        ("**file", "dir/dir/file", true),
        ("**/file", "dir/dir/file", true),
        ("**/file*", "dir/dir/file", true),
        ("**/file*", "dir/dir/file.txt", true),
        ("**/file*txt", "dir/dir/file.txt", true),
        ("**/file*.txt", "dir/dir/file.txt", true),
        ("**/file*.txt*", "dir/dir/file.txt", true),
        ("**/**/*.txt", "dir/dir/file.txt", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("**/*.txt", "file.txt", true),
        ("**/**/*.txt", "file.txt", true),
        ("a**/*.txt", "a/file.txt", true),
        ("a**/*.txt", "a/dir/file.txt", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("a/*.txt", "a/dir/file.txt", false),
        ("a/*.txt", "a/file.txt", true),
        ("a/*.txt**", "a/file.txt", true),
        ("a[b-d]e", "ae", false),
        ("a[b-d]e", "ace", true),
        ("a[b-d]e", "aae", false),
        ("a[^b-d]e", "aze", true),
        (".*", ".foo", true),
        (".*", "foo", false),
        ("abc.def", "abcdef", false),
        ("abc.def", "abc.def", true),
        ("abc.def", "abcZdef", false),
        ("abc?def", "abcZdef", true),
        ("abc?def", "abcdef", false),
        ("a\\\\", "a\\", true),
        ("**/foo/bar", "foo/bar", true),
        ("**/foo/bar", "dir/foo/bar", true),
        ("**/foo/bar", "dir/dir2/foo/bar", true),
        ("abc/**", "abc", false),
        ("abc/**", "abc/def", true),
        ("abc/**", "abc/def/ghi", true),
        ("**/.foo", ".foo", true),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a(b)c/def", "a(b)c/xyz", false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        ("a\\*b", "a*b", true),
        ("a\\*b", "ab", false),
        ("a*", "ab/c", true),
        ("a*/b", "a/c/b", false),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
        ("a*b?c*x", "abxbbxdbxebxczzx", true),
        ("a*b?c*x", "abxbbxdbxebxczzy", false),
        ("ab[^c]", "abc", false),
        ("ab[^e-g]", "abc", true),
        ("a?b", "a☺b", true),
        ("a???b", "a☺b", false),
        ("[a-ζ]*", "α", true),
        ("*[a-ζ]", "A", false),
        ("a?b", "a/b", false),
        ("[\\]a]", "]", true),
        ("[x\\-]", "-", true),
        ("[\\-x]", "a", false),
        ("*x", "xxx", true),
    ];
    let multi: &[(&[&str], &str, bool)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            true,
        ),
        (
            &["**", "!dist/*.whl"],
            "dist/proxy.py-2.4.0rc3-py3-none-any.whl",
            false,
        ),
        (&["docs", "!docs/README.md"], "docs/README.md", false),
        (&["docs/", "!docs/README.md"], "docs/README.md", false),
        (&["!fileutils.go", "*.go"], "fileutils.go", true),
    ];
    let cases = single
        .iter()
        .map(|(p, text, pass)| (vec![*p], *text, *pass))
        .chain(
            multi
                .iter()
                .map(|(ps, text, pass)| (ps.to_vec(), *text, *pass)),
        );
    for (patterns, text, pass) in cases {
        let m = PatternMatcher::new(&patterns).expect("valid pattern");
        // Without the parents' results, then with them, as a walk has them.
        assert_eq!(
            m.matches_using_parent_results(text, &[]).0,
            pass,
            "{patterns:?} {text:?}"
        );
        let mut info = Vec::new();
        if let Some((dir, _)) = text.rsplit_once('/') {
            let parts: Vec<&str> = dir.split('/').collect();
            for i in 1..=parts.len() {
                info = m
                    .matches_using_parent_results(&parts[..i].join("/"), &info)
                    .1;
            }
        }
        assert_eq!(
            m.matches_using_parent_results(text, &info).0,
            pass,
            "{patterns:?} {text:?} walked"
        );
    }
    for bad in [
        "!", "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
    ] {
        assert!(PatternMatcher::new(&[bad]).is_err(), "{bad:?}");
    }
    let m = PatternMatcher::new(&["  !docs/README.md  ", "", "./a/../b/"]).expect("valid");
    let texts: Vec<(&str, bool)> = m
        .patterns()
        .iter()
        .map(|p| (p.text(), p.exclusion()))
        .collect();
    assert_eq!(texts, [("docs/README.md", true), ("b", false)]);
    assert!(m.exclusions());
}
