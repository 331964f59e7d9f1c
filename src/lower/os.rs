//! dnf and apk: one exec that installs from the base's own repositories,
//! with the package manager's cache in a cache mount (so no repository
//! metadata or packages stay in the image) and no weak dependencies or
//! docs. A base without the package manager fails the step with a message
//! that names the base's distribution (its `/etc/os-release`) and the step
//! that fits it.

use super::shell::quote;

/// dnf's and yum's caches (cache mounts).
pub const DNF_CACHES: [&str; 2] = ["/var/cache/dnf", "/var/cache/yum"];
/// apk's cache: when this directory exists, apk keeps indexes and
/// packages there (a cache mount).
pub const APK_CACHE: &str = "/etc/apk/cache";

/// The lines that stop the step when the base has none of `tools`: they
/// name the distribution and the step to use for it.
pub(crate) fn require(step: &str, tools: &[&str]) -> String {
    let found: Vec<String> = tools
        .iter()
        .map(|t| format!("command -v {t} >/dev/null 2>&1"))
        .collect();
    format!(
        r#"if ! {{ {found}; }}; then
  ID=; ID_LIKE=; PRETTY_NAME=
  [ -r /etc/os-release ] && . /etc/os-release
  case " $ID $ID_LIKE " in
    *" debian "*|*" ubuntu "*) use="use the \`apt\` step for its packages" ;;
    *" alpine "*) use="use the \`apk\` step for its packages" ;;
    *" rhel "*|*" fedora "*|*" centos "*) use="use the \`dnf\` step for its packages" ;;
    *) use="install packages with a \`run\` step that fits it" ;;
  esac
  echo "strata: {step} step: the base image is ${{PRETTY_NAME:-a system without /etc/os-release}}, which has no {tools}; $use" >&2
  exit 1
fi
"#,
        found = found.join(" || "),
        tools = tools.join(", ")
    )
}

/// The shell script of a dnf step (dnf, else microdnf, else yum).
pub fn dnf_script(packages: &[String]) -> String {
    let mut s = String::from("set -eu\n");
    s.push_str(&require("dnf", &["dnf", "microdnf", "yum"]));
    s.push_str(
        "pm=yum\ncommand -v microdnf >/dev/null 2>&1 && pm=microdnf\ncommand -v dnf >/dev/null 2>&1 && pm=dnf\n",
    );
    let packages: Vec<String> = packages.iter().map(|p| quote(p)).collect();
    s.push_str(&format!(
        "$pm install -y --setopt=install_weak_deps=0 --setopt=keepcache=1 --nodocs {}\n",
        packages.join(" ")
    ));
    s
}

/// The shell script of an apk step.
pub fn apk_script(packages: &[String]) -> String {
    let mut s = String::from("set -eu\n");
    s.push_str(&require("apk", &["apk"]));
    let packages: Vec<String> = packages.iter().map(|p| quote(p)).collect();
    s.push_str(&format!(
        "apk add --update-cache --no-progress {}\n",
        packages.join(" ")
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_install_in_one_exec_and_name_the_distribution_when_missing() {
        let pkgs = vec!["curl".to_owned(), "ca-certificates".to_owned()];
        let d = dnf_script(&pkgs);
        assert!(d.contains("$pm install -y --setopt=install_weak_deps=0 --setopt=keepcache=1 --nodocs curl ca-certificates"), "{d}");
        assert!(
            d.contains("command -v dnf >/dev/null 2>&1 || command -v microdnf"),
            "{d}"
        );
        assert!(d.contains("which has no dnf, microdnf, yum"), "{d}");
        let a = apk_script(&pkgs);
        assert!(
            a.contains("apk add --update-cache --no-progress curl ca-certificates"),
            "{a}"
        );
        assert!(a.contains("use the \\`apt\\` step"), "{a}");
    }
}
