//! What a build returns beyond its refs: the image config per platform,
//! the `refs.platforms` list, and the progress names of the solved steps.

use std::collections::{BTreeMap, BTreeSet};

use strata_proto::gateway::{self as gw, result};
use strata_proto::pb;

use crate::graph::{RunsOn, Stack};
use crate::lower::Platform;

/// The metadata key listing the platforms of a multi-platform result.
pub const PLATFORMS_KEY: &str = "refs.platforms";

/// One entry of `refs.platforms`: `{"ID": key, "Platform": {OCI platform}}`.
pub(super) fn exporter_platform(key: &str, p: &Platform) -> serde_json::Value {
    let mut platform = serde_json::json!({
        "architecture": p.architecture,
        "os": p.os,
    });
    if let Some(v) = p.variant.as_deref().filter(|v| !v.is_empty()) {
        platform["variant"] = v.into();
    }
    serde_json::json!({ "ID": key, "Platform": platform })
}

/// `[component] ...` progress names become `[PREFIX component] ...`, as
/// BuildKit's Dockerfile frontend names the steps of a multi-platform
/// build (`[linux/arm64 app] RUN ...`), and a build-platform component's
/// `[linux/amd64->arm64 builder] ...` (it runs on linux/amd64 for arm64).
/// Metadata is outside the ops' digests: the LLB is unchanged.
pub(super) struct StepPrefixes<'a> {
    target: &'a str,
    build: String,
    on_build: BTreeSet<&'a str>,
}

impl<'a> StepPrefixes<'a> {
    pub(super) fn new(
        stack: &'a Stack,
        target: &'a str,
        platform: &Platform,
        build: &Platform,
    ) -> Self {
        StepPrefixes {
            target,
            build: cross_prefix(build, platform),
            on_build: stack
                .components
                .iter()
                .filter(|c| c.platform == RunsOn::Build)
                .map(|c| c.name.as_str())
                .collect(),
        }
    }

    pub(super) fn apply(&self, def: &mut pb::Definition) {
        for m in def.metadata.values_mut() {
            if let Some(name) = m.description.get_mut("llb.customname") {
                if let Some(rest) = name.strip_prefix('[') {
                    let component = rest.split([' ', ']']).next().unwrap_or_default();
                    let prefix = if self.on_build.contains(component) {
                        &self.build
                    } else {
                        self.target
                    };
                    *name = format!("[{prefix} {rest}");
                }
            }
        }
    }
}

/// `linux/amd64->arm64`: ops on the build platform for another target
/// (the OS repeated only when it differs), as the Dockerfile frontend
/// writes it; just the build platform when both are the same.
pub(super) fn cross_prefix(build: &Platform, target: &Platform) -> String {
    let from = build.to_string();
    if build == target {
        return from;
    }
    if build.os == target.os {
        let arch = match target.variant.as_deref().filter(|v| !v.is_empty()) {
            Some(v) => format!("{}/{v}", target.architecture),
            None => target.architecture.clone(),
        };
        format!("{from}->{arch}")
    } else {
        format!("{from}->{}", target)
    }
}

/// Each op of `def` by digest: its progress name and the first stack-file
/// line of its location, for naming a failed step.
pub(super) fn step_names(def: &pb::Definition) -> BTreeMap<String, (String, Option<u32>)> {
    let locations = def.source.as_ref().map(|s| &s.locations);
    def.metadata
        .iter()
        .filter_map(|(digest, m)| {
            let name = m.description.get("llb.customname")?.clone();
            let line = locations
                .and_then(|l| l.get(digest))
                .and_then(|l| l.locations.first())
                .and_then(|l| l.ranges.first())
                .and_then(|r| r.start)
                .and_then(|p| u32::try_from(p.line).ok());
            Some((digest.clone(), (name, line)))
        })
        .collect()
}

/// The ref id of a Solve answer (new-style `result.ref`, or the deprecated fields).
pub(super) fn result_ref(res: &gw::SolveResponse) -> Option<String> {
    match res.result.as_ref().and_then(|r| r.result.as_ref()) {
        Some(result::Result::Ref(r)) => Some(r.id.clone()),
        Some(result::Result::RefDeprecated(id)) => Some(id.clone()),
        _ if !res.r#ref.is_empty() => Some(res.r#ref.clone()),
        // An empty definition solves to the empty ref: a scratch result.
        None => Some(String::new()),
        _ => None,
    }
}

/// A multi-platform image's config names its own platform, whatever the
/// base's config said (as BuildKit's Dockerfile frontend does).
pub(super) fn force_platform(config: &mut serde_json::Value, p: &Platform) {
    if let Some(obj) = config.as_object_mut() {
        obj.remove("architecture");
        obj.remove("os");
        obj.remove("variant");
    }
    set_platform(config, p);
}

/// BuildKit's image exporter requires top-level `architecture` and `os`.
pub(super) fn set_platform(config: &mut serde_json::Value, p: &Platform) {
    if !config.is_object() {
        *config = serde_json::Value::Object(Default::default());
    }
    let Some(obj) = config.as_object_mut() else {
        return;
    };
    let missing =
        |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).is_none_or(str::is_empty);
    if missing(obj.get("architecture")) {
        obj.insert("architecture".into(), p.architecture.clone().into());
    }
    if missing(obj.get("os")) {
        obj.insert("os".into(), p.os.clone().into());
    }
    if let Some(v) = &p.variant {
        if missing(obj.get("variant")) {
            obj.insert("variant".into(), v.clone().into());
        }
    }
}
