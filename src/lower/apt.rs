//! apt: update and install in one exec, with cache mounts for
//! `/var/cache/apt` and `/var/lib/apt` (locked sharing), no recommends, so
//! no package lists end up in the image. An offline flat repository from
//! the context replaces the base's sources and the step gets no network;
//! a mirror URL replaces them too, and the step keeps the build network.
//! A base without apt-get fails the step with a message naming its
//! distribution and the step that fits it (see `os`).

use super::shell::quote;
use crate::graph::{Apt, AptMirror};

/// Where an offline repository is mounted during the step.
pub const REPO_MOUNT: &str = "/run/strata/apt-repo";

/// Where apt's archive comes from in one step.
#[derive(Debug, Clone, Copy)]
pub enum Archive<'a> {
    /// The base image's own sources.
    Base,
    /// A flat repository mounted at [`REPO_MOUNT`].
    Flat,
    /// A mirror URL.
    Mirror(&'a AptMirror),
}

/// The shell script of an apt step.
pub fn script(apt: &Apt, archive: Archive) -> String {
    let mut s = String::from("set -eu\n");
    s.push_str(&super::os::require("apt", &["apt-get"]));
    s.push_str("export DEBIAN_FRONTEND=noninteractive\n");
    let mut opts = String::from("-o APT::Keep-Downloaded-Packages=true");
    let line = match archive {
        Archive::Base => None,
        Archive::Flat => Some(format!("deb [trusted=yes] file:{REPO_MOUNT} ./")),
        Archive::Mirror(m) => Some(format!(
            "deb {}{} {} {}",
            if m.trusted { "[trusted=yes] " } else { "" },
            m.url,
            m.suite,
            m.components.join(" ")
        )),
    };
    if let Some(line) = line {
        s.push_str(&format!(
            "echo {} > /run/strata/apt-tmp/sources.list\n",
            quote(&line)
        ));
        opts.push_str(" -o Dir::Etc::SourceList=/run/strata/apt-tmp/sources.list -o Dir::Etc::SourceParts=/dev/null");
    }
    let packages: Vec<String> = apt.packages.iter().map(|p| quote(p)).collect();
    s.push_str(&format!(
        "apt-get {opts} update -qq\napt-get {opts} install -y -qq --no-install-recommends {}\n",
        packages.join(" ")
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_exec_no_recommends_offline_sources() {
        let apt = Apt {
            packages: vec!["tini".into(), "supervisor".into()],
            repo: None,
            mirror: None,
        };
        let s = script(&apt, Archive::Flat);
        assert!(s.contains("update -qq\napt-get"));
        assert!(s.contains("install -y -qq --no-install-recommends tini supervisor"));
        assert!(s.contains("file:/run/strata/apt-repo ./"));
        assert!(s.contains("Dir::Etc::SourceParts=/dev/null"));
        assert!(!script(&apt, Archive::Base).contains("SourceList"));
        let mirror = AptMirror {
            url: "http://172.17.0.1:8080/debian".into(),
            suite: "bookworm".into(),
            components: vec!["main".into(), "contrib".into()],
            trusted: false,
        };
        let m = script(&apt, Archive::Mirror(&mirror));
        assert!(
            m.contains("'deb http://172.17.0.1:8080/debian bookworm main contrib'"),
            "{m}"
        );
    }
}
