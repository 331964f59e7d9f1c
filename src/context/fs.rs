//! The build context as a directory on this machine.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::patterns::glob_match;
use super::{ContextReader, Entry, Kind};

/// The build context as a directory on this machine (the CLI's view).
#[derive(Debug, Clone)]
pub struct FsContext {
    /// The context's root.
    pub root: PathBuf,
}

impl FsContext {
    fn kind(&self, path: &str) -> Option<Kind> {
        let meta = std::fs::metadata(self.root.join(path)).ok()?;
        Some(if meta.is_dir() { Kind::Dir } else { Kind::File })
    }
}

impl ContextReader for FsContext {
    async fn stat(&mut self, paths: &[String]) -> Result<Vec<Option<Kind>>, String> {
        Ok(paths.iter().map(|p| self.kind(p)).collect())
    }

    async fn list(&mut self, dir: &str, patterns: &[&str]) -> Result<Option<Vec<Entry>>, String> {
        let Ok(read) = std::fs::read_dir(self.root.join(dir)) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for e in read.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !patterns.iter().any(|p| glob_match(p, &name)) {
                continue;
            }
            let path = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            if let Some(kind) = self.kind(&path) {
                out.push(Entry { name, kind });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(out))
    }

    async fn read(&mut self, paths: &[String]) -> Result<BTreeMap<String, String>, String> {
        Ok(paths
            .iter()
            .filter_map(|p| {
                std::fs::read(self.root.join(p))
                    .ok()
                    .map(|b| (p.clone(), String::from_utf8_lossy(&b).into_owned()))
            })
            .collect())
    }
}
