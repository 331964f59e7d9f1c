//! The GPU flavour: a CUDA base with the user policy (applied in
//! `Builder::start`), the CPU component's environment grafted across
//! (its paths, env and runtime config) and the NVIDIA runtime variables.

use strata_llb::{Mount, Network, Run, SourceLocation};

use super::user::quote;
use super::{Builder, LowerError, Lowerer};

/// Where the CPU component's filesystem is mounted during the graft.
pub const CPU_MOUNT: &str = "/run/strata/cpu";
use crate::graph::{Component, Gpu};

/// Copies the CPU component's paths and runtime config onto the CUDA base.
pub(crate) fn graft(
    l: &mut Lowerer,
    c: &Component,
    g: &Gpu,
    mut b: Builder,
    loc: SourceLocation,
    path: &mut Vec<String>,
) -> Result<Builder, LowerError> {
    let cpu = l.component(&g.of, path)?;
    if !g.copy.is_empty() {
        // `cp -a` from the CPU image mounted read-only keeps owners and modes
        // (a FileOp copy would make every file root's).
        let mut script = String::from("set -eu\n");
        for p in &g.copy {
            let q = quote(p);
            script.push_str(&format!(
                "mkdir -p \"$(dirname {q})\" && rm -rf {q} && cp -a {CPU_MOUNT}{q} {q}\n"
            ));
        }
        let run = Run::args(["/bin/sh", "-c", &script])
            .user("0:0")
            .dir("/")
            .env("PATH", super::DEFAULT_PATH)
            .network(Network::None)
            .mount(Mount::bind(CPU_MOUNT, &cpu.state, "/", true))
            .custom_name(format!(
                "[{}] GPU: copy {} from {}",
                c.name,
                g.copy.join(" "),
                g.of
            ))
            .location(loc);
        b.built.state = b.built.state.run(run);
    }
    let cfg = &mut b.built.config;
    for (k, v) in &cpu.config.env {
        cfg.set_env(k, v);
    }
    cfg.set_env("NVIDIA_VISIBLE_DEVICES", "all");
    cfg.set_env("NVIDIA_DRIVER_CAPABILITIES", &g.capabilities);
    cfg.workdir = cpu.config.workdir.clone().or(cfg.workdir.take());
    if cpu.config.entrypoint.is_some() {
        cfg.entrypoint = cpu.config.entrypoint.clone();
        cfg.cmd = cpu.config.cmd.clone();
    } else if cpu.config.cmd.is_some() {
        cfg.cmd = cpu.config.cmd.clone();
    }
    for p in &cpu.config.expose {
        if !cfg.expose.contains(p) {
            cfg.expose.push(p.clone());
        }
    }
    for v in &cpu.config.volumes {
        if !cfg.volumes.contains(v) {
            cfg.volumes.push(v.clone());
        }
    }
    cfg.labels.extend(cpu.config.labels.clone());
    if cpu.config.healthcheck.is_some() {
        cfg.healthcheck = cpu.config.healthcheck.clone();
    }
    Ok(b)
}
