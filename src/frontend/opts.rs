//! Frontend options: the `BUILDKIT_FRONTEND_OPT_<n>=<key>=<value>` variables
//! BuildKit sets, parsed into [`FrontendOpts`].
//!
//! Options are flat strings chosen by whoever started the build (buildx,
//! buildctl, bake), so parsing never panics and every rejected value says
//! which option it came from.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;

use serde::Deserialize;
use strata_llb::ResolveMode;

use crate::graph::ImageRef;
use crate::lower::Platform;
use crate::spec::resolve::is_reserved_arg;
use crate::spec::Overrides;

/// The stack file read when `filename` is not given.
pub const DEFAULT_FILENAME: &str = "strata.toml";
/// The session directory holding the stack file when `dockerfilekey` is not given.
pub const DEFAULT_DOCKERFILE_KEY: &str = "dockerfile";
/// The prefix of BuildKit's option variables.
const OPT_PREFIX: &str = "BUILDKIT_FRONTEND_OPT_";

/// Build args that Strata itself reads (everything else named `STRATA_*` is a typo).
const STRATA_MIRRORS: &str = "STRATA_MIRRORS";
const STRATA_PROFILE: &str = "STRATA_PROFILE";
/// The build arg that skips the target's `test` entries.
pub const STRATA_SKIP_TESTS: &str = "STRATA_SKIP_TESTS";
/// The build arg that keeps the stack's lint warnings out of the build's
/// output (`none`): `strata build` has printed them once already.
pub const STRATA_WARNINGS: &str = "STRATA_WARNINGS";
/// The build arg that names the git branch (`[metadata]` `branch`): buildx
/// sends `vcs:revision` and `vcs:source` from a checkout, but no branch.
pub const STRATA_GIT_BRANCH: &str = "STRATA_GIT_BRANCH";

/// What `no-cache` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NoCache {
    /// Use the cache (option absent).
    #[default]
    Off,
    /// Ignore the cache for every op (`no-cache=`).
    All,
    /// Ignore the cache for these components only.
    Components(Vec<String>),
}

impl NoCache {
    /// Whether building `target` should ignore the cache.
    pub fn applies_to(&self, target: &str) -> bool {
        match self {
            NoCache::Off => false,
            NoCache::All => true,
            NoCache::Components(names) => names.iter().any(|n| n == target),
        }
    }
}

/// One cache source (`cache-imports` JSON entry or a legacy `cache-from` ref).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CacheImport {
    /// `registry`, `local`, `gha`, ...
    #[serde(rename = "Type")]
    pub kind: String,
    /// Exporter-specific attributes (`ref`, `src`, ...).
    #[serde(rename = "Attrs", default)]
    pub attrs: BTreeMap<String, String>,
}

/// Where a named context (`context:<name>=<value>`) points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// `docker-image://<ref>`: replaces an external image.
    Image(String),
    /// `git://`, `https://`, `http://` or `git@` URL.
    Remote(String),
    /// `oci-layout://<store>`.
    OciLayout(String),
    /// `local:<name>`: another local directory of the session.
    Local(String),
    /// `input:<name>`: a frontend input.
    Input(String),
}

impl NamedContext {
    fn parse(value: &str) -> Option<NamedContext> {
        if let Some(r) = value.strip_prefix("docker-image://") {
            return Some(NamedContext::Image(r.to_owned()));
        }
        if let Some(s) = value.strip_prefix("oci-layout://") {
            return Some(NamedContext::OciLayout(s.to_owned()));
        }
        if let Some(s) = value.strip_prefix("local:") {
            return Some(NamedContext::Local(s.to_owned()));
        }
        if let Some(s) = value.strip_prefix("input:") {
            return Some(NamedContext::Input(s.to_owned()));
        }
        if is_remote_url(value) {
            return Some(NamedContext::Remote(value.to_owned()));
        }
        None
    }

    /// How the user wrote the kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            NamedContext::Image(_) => "docker-image://",
            NamedContext::Remote(_) => "a git or HTTP URL",
            NamedContext::OciLayout(_) => "oci-layout://",
            NamedContext::Local(_) => "local:",
            NamedContext::Input(_) => "input:",
        }
    }
}

/// One named context with the platform it is limited to, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextOverride {
    /// The `::<platform>` suffix of the option key.
    pub platform: Option<String>,
    /// What it points at.
    pub value: NamedContext,
}

fn is_remote_url(v: &str) -> bool {
    ["git://", "https://", "http://", "ssh://", "git@"]
        .iter()
        .any(|p| v.starts_with(p))
}

/// Every frontend option Strata understands, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendOpts {
    /// The stack file inside the `dockerfile` directory (`filename`).
    pub filename: String,
    /// The session directory holding it (`dockerfilekey`).
    pub dockerfile_key: String,
    /// The component to build (`target`).
    pub target: Option<String>,
    /// Stack args from `build-arg:*`, sorted by name.
    pub args: Vec<(String, String)>,
    /// `build-arg:STRATA_PROFILE`.
    pub profile: Option<String>,
    /// `build-arg:STRATA_MIRRORS` (`from=to,...`).
    pub mirrors: Vec<(String, String)>,
    /// `build-arg:SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<i64>,
    /// `build-arg:STRATA_SKIP_TESTS`: return the image without running its tests.
    pub skip_tests: bool,
    /// `build-arg:STRATA_WARNINGS=none`: send no lint warnings to BuildKit.
    pub quiet_warnings: bool,
    /// `build-arg:STRATA_GIT_BRANCH`.
    pub git_branch: Option<String>,
    /// `label:*`.
    pub labels: BTreeMap<String, String>,
    /// `platform`, empty when not given.
    pub platforms: Vec<Platform>,
    /// `no-cache`.
    pub no_cache: NoCache,
    /// `cache-imports` (JSON) and legacy `cache-from`.
    pub cache_imports: Vec<CacheImport>,
    /// `image-resolve-mode`.
    pub image_resolve_mode: Option<ResolveMode>,
    /// `requestid`: a subrequest instead of a build.
    pub request_id: Option<String>,
    /// `vcs:revision`.
    pub vcs_revision: Option<String>,
    /// `vcs:source`.
    pub vcs_source: Option<String>,
    /// `context:<name>[::<platform>]`, by name.
    pub contexts: BTreeMap<String, Vec<ContextOverride>>,
    /// A remote build context (`context`, or the key named by `contextkey`).
    pub remote_context: Option<String>,
    /// `contextsubdir`.
    pub context_subdir: Option<String>,
    /// `local-sessionid:<name>`: per-directory session overrides.
    pub local_sessions: BTreeMap<String, String>,
}

impl Default for FrontendOpts {
    fn default() -> Self {
        FrontendOpts {
            filename: DEFAULT_FILENAME.to_owned(),
            dockerfile_key: DEFAULT_DOCKERFILE_KEY.to_owned(),
            target: None,
            args: Vec::new(),
            profile: None,
            mirrors: Vec::new(),
            source_date_epoch: None,
            skip_tests: false,
            quiet_warnings: false,
            git_branch: None,
            labels: BTreeMap::new(),
            platforms: Vec::new(),
            no_cache: NoCache::Off,
            cache_imports: Vec::new(),
            image_resolve_mode: None,
            request_id: None,
            vcs_revision: None,
            vcs_source: None,
            contexts: BTreeMap::new(),
            remote_context: None,
            context_subdir: None,
            local_sessions: BTreeMap::new(),
        }
    }
}

/// Options that cannot be honoured, each message naming its option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptsError {
    /// One line per rejected option.
    pub problems: Vec<String>,
}

impl fmt::Display for OptsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("\n"))
    }
}

impl std::error::Error for OptsError {}

/// The raw option map from `BUILDKIT_FRONTEND_OPT_<n>` variables.
///
/// Takes `OsString`s because `std::env::vars()` panics on non-UTF-8
/// values; those are decoded lossily here instead.
pub fn raw_from_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> BTreeMap<String, String> {
    let mut numbered: Vec<(u64, String, String)> = Vec::new();
    for (name, value) in vars {
        let name = name.to_string_lossy();
        let Some(n) = name.strip_prefix(OPT_PREFIX) else {
            continue;
        };
        let value = value.to_string_lossy();
        let (key, val) = value.split_once('=').unwrap_or((&value, ""));
        numbered.push((
            n.parse().unwrap_or(u64::MAX),
            key.to_owned(),
            val.to_owned(),
        ));
    }
    // BuildKit numbers them in Go map order; sort so a duplicate key resolves the same way every time.
    numbered.sort();
    numbered.into_iter().map(|(_, k, v)| (k, v)).collect()
}

impl FrontendOpts {
    /// Parses the raw option map; unknown keys are ignored.
    pub fn parse(raw: &BTreeMap<String, String>) -> Result<FrontendOpts, OptsError> {
        let mut o = FrontendOpts::default();
        let mut problems = Vec::new();
        o.names(raw);
        o.platforms(raw, &mut problems);
        if let Some(v) = raw.get("no-cache") {
            let names: Vec<String> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            o.no_cache = if names.is_empty() {
                NoCache::All
            } else {
                NoCache::Components(names)
            };
        }
        o.caches(raw, &mut problems);
        if let Some(v) = raw.get("image-resolve-mode").filter(|v| !v.is_empty()) {
            o.image_resolve_mode = ResolveMode::parse(v);
            if o.image_resolve_mode.is_none() {
                problems.push(format!(
                    "image-resolve-mode `{v}`: use default, pull or local"
                ));
            }
        }
        for (key, value) in raw {
            o.prefixed(key, value, &mut problems);
        }
        o.check_image_contexts(&mut problems);
        if problems.is_empty() {
            Ok(o)
        } else {
            Err(OptsError { problems })
        }
    }

    /// The options that name things: the stack file, the target, the
    /// request, version control, the context.
    fn names(&mut self, raw: &BTreeMap<String, String>) {
        let non_empty = |v: &String| (!v.is_empty()).then(|| v.clone());
        if let Some(f) = raw.get("filename").and_then(non_empty) {
            self.filename = f;
        }
        if let Some(k) = raw.get("dockerfilekey").and_then(non_empty) {
            self.dockerfile_key = k;
        }
        self.target = raw.get("target").and_then(non_empty);
        self.request_id = raw.get("requestid").and_then(non_empty);
        self.vcs_revision = raw.get("vcs:revision").and_then(non_empty);
        self.vcs_source = raw.get("vcs:source").and_then(non_empty);
        self.context_subdir = raw.get("contextsubdir").and_then(non_empty);
        let context_key = raw
            .get("contextkey")
            .and_then(non_empty)
            .unwrap_or_else(|| "context".to_owned());
        self.remote_context = raw.get(&context_key).and_then(non_empty);
    }

    /// `platform`: a comma-separated list.
    fn platforms(&mut self, raw: &BTreeMap<String, String>, problems: &mut Vec<String>) {
        let Some(p) = raw.get("platform").filter(|p| !p.trim().is_empty()) else {
            return;
        };
        for one in p.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match parse_platform(one) {
                Ok(platform) => self.platforms.push(platform),
                Err(e) => problems.push(format!("platform `{one}`: {e}")),
            }
        }
    }

    /// `cache-imports` (JSON, as buildx sends it), then `cache-from` refs.
    fn caches(&mut self, raw: &BTreeMap<String, String>, problems: &mut Vec<String>) {
        if let Some(v) = raw.get("cache-imports").filter(|v| !v.trim().is_empty()) {
            match serde_json::from_str::<Vec<CacheImport>>(v) {
                Ok(list) => self.cache_imports.extend(list),
                Err(e) => problems.push(format!(
                    "cache-imports: not a JSON list of {{\"Type\", \"Attrs\"}} entries: {e}"
                )),
            }
        }
        if let Some(v) = raw.get("cache-from") {
            for r in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                self.cache_imports.push(CacheImport {
                    kind: "registry".to_owned(),
                    attrs: BTreeMap::from([("ref".to_owned(), r.to_owned())]),
                });
            }
        }
    }

    /// An option whose key has a prefix: `build-arg:`, `label:`,
    /// `context:` (`name` or `name::platform`), `local-sessionid:`.
    fn prefixed(&mut self, key: &str, value: &String, problems: &mut Vec<String>) {
        if let Some(name) = key.strip_prefix("build-arg:") {
            self.build_arg(name, value, problems);
        } else if let Some(name) = key.strip_prefix("label:") {
            self.labels.insert(name.to_owned(), value.clone());
        } else if let Some(name) = key.strip_prefix("context:") {
            let (name, platform) = match name.split_once("::") {
                Some((n, p)) => (n, Some(p.to_owned())),
                None => (name, None),
            };
            match NamedContext::parse(value) {
                Some(value) => self
                    .contexts
                    .entry(name.to_owned())
                    .or_default()
                    .push(ContextOverride { platform, value }),
                None => problems.push(format!(
                    "context:{name}=`{value}`: use docker-image://<ref> (other kinds: git/https URL, oci-layout://, local:, input:)"
                )),
            }
        } else if let Some(name) = key.strip_prefix("local-sessionid:") {
            self.local_sessions.insert(name.to_owned(), value.clone());
        }
    }

    /// A `docker-image://` context replaces an external image, so its
    /// name must be an image reference.
    fn check_image_contexts(&self, problems: &mut Vec<String>) {
        for (name, overrides) in &self.contexts {
            let replaces_image = overrides
                .iter()
                .any(|c| matches!(c.value, NamedContext::Image(_)));
            if replaces_image && ImageRef::parse(name).is_err() {
                problems.push(format!(
                    "context:{name}: a docker-image:// context replaces an external image, and `{name}` is not an image reference"
                ));
            }
        }
    }

    fn build_arg(&mut self, name: &str, value: &str, problems: &mut Vec<String>) {
        match name {
            STRATA_MIRRORS => match crate::spec::resolve::parse_mirror_list(value) {
                Ok(pairs) => self.mirrors.extend(pairs),
                Err(bad) => problems.extend(
                    bad.into_iter()
                        .map(|p| format!("build-arg STRATA_MIRRORS: {p}")),
                ),
            },
            STRATA_PROFILE => {
                self.profile = Some(value.trim().to_owned()).filter(|p| !p.is_empty());
            }
            STRATA_SKIP_TESTS => match value.trim() {
                "" => {}
                v => match crate::spec::resolve::parse_bool(v) {
                    Ok(skip) => self.skip_tests = skip,
                    Err(why) => problems.push(format!("build-arg {STRATA_SKIP_TESTS}: {why}")),
                },
            },
            STRATA_WARNINGS => match value.trim() {
                "" | "all" => self.quiet_warnings = false,
                "none" => self.quiet_warnings = true,
                v => problems.push(format!(
                    "build-arg {STRATA_WARNINGS}=`{}`: use `all` (the default) or `none`",
                    crate::spec::values::shown(v)
                )),
            },
            "SOURCE_DATE_EPOCH" => {
                if value.trim().is_empty() {
                    return;
                }
                match value.trim().parse::<i64>() {
                    Ok(t) if t >= 0 => self.source_date_epoch = Some(t),
                    _ => problems.push(format!(
                        "build-arg SOURCE_DATE_EPOCH=`{value}`: expected seconds since 1970 (a non-negative integer)"
                    )),
                }
            }
            STRATA_GIT_BRANCH => {
                self.git_branch = Some(value.trim().to_owned()).filter(|b| !b.is_empty());
            }
            n if n.starts_with("STRATA_") => problems.push(format!(
                "build-arg {n}: Strata reads only {STRATA_MIRRORS}, {STRATA_PROFILE}, {STRATA_SKIP_TESTS}, {STRATA_WARNINGS} and {STRATA_GIT_BRANCH}"
            )),
            // BUILDKIT_* and proxy variables belong to BuildKit, never to the stack.
            n if is_reserved_arg(n) => {}
            n => self.args.push((n.to_owned(), value.to_owned())),
        }
    }

    /// The stack-file inputs these options carry, for a build on `platform`.
    ///
    /// A `docker-image://` named context replaces an external image, which is
    /// what a mirror does; it comes after `STRATA_MIRRORS`, so it wins.
    pub fn overrides(&self, platform: &Platform) -> Overrides {
        let mut mirrors = self.mirrors.clone();
        let here = platform.to_string();
        for (name, overrides) in &self.contexts {
            let applicable = overrides
                .iter()
                .filter(|c| c.platform.as_ref().is_none_or(|p| p == &here));
            // A platform-specific context beats a general one.
            let best = applicable.max_by_key(|c| c.platform.is_some());
            if let Some(ContextOverride {
                value: NamedContext::Image(r),
                ..
            }) = best
            {
                mirrors.retain(|(from, _)| from != name);
                mirrors.push((name.clone(), r.clone()));
            }
        }
        Overrides {
            args: self.args.clone(),
            profile: self.profile.clone(),
            mirrors,
            platform: None,
        }
    }
}

/// `os/arch[/variant]`, as in `linux/amd64` or `linux/arm64/v8`,
/// normalised as BuildKit does (see `strata_llb::Platform`'s `FromStr`).
pub fn parse_platform(s: &str) -> Result<Platform, String> {
    s.parse()
        .map_err(|_| "expected os/arch or os/arch/variant, such as linux/amd64".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> FrontendOpts {
        FrontendOpts::parse(&raw(pairs)).expect("valid options")
    }

    #[test]
    fn env_vars_split_on_the_first_equals_sign() {
        let vars = [
            ("PATH", "/bin"),
            ("BUILDKIT_FRONTEND_OPT_1", "build-arg:X=a=b"),
            ("BUILDKIT_FRONTEND_OPT_0", "filename=stack.toml"),
            ("BUILDKIT_FRONTEND_OPT_2", "no-cache"),
            ("BUILDKIT_SESSION_ID", "abc"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let m = raw_from_env(vars);
        assert_eq!(m.get("build-arg:X").map(String::as_str), Some("a=b"));
        assert_eq!(m.get("filename").map(String::as_str), Some("stack.toml"));
        assert_eq!(m.get("no-cache").map(String::as_str), Some(""));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn warnings_are_all_or_none() {
        assert!(!parse(&[]).quiet_warnings);
        assert!(!parse(&[("build-arg:STRATA_WARNINGS", "all")]).quiet_warnings);
        assert!(parse(&[("build-arg:STRATA_WARNINGS", "none")]).quiet_warnings);
        let e = FrontendOpts::parse(&raw(&[("build-arg:STRATA_WARNINGS", "some")]))
            .expect_err("not all or none");
        assert!(
            e.to_string().contains("use `all` (the default) or `none`"),
            "{e}"
        );
    }

    #[test]
    fn non_utf8_env_values_do_not_panic() {
        use std::os::unix::ffi::OsStringExt;
        let vars = [(
            OsString::from("BUILDKIT_FRONTEND_OPT_0"),
            OsString::from_vec(b"label:x=\xff\xfe".to_vec()),
        )];
        let m = raw_from_env(vars);
        let o = FrontendOpts::parse(&m).expect("valid");
        assert!(o.labels["x"].contains('\u{fffd}'));
    }

    #[test]
    fn defaults_when_nothing_is_given() {
        let o = parse(&[]);
        assert_eq!(o.filename, "strata.toml");
        assert_eq!(o.dockerfile_key, "dockerfile");
        assert_eq!(o.target, None);
        assert_eq!(o.no_cache, NoCache::Off);
        assert!(o.platforms.is_empty());
        let o = parse(&[("filename", ""), ("target", "")]);
        assert_eq!(o.filename, "strata.toml");
        assert_eq!(o.target, None);
    }

    #[test]
    fn what_buildx_sends() {
        let o = parse(&[
            ("cmdline", "strata/frontend:latest"),
            ("source", "strata/frontend:latest"),
            ("filename", "stack.toml"),
            ("image-resolve-mode", "local"),
            ("target", "node"),
            ("build-arg:gpu", "true"),
            ("build-arg:BUILDKIT_SYNTAX", "strata/frontend:latest"),
            ("build-arg:http_proxy", "http://proxy:3128"),
            ("label:org.example", "yes"),
            ("vcs:revision", "abc123"),
            ("vcs:source", "https://example.org/repo.git"),
        ]);
        assert_eq!(o.filename, "stack.toml");
        assert_eq!(o.image_resolve_mode, Some(ResolveMode::PreferLocal));
        assert_eq!(o.target.as_deref(), Some("node"));
        assert_eq!(o.args, vec![("gpu".to_owned(), "true".to_owned())]);
        assert_eq!(o.labels["org.example"], "yes");
        assert_eq!(o.vcs_revision.as_deref(), Some("abc123"));
        assert_eq!(
            o.vcs_source.as_deref(),
            Some("https://example.org/repo.git")
        );
    }

    #[test]
    fn strata_build_args_become_overrides() {
        let o = parse(&[
            (
                "build-arg:STRATA_MIRRORS",
                "debian:bookworm=strata.local/debian:bookworm, busybox=strata.local/busybox,",
            ),
            ("build-arg:STRATA_PROFILE", "gpu"),
            ("build-arg:SOURCE_DATE_EPOCH", "1700000000"),
        ]);
        let ov = o.overrides(&Platform::default());
        assert_eq!(
            ov.mirrors,
            vec![
                (
                    "debian:bookworm".to_owned(),
                    "strata.local/debian:bookworm".to_owned()
                ),
                ("busybox".to_owned(), "strata.local/busybox".to_owned()),
            ]
        );
        assert_eq!(ov.profile.as_deref(), Some("gpu"));
        assert!(ov.args.is_empty());
        assert_eq!(o.source_date_epoch, Some(1_700_000_000));
    }

    #[test]
    fn bad_values_name_their_option() {
        let e = FrontendOpts::parse(&raw(&[
            ("build-arg:STRATA_MIRRORS", "nonsense"),
            ("build-arg:STRATA_PROFIL", "x"),
            ("build-arg:SOURCE_DATE_EPOCH", "yesterday"),
            ("image-resolve-mode", "always"),
            ("platform", "linux"),
            ("cache-imports", "{not json"),
            ("context:alpine", "ftp://x"),
            ("context:Not A Ref", "docker-image://x"),
        ]))
        .expect_err("invalid");
        let text = e.to_string();
        for needle in [
            "STRATA_MIRRORS",
            "STRATA_PROFIL:",
            "SOURCE_DATE_EPOCH",
            "image-resolve-mode",
            "platform `linux`",
            "cache-imports",
            "context:alpine",
            "context:Not A Ref",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert_eq!(e.problems.len(), 8);
    }

    #[test]
    fn no_cache_all_or_some() {
        assert_eq!(parse(&[("no-cache", "")]).no_cache, NoCache::All);
        let o = parse(&[("no-cache", "base, node")]);
        assert!(o.no_cache.applies_to("node"));
        assert!(!o.no_cache.applies_to("gpu"));
        assert!(NoCache::All.applies_to("x"));
    }

    #[test]
    fn cache_imports_json_and_legacy_cache_from() {
        let o = parse(&[
            (
                "cache-imports",
                r#"[{"Type":"registry","Attrs":{"ref":"127.0.0.1:5000/cache"}},{"Type":"local"}]"#,
            ),
            ("cache-from", "127.0.0.1:5000/old"),
        ]);
        assert_eq!(o.cache_imports.len(), 3);
        assert_eq!(o.cache_imports[0].kind, "registry");
        assert_eq!(o.cache_imports[0].attrs["ref"], "127.0.0.1:5000/cache");
        assert!(o.cache_imports[1].attrs.is_empty());
        assert_eq!(o.cache_imports[2].attrs["ref"], "127.0.0.1:5000/old");
    }

    #[test]
    fn platforms_are_normalised() {
        let o = parse(&[("platform", "linux/amd64, linux/aarch64/v8,linux/arm/v7")]);
        let text: Vec<String> = o.platforms.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    }

    #[test]
    fn named_contexts() {
        let o = parse(&[
            (
                "context:debian",
                "docker-image://strata.local/debian:bookworm",
            ),
            ("context:busybox::linux/arm64", "docker-image://x/busybox"),
            ("context:src", "local:other"),
            ("context:repo", "https://github.com/example/repo.git"),
        ]);
        assert_eq!(
            o.overrides(&Platform::default()).mirrors,
            vec![(
                "debian".to_owned(),
                "strata.local/debian:bookworm".to_owned()
            )]
        );
        let arm = parse_platform("linux/arm64").expect("valid");
        assert_eq!(
            o.overrides(&arm).mirrors[0],
            ("busybox".to_owned(), "x/busybox".to_owned())
        );
        assert_eq!(
            o.contexts["src"][0].value,
            NamedContext::Local("other".into())
        );
        assert!(matches!(
            o.contexts["repo"][0].value,
            NamedContext::Remote(_)
        ));
    }

    #[test]
    fn remote_context_and_subdir_are_recorded() {
        let o = parse(&[
            ("context", "https://github.com/example/repo.git"),
            ("contextsubdir", "sub"),
        ]);
        assert_eq!(
            o.remote_context.as_deref(),
            Some("https://github.com/example/repo.git")
        );
        assert_eq!(o.context_subdir.as_deref(), Some("sub"));
        let o = parse(&[("contextkey", "ctx"), ("ctx", "git://x/y")]);
        assert_eq!(o.remote_context.as_deref(), Some("git://x/y"));
    }

    /// A small deterministic generator: no extra dependency for fuzzing.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[(self.next() as usize) % from.len()]
        }
        fn junk(&mut self) -> String {
            const PIECES: &[&str] = &[
                "",
                "=",
                ",",
                "::",
                "/",
                "a",
                "linux",
                "amd64",
                "docker-image://",
                "{",
                "[",
                "\"Type\"",
                "]",
                "}",
                "é",
                "\u{0}",
                "-1",
                "99999999999999999999",
                " ",
                "true",
                "local:",
            ];
            (0..self.next() % 8).map(|_| self.pick(PIECES)).collect()
        }
    }

    #[test]
    fn never_panics_on_arbitrary_input() {
        const KEYS: &[&str] = &[
            "filename",
            "dockerfilekey",
            "target",
            "platform",
            "no-cache",
            "cache-imports",
            "cache-from",
            "image-resolve-mode",
            "requestid",
            "context",
            "contextkey",
            "contextsubdir",
            "build-arg:STRATA_MIRRORS",
            "build-arg:STRATA_PROFILE",
            "build-arg:SOURCE_DATE_EPOCH",
            "build-arg:x",
            "label:",
            "context:",
            "context:a::",
            "local-sessionid:",
            "",
        ];
        let mut g = Lcg(42);
        for _ in 0..20_000 {
            let mut m = BTreeMap::new();
            for _ in 0..(g.next() % 5) {
                let key = format!("{}{}", g.pick(KEYS), g.junk());
                m.insert(key, g.junk());
            }
            let _ = FrontendOpts::parse(&m);
            let vars = m
                .iter()
                .map(|(k, v)| (OsString::from(g.junk()), OsString::from(format!("{k}={v}"))));
            let _ = raw_from_env(vars);
        }
    }
}
