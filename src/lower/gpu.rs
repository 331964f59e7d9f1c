//! The GPU flavour: a CUDA base with the user policy (applied in
//! `Builder::start`), the CPU component's environment grafted across
//! (its paths, env and runtime config) and the NVIDIA runtime variables.

use strata_llb::{CopyOptions, FileActions, SourceLocation};

use super::{Builder, LowerError, Lowerer};
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
        let mut actions = FileActions::new();
        for p in &g.copy {
            // Ownership is kept: a graft must look like the CPU image.
            let options = CopyOptions {
                copy_dir_contents: true,
                create_dest_path: true,
                ..CopyOptions::default()
            };
            actions = actions.copy(&cpu.state, p, p, options);
        }
        b.built.state = b.built.state.file(
            actions
                .custom_name(format!(
                    "[{}] GPU: copy {} from {}",
                    c.name,
                    g.copy.join(" "),
                    g.of
                ))
                .location(loc),
        );
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
