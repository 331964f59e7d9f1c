//! Source ops: registry images ([`Image`]), client directories ([`Local`]),
//! downloads ([`Http`]) and git repositories ([`Git`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_proto::pb;

use crate::op::{op_meta_methods, Node, NodeKind, OpMeta, Output};
use crate::{Platform, State};

/// How BuildKit finds an image (`image.resolvemode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResolveMode {
    /// Registry, or local store when the reference is pinned by digest.
    #[default]
    Default,
    /// Always ask the registry.
    ForcePull,
    /// Prefer the local image store.
    PreferLocal,
}

impl ResolveMode {
    /// The attribute value (`default`, `pull`, `local`), also used by
    /// `ResolveImageConfigRequest.ResolveMode`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolveMode::Default => "default",
            ResolveMode::ForcePull => "pull",
            ResolveMode::PreferLocal => "local",
        }
    }

    /// The mode a word names (`default`, `pull`, `local`, as
    /// `image-resolve-mode` takes them).
    pub fn parse(word: &str) -> Option<ResolveMode> {
        [
            ResolveMode::Default,
            ResolveMode::ForcePull,
            ResolveMode::PreferLocal,
        ]
        .into_iter()
        .find(|m| m.as_str() == word)
    }
}

/// A `docker-image://` source, built with options:
/// `Image::new("debian:12").resolve_mode(ResolveMode::PreferLocal).into_state()`.
#[derive(Clone, Debug)]
pub struct Image {
    reference: String,
    resolve_mode: ResolveMode,
    platform: Option<Platform>,
    op: OpMeta,
}

op_meta_methods!(Image);

impl Image {
    /// An image by reference; short names are normalized as Docker does
    /// (`debian` becomes `docker.io/library/debian:latest`).
    pub fn new(reference: &str) -> Self {
        Self {
            reference: normalize_reference(reference),
            resolve_mode: ResolveMode::Default,
            platform: None,
            op: OpMeta::default(),
        }
    }

    /// Sets how the image is resolved.
    pub fn resolve_mode(mut self, mode: ResolveMode) -> Self {
        self.resolve_mode = mode;
        self
    }

    /// Selects the platform of a multi-platform image; the state carries it on.
    pub fn platform(mut self, platform: Platform) -> Self {
        self.platform = Some(platform);
        self
    }

    /// The normalized reference.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// The state of the image's filesystem.
    pub fn into_state(self) -> State {
        let mut attrs = BTreeMap::new();
        // Go omits the default mode; so do we, for identical ops.
        if self.resolve_mode != ResolveMode::Default {
            attrs.insert(
                "image.resolvemode".to_owned(),
                self.resolve_mode.as_str().to_owned(),
            );
        }
        let source = SourceNode {
            identifier: format!("docker-image://{}", self.reference),
            attrs,
            platform_specific: true,
            platform: self.platform.clone(),
        };
        let state = source_state(source, self.op);
        match self.platform {
            Some(platform) => state.with_platform(platform),
            None => state,
        }
    }
}

/// How a local source detects changed files (`local.differ`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Differ {
    /// Transfer every file every time.
    None,
    /// Compare file metadata.
    Metadata,
}

impl Differ {
    fn as_str(self) -> &'static str {
        match self {
            Differ::None => "none",
            Differ::Metadata => "metadata",
        }
    }
}

/// A `local://` source: a directory the client exposes over its session
/// (buildx names them `context` and `dockerfile`).
#[derive(Clone, Debug)]
pub struct Local {
    name: String,
    attrs: BTreeMap<String, String>,
    op: OpMeta,
}

op_meta_methods!(Local);

impl Local {
    /// The client directory called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            attrs: BTreeMap::new(),
            op: OpMeta::default(),
        }
    }

    fn attr(mut self, key: &str, value: String) -> Self {
        self.attrs.insert(key.to_owned(), value);
        self
    }

    /// The session that exposes the directory (`BUILDKIT_SESSION_ID`).
    pub fn session_id(self, id: impl Into<String>) -> Self {
        self.attr("local.session", id.into())
    }

    /// Makes the source distinct from others of the same name (`local.unique`).
    pub fn unique_id(self, id: impl Into<String>) -> Self {
        self.attr("local.unique", id.into())
    }

    /// Transfers only paths matching these patterns.
    pub fn include_patterns<I: IntoIterator<Item = S>, S: Into<String>>(self, patterns: I) -> Self {
        self.attr("local.includepattern", json_list(patterns))
    }

    /// Skips paths matching these patterns (e.g. from `.dockerignore`).
    pub fn exclude_patterns<I: IntoIterator<Item = S>, S: Into<String>>(self, patterns: I) -> Self {
        self.attr("local.excludepatterns", json_list(patterns))
    }

    /// Transfers these paths, following symlinks to them.
    pub fn follow_paths<I: IntoIterator<Item = S>, S: Into<String>>(self, paths: I) -> Self {
        self.attr("local.followpaths", json_list(paths))
    }

    /// A cache key hint shared by transfers of the same directory.
    pub fn shared_key_hint(self, hint: impl Into<String>) -> Self {
        self.attr("local.sharedkeyhint", hint.into())
    }

    /// How changed files are detected.
    pub fn differ(self, differ: Differ) -> Self {
        self.attr("local.differ", differ.as_str().to_owned())
    }

    /// The state of the directory's contents.
    pub fn into_state(self) -> State {
        let source = SourceNode {
            identifier: format!("local://{}", self.name),
            attrs: self.attrs,
            platform_specific: false,
            platform: None,
        };
        source_state(source, self.op)
    }
}

/// An `http://` or `https://` source: one file, downloaded by BuildKit
/// and checked against `checksum` (`http.checksum`) before use.
#[derive(Clone, Debug)]
pub struct Http {
    url: String,
    attrs: BTreeMap<String, String>,
    op: OpMeta,
}

op_meta_methods!(Http);

impl Http {
    /// The file at `url`.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            attrs: BTreeMap::new(),
            op: OpMeta::default(),
        }
    }

    /// The digest the download must have (`sha256:<hex>`).
    pub fn checksum(mut self, digest: &str) -> Self {
        self.attrs
            .insert("http.checksum".to_owned(), digest.to_owned());
        self
    }

    /// The name of the file in the source's filesystem (default: the
    /// URL's last path segment).
    pub fn filename(mut self, name: &str) -> Self {
        self.attrs
            .insert("http.filename".to_owned(), name.to_owned());
        self
    }

    /// The file's mode (`http.perm`, an octal string as Go writes it).
    pub fn perm(mut self, mode: u32) -> Self {
        self.attrs
            .insert("http.perm".to_owned(), format!("0{:o}", mode & 0o777));
        self
    }

    /// The state holding the one downloaded file.
    pub fn into_state(self) -> State {
        let source = SourceNode {
            identifier: self.url,
            attrs: self.attrs,
            platform_specific: false,
            platform: None,
        };
        source_state(source, self.op)
    }
}

/// A `git://` source: a repository at a ref (tag, branch or commit),
/// checked out by BuildKit without its `.git` directory.
#[derive(Clone, Debug)]
pub struct Git {
    remote: String,
    reference: String,
    keep_git_dir: bool,
    op: OpMeta,
}

op_meta_methods!(Git);

impl Git {
    /// The repository at `remote` (`https://`, `http://` or `git://`) at `reference`.
    pub fn new(remote: &str, reference: &str) -> Self {
        Self {
            remote: remote.to_owned(),
            reference: reference.to_owned(),
            keep_git_dir: false,
            op: OpMeta::default(),
        }
    }

    /// Keeps the `.git` directory in the checkout (`git.keepgitdir`).
    pub fn keep_git_dir(mut self) -> Self {
        self.keep_git_dir = true;
        self
    }

    /// The identifier: `git://<host><path>#<ref>`, the same for every
    /// transport of one repository, as Go's `llb.Git` writes it; the
    /// transport itself travels in `git.fullurl`.
    fn identifier(&self) -> String {
        let rest = self
            .remote
            .split_once("://")
            .map_or(self.remote.as_str(), |(_, r)| r);
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut id = format!("git://{host}/{}", path.trim_start_matches('/'));
        if !self.reference.is_empty() {
            id.push('#');
            id.push_str(&self.reference);
        }
        id
    }

    /// The state of the checkout.
    pub fn into_state(self) -> State {
        let mut attrs = BTreeMap::new();
        attrs.insert("git.fullurl".to_owned(), self.remote.clone());
        if self.keep_git_dir {
            attrs.insert("git.keepgitdir".to_owned(), "true".to_owned());
        }
        let source = SourceNode {
            identifier: self.identifier(),
            attrs,
            platform_specific: false,
            platform: None,
        };
        source_state(source, self.op)
    }
}

fn source_state(source: SourceNode, op: OpMeta) -> State {
    let node = Node {
        kind: NodeKind::Source(source),
        meta: op,
    };
    State::scratch().with_output(Some(Output {
        node: Arc::new(node),
        index: 0,
    }))
}

/// Pattern lists travel as JSON arrays in a string attribute.
fn json_list<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> String {
    let items: Vec<String> = items.into_iter().map(Into::into).collect();
    serde_json::Value::from(items).to_string()
}

/// A source op as it will be emitted.
#[derive(Debug)]
pub(crate) struct SourceNode {
    identifier: String,
    attrs: BTreeMap<String, String>,
    /// Images keep `Op.platform`; other sources drop it, as Go does.
    platform_specific: bool,
    platform: Option<Platform>,
}

impl SourceNode {
    pub(crate) fn lower(&self, default_platform: &Platform) -> pb::Op {
        let platform = self
            .platform_specific
            .then(|| self.platform.as_ref().unwrap_or(default_platform).to_pb());
        pb::Op {
            inputs: Vec::new(),
            op: Some(pb::op::Op::Source(pb::SourceOp {
                identifier: self.identifier.clone(),
                attrs: self.attrs.clone(),
            })),
            platform,
            constraints: Some(pb::WorkerConstraints::default()),
        }
    }
}

/// Docker's reference normalization: default registry `docker.io`, default
/// namespace `library` there, default tag `latest` unless pinned by digest.
/// Anything unusual is left as written for BuildKit to judge.
pub(crate) fn normalize_reference(reference: &str) -> String {
    let reference = reference.trim();
    if reference.is_empty() || reference.contains(char::is_whitespace) || reference.contains("://")
    {
        return reference.to_owned();
    }
    let (name_and_tag, digest) = match reference.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (reference, None),
    };
    let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_and_tag[..last_slash + i],
            Some(&name_and_tag[last_slash + i + 1..]),
        ),
        None => (name_and_tag, None),
    };
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first, rest.to_owned())
        }
        _ => ("docker.io", name.to_owned()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    let mut normalized = format!("{domain}/{path}");
    match (tag, digest) {
        (Some(tag), _) => normalized = format!("{normalized}:{tag}"),
        (None, None) => normalized.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(digest) = digest {
        normalized = format!("{normalized}@{digest}");
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::normalize_reference as norm;
    use super::Git;

    #[test]
    fn git_identifiers_drop_the_transport() {
        let g = Git::new("git://127.0.0.1:9418/repo.git", "v1.0");
        assert_eq!(g.identifier(), "git://127.0.0.1:9418/repo.git#v1.0");
        let h = Git::new("https://git.site.local/team/repo.git", "");
        assert_eq!(h.identifier(), "git://git.site.local/team/repo.git");
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(norm("debian"), "docker.io/library/debian:latest");
        assert_eq!(norm("debian:12"), "docker.io/library/debian:12");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("index.docker.io/alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(norm("ghcr.io/o/r:1"), "ghcr.io/o/r:1");
        assert_eq!(norm("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(
            norm("alpine@sha256:abcd"),
            "docker.io/library/alpine@sha256:abcd"
        );
        assert_eq!(
            norm("alpine:3.19@sha256:abcd"),
            "docker.io/library/alpine:3.19@sha256:abcd"
        );
    }
}
