//! pip: a venv, a cache mount for pip's cache (nothing cached in the
//! image), requirement files mounted alone from the context (so a code
//! change does not reinstall), and offline `--no-index --find-links` from
//! a wheel directory in the context.

use super::shell::quote;
use crate::graph::Pip;

/// Where requirement files are mounted.
pub const REQ_MOUNT: &str = "/run/strata/requirements";
/// Where an offline wheel directory is mounted.
pub const WHEELS_MOUNT: &str = "/run/strata/wheels";
/// pip's cache directory (a cache mount).
pub const CACHE_DIR: &str = "/root/.cache/pip";

/// The shell script of a pip step.
pub fn script(pip: &Pip, offline: bool) -> String {
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
    if offline {
        args.push("--no-index".into());
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
        };
        let s = script(&pip, true);
        assert!(s.contains("python3 -m venv /opt/venv"));
        assert!(s.contains("/opt/venv/bin/pip install --cache-dir=/root/.cache/pip --no-index --find-links=/run/strata/wheels -r /run/strata/requirements/envs/requirements.txt six==1.16.0"), "{s}");
        let sys = Pip { venv: None, ..pip };
        assert!(script(&sys, false).contains(
            "python3 -m pip install --cache-dir=/root/.cache/pip --break-system-packages -r"
        ));
    }
}
