//! The build context through BuildKit's gateway: [`ContextReader`] over
//! local sources that hold only the named paths, read with `StatFile` and
//! `ReadDir`, so the frontend checks a stack's inputs before it solves.

use std::collections::BTreeMap;

use strata_proto::gateway as gw;
use strata_proto::pb;

use super::gateway::{read_context_files, single_source_definition, solve_ref, Bridge};
use crate::context::{ContextReader, Entry, Kind};

/// The session's `context` directory, read through `bridge`.
pub(crate) struct GatewayContext<'b, B: Bridge> {
    pub(crate) bridge: &'b mut B,
    /// The session serving the `context` directory.
    pub(crate) session: String,
}

/// Go's `os.ModeDir` (fsutil sends Go file modes); `S_IFDIR` as a fallback.
fn kind_of(mode: u32) -> Kind {
    if mode & (1 << 31) != 0 || mode & 0o170000 == 0o040000 {
        Kind::Dir
    } else {
        Kind::File
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

impl<B: Bridge> GatewayContext<'_, B> {
    /// A ref holding the `includes` of the context, less the `excludes`.
    async fn load(
        &mut self,
        includes: &[String],
        excludes: &[String],
        what: &str,
    ) -> Result<String, String> {
        let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
        let mut attrs = BTreeMap::from([
            ("local.includepattern".to_owned(), json(includes)),
            ("local.session".to_owned(), self.session.clone()),
            ("local.sharedkeyhint".to_owned(), "context".to_owned()),
        ]);
        let mut caps = vec![
            "source.local",
            "source.local.includepatterns",
            "source.local.sessionid",
            "source.local.sharedkeyhint",
        ];
        if !excludes.is_empty() {
            attrs.insert("local.excludepatterns".to_owned(), json(excludes));
            caps.push("source.local.excludepatterns");
        }
        let source = pb::SourceOp {
            identifier: "local://context".to_owned(),
            attrs,
        };
        let (definition, _) =
            single_source_definition(source, format!("[internal] check context: {what}"), &caps);
        solve_ref(self.bridge, definition)
            .await
            .map_err(|s| format!("BuildKit could not load the build context: {}", s.message()))
    }

    async fn stat_in(&mut self, id: &str, path: &str) -> Option<Kind> {
        self.bridge
            .stat_file(gw::StatFileRequest {
                r#ref: id.to_owned(),
                path: path.to_owned(),
            })
            .await
            .ok()
            .and_then(|s| s.stat)
            .map(|s| kind_of(s.mode))
    }
}

impl<B: Bridge> ContextReader for GatewayContext<'_, B> {
    async fn stat(&mut self, paths: &[String]) -> Result<Vec<Option<Kind>>, String> {
        let under = |q: &str, p: &str| p.is_empty() || q.starts_with(&format!("{p}/"));
        // A path with another below it is a directory if that one is there;
        // the others are loaded without their contents.
        let leaves: Vec<String> = paths
            .iter()
            .filter(|p| !p.is_empty() && !paths.iter().any(|q| q != *p && under(q, p)))
            .cloned()
            .collect();
        let mut found: BTreeMap<String, Option<Kind>> = BTreeMap::new();
        if !leaves.is_empty() {
            let excludes: Vec<String> = leaves.iter().map(|p| format!("{p}/*")).collect();
            let id = self.load(&leaves, &excludes, &leaves.join(", ")).await?;
            for p in &leaves {
                let k = self.stat_in(&id, p).await;
                found.insert(p.clone(), k);
            }
        }
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            if p.is_empty() {
                out.push(Some(Kind::Dir));
                continue;
            }
            if let Some(k) = found.get(p) {
                out.push(*k);
                continue;
            }
            let below = found.iter().any(|(q, k)| k.is_some() && under(q, p));
            let k = if below {
                Some(Kind::Dir)
            } else {
                let id = self
                    .load(std::slice::from_ref(p), &[format!("{p}/*")], p)
                    .await?;
                self.stat_in(&id, p).await
            };
            found.insert(p.clone(), k);
            out.push(k);
        }
        Ok(out)
    }

    async fn list(&mut self, dir: &str, patterns: &[&str]) -> Result<Option<Vec<Entry>>, String> {
        let includes: Vec<String> = patterns.iter().map(|p| join(dir, p)).collect();
        let excludes = vec![join(dir, "*/*")];
        let shown = if dir.is_empty() { "." } else { dir };
        let id = self
            .load(&includes, &excludes, &format!("list {shown}"))
            .await?;
        // The directory itself: absent when nothing in it matched.
        if !dir.is_empty() && self.stat_in(&id, dir).await != Some(Kind::Dir) {
            return Ok(None);
        }
        let read = self
            .bridge
            .read_dir(gw::ReadDirRequest {
                r#ref: id,
                dir_path: if dir.is_empty() {
                    "/".to_owned()
                } else {
                    dir.to_owned()
                },
                include_pattern: String::new(),
            })
            .await;
        let Ok(entries) = read else {
            return Ok(None);
        };
        let mut out: Vec<Entry> = entries
            .into_iter()
            .map(|s| Entry {
                name: s.path.rsplit('/').next().unwrap_or_default().to_owned(),
                kind: kind_of(s.mode),
            })
            .filter(|e| !e.name.is_empty())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(out))
    }

    async fn read(&mut self, paths: &[String]) -> Result<BTreeMap<String, String>, String> {
        read_context_files(self.bridge, paths, &self.session)
            .await
            .map_err(|s| format!("BuildKit could not read the ignore files: {}", s.message()))
    }
}
