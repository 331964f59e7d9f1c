//! apt: update and install in one exec, with cache mounts for
//! `/var/cache/apt` and `/var/lib/apt` (locked sharing), no recommends, so
//! no package lists end up in the image. An offline flat repository from
//! the context replaces the base's sources and the step gets no network.

use super::shell::quote;
use crate::graph::Apt;

/// Where an offline repository is mounted during the step.
pub const REPO_MOUNT: &str = "/run/strata/apt-repo";

/// The shell script of an apt step.
pub fn script(apt: &Apt, offline: bool) -> String {
    let mut s = String::from("set -eu\nexport DEBIAN_FRONTEND=noninteractive\n");
    let mut opts = String::from("-o APT::Keep-Downloaded-Packages=true");
    if offline {
        s.push_str(&format!(
            "echo 'deb [trusted=yes] file:{REPO_MOUNT} ./' > /run/strata/apt-tmp/sources.list\n"
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
        };
        let s = script(&apt, true);
        assert!(s.contains("update -qq\napt-get"));
        assert!(s.contains("install -y -qq --no-install-recommends tini supervisor"));
        assert!(s.contains("file:/run/strata/apt-repo ./"));
        assert!(s.contains("Dir::Etc::SourceParts=/dev/null"));
        assert!(!script(&apt, false).contains("SourceList"));
    }
}
