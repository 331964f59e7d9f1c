//! conda/micromamba environments: `create -n <env>` with explicit
//! channels, a package cache mount, and `clean` so tarballs stay out of
//! the image.

use super::shell::quote;
use crate::graph::Conda;

/// Where an environment file is mounted.
pub const FILE_MOUNT: &str = "/run/strata/conda";
/// Where a local channel directory is mounted.
pub const CHANNEL_MOUNT: &str = "/run/strata/conda-channel";
/// The package cache (a cache mount).
pub const PKGS_DIR: &str = "/run/strata/conda-pkgs";

/// The shell script of a conda step.
pub fn script(c: &Conda, local_channel: bool) -> String {
    let tool = quote(&c.tool);
    let mut s = format!("set -eu\nexport CONDA_PKGS_DIRS={PKGS_DIR}\n");
    let mut args = vec![
        tool.clone(),
        "create".to_owned(),
        "-y".to_owned(),
        "-n".to_owned(),
        quote(&c.env),
    ];
    if c.tool == "micromamba" {
        args.insert(1, "--root-prefix=${MAMBA_ROOT_PREFIX:-/opt/conda}".into());
    }
    if local_channel {
        // The local channel stands for every channel the step names.
        args.push("--override-channels".into());
        args.push("-c".into());
        args.push(format!("file://{CHANNEL_MOUNT}"));
    } else {
        for ch in &c.channels {
            args.push("-c".into());
            args.push(quote(ch));
        }
    }
    if let Some(f) = &c.file {
        args.push("-f".into());
        args.push(quote(&format!("{FILE_MOUNT}/{f}")));
    }
    args.extend(c.packages.iter().map(|p| quote(p)));
    s.push_str(&args.join(" "));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_with_channels() {
        let c = Conda {
            env: "python_deps".into(),
            packages: vec!["python=3.10".into(), "pandas".into()],
            channels: vec!["conda-forge".into()],
            file: None,
            channel_dir: None,
            tool: "micromamba".into(),
        };
        let s = script(&c, false);
        assert!(s.contains("micromamba --root-prefix=${MAMBA_ROOT_PREFIX:-/opt/conda} create -y -n python_deps -c conda-forge python=3.10 pandas"), "{s}");
        let offline = script(&c, true);
        assert!(offline.contains("create -y -n python_deps --override-channels -c file:///run/strata/conda-channel python=3.10"), "{offline}");
    }
}
