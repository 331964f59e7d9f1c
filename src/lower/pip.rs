//! pip: a venv, a cache mount for pip's cache (nothing cached in the
//! image), requirement files mounted alone from the context (so a code
//! change does not reinstall), and offline `--no-index --find-links` from
//! a wheel directory in the context.

use super::shell::quote;
use crate::graph::{Pip, PipIndex};

/// Where requirement files are mounted.
pub const REQ_MOUNT: &str = "/run/strata/requirements";
/// Where an offline wheel directory is mounted.
pub const WHEELS_MOUNT: &str = "/run/strata/wheels";
/// pip's cache directory (a cache mount).
pub const CACHE_DIR: &str = "/root/.cache/pip";

/// The shell script of a pip step.
pub fn script(pip: &Pip, links: bool, index: &PipIndex) -> String {
    let mut s = String::from(
        "set -eu\nexport PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore\n",
    );
    let pip_bin = match &pip.venv {
        Some(v) => {
            s.push_str(&format!(
                "[ -x {v}/bin/python ] || python3 -m venv {v}\n",
                v = quote(v)
            ));
            format!("{}/bin/pip", quote(v))
        }
        None => "python3 -m pip".to_owned(),
    };
    let mut args = vec![
        pip_bin,
        "install".to_owned(),
        format!("--cache-dir={CACHE_DIR}"),
    ];
    if pip.venv.is_none() {
        args.push("--break-system-packages".into());
    }
    if links && index.is_empty() {
        args.push("--no-index".into());
    }
    if let Some(u) = &index.index_url {
        args.push(quote(&format!("--index-url={u}")));
    }
    for u in &index.extra_index_urls {
        args.push(quote(&format!("--extra-index-url={u}")));
    }
    for h in &index.trusted_hosts {
        args.push(quote(&format!("--trusted-host={h}")));
    }
    if links {
        args.push(format!("--find-links={WHEELS_MOUNT}"));
    }
    for r in &pip.requirements {
        args.push("-r".into());
        args.push(quote(&format!("{REQ_MOUNT}/{r}")));
    }
    args.extend(pip.packages.iter().map(|p| quote(p)));
    s.push_str(&args.join(" "));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venv_requirements_offline() {
        let pip = Pip {
            packages: vec!["six==1.16.0".into()],
            requirements: vec!["envs/requirements.txt".into()],
            venv: Some("/opt/venv".into()),
            find_links: None,
            index: PipIndex::default(),
        };
        let s = script(&pip, true, &PipIndex::default());
        assert!(s.contains("python3 -m venv /opt/venv"));
        assert!(s.contains("/opt/venv/bin/pip install --cache-dir=/root/.cache/pip --no-index --find-links=/run/strata/wheels -r /run/strata/requirements/envs/requirements.txt six==1.16.0"), "{s}");
        let sys = Pip { venv: None, ..pip };
        let index = PipIndex {
            index_url: Some("http://172.17.0.1:8000/simple/".into()),
            extra_index_urls: vec![],
            trusted_hosts: vec!["172.17.0.1:8000".into()],
        };
        let online = script(&sys, false, &index);
        assert!(
            online.contains(
                "--index-url=http://172.17.0.1:8000/simple/ --trusted-host=172.17.0.1:8000"
            ),
            "{online}"
        );
        assert!(!online.contains("--no-index"));
        assert!(script(&sys, false, &PipIndex::default()).contains(
            "python3 -m pip install --cache-dir=/root/.cache/pip --break-system-packages -r"
        ));
    }
}
