//! The GPU flavour: a CUDA base with the user policy (applied in
//! `Builder::start`), the flavour's own `gpu.steps`, then the CPU
//! component's environment, and a check at the end that the image can
//! start.
//!
//! Two ways to bring the CPU component's environment across:
//! - `replay` re-runs the steps of the CPU component and of its component
//!   ancestors (up to their external base) on the CUDA base, with their env,
//!   workdir and runtime config: what is installed is built for the CUDA
//!   base's userland, and the cache works as for the CPU chain (package
//!   steps before code copies);
//! - `copy` grafts `gpu.copy` paths from the built CPU image and takes its
//!   runtime config; a copied venv brings its interpreter (the prefix its
//!   `pyvenv.cfg` names) when the CUDA base lacks it.
//!
//! Either way the last op runs, with no network and as the image's user,
//! a check that the entrypoint/cmd exist (and a script's interpreter) and
//! that every venv's Python starts; it fails the build, located at the
//! `gpu` line, instead of `docker run` failing later.

use strata_llb::{FileActions, Mount, Network, Run, SourceLocation, State};

use super::shell::quote;
use super::{metadata, Builder, LowerError, Lowerer};
use crate::graph::{Base, Component, Gpu, GpuMode, Step, StepKind};

/// Where the CPU component's filesystem is mounted during the graft.
pub const CPU_MOUNT: &str = "/run/strata/cpu";
/// Where the check script is mounted.
pub const CHECK_MOUNT: &str = "/run/strata/gpu-check";

/// A step as the flavour runs it: an apt step without its own repository
/// takes the flavour's (`gpu.apt-repo`), whose packages match the CUDA base.
pub(crate) fn flavoured(step: &Step, g: &Gpu) -> Step {
    let mut step = step.clone();
    if let (StepKind::Apt(a), Some(repo)) = (&mut step.kind, &g.apt_repo) {
        if a.repo.is_none() && a.mirror.is_none() {
            a.repo = Some(repo.clone());
        }
    }
    step
}

/// `gpu.steps`, then the CPU component's environment (replayed or copied),
/// then the NVIDIA runtime variables.
pub(crate) fn flavour(
    l: &mut Lowerer,
    c: &Component,
    g: &Gpu,
    mut b: Builder,
    path: &mut Vec<String>,
) -> Result<Builder, LowerError> {
    for step in &g.steps {
        b = l.step(b, c, &flavoured(step, g), path)?;
    }
    b = match g.mode {
        GpuMode::Replay => replay(l, c, g, b, path)?,
        GpuMode::Copy => graft(l, c, g, b, l.location(&g.span), path)?,
    };
    let cfg = &mut b.built.config;
    cfg.set_env("NVIDIA_VISIBLE_DEVICES", "all");
    cfg.set_env("NVIDIA_DRIVER_CAPABILITIES", &g.capabilities);
    Ok(b)
}

/// The components whose steps a replay re-runs: the CPU component and its
/// component ancestors, the one nearest the external base first.
fn chain<'s>(l: &Lowerer<'s>, g: &Gpu) -> Result<Vec<&'s Component>, LowerError> {
    let mut out = Vec::new();
    let mut name = g.of.as_str();
    loop {
        let a = l.stack.component(name).ok_or_else(|| LowerError {
            code: crate::spec::ErrorCode::UnknownComponent,
            message: format!("`{name}` is not a component of this stack"),
            span: g.span.clone(),
        })?;
        if a.gpu.is_some() {
            return Err(LowerError {
                code: crate::spec::ErrorCode::GpuFlavour,
                message: format!(
                    "`gpu.of = \"{}\"` reaches `{}`, itself a GPU flavour: a replay re-runs CPU components only",
                    g.of, a.name
                ),
                span: g.span.clone(),
            });
        }
        if out.iter().any(|o: &&Component| o.name == a.name) || out.len() > l.stack.components.len()
        {
            return Err(LowerError {
                code: crate::spec::ErrorCode::Cycle,
                message: format!("components form a cycle through `{}`", a.name),
                span: g.span.clone(),
            });
        }
        out.push(a);
        match &a.base {
            Base::Component(p) => name = p,
            Base::Image(_) | Base::Scratch => break,
        }
    }
    out.reverse();
    Ok(out)
}

/// Re-runs the CPU chain's steps, env, workdir and runtime config on the
/// flavour's state. Progress names read `[<flavour> via <component>]`.
fn replay(
    l: &mut Lowerer,
    c: &Component,
    g: &Gpu,
    mut b: Builder,
    path: &mut Vec<String>,
) -> Result<Builder, LowerError> {
    for a in chain(l, g)? {
        let shown = Component {
            name: format!("{} via {}", c.name, a.name),
            ..a.clone()
        };
        b = b.declare(l, &shown);
        for step in &a.steps {
            b = l.step(b, &shown, &flavoured(step, g), path)?;
        }
        b = metadata::finish(l, &shown, b);
    }
    Ok(b)
}

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
        script.push_str(CARRY_INTERPRETER);
        for p in &g.copy {
            let q = quote(p);
            script.push_str(&format!(
                "mkdir -p \"$(dirname {q})\" && rm -rf {q} && cp -a {CPU_MOUNT}{q} {q}\ncarry {q}\n"
            ));
        }
        let run = Run::args(super::shell::sh(script))
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

/// `carry DIR`: when DIR (just copied) is a venv whose `bin/python` points
/// at nothing on the CUDA base, copy its interpreter's prefix across (the
/// `python3*` programs of `home`, `lib/python3.*`, `lib/libpython3*`),
/// never over what the CUDA base has. The check then says whether it runs.
const CARRY_INTERPRETER: &str = r#"carry() {
  [ -f "$1/pyvenv.cfg" ] || return 0
  [ ! -e "$1/bin/python" ] || return 0
  home=$(sed -n 's/^home *= *//p' "$1/pyvenv.cfg" | head -n 1)
  [ -n "$home" ] || return 0
  prefix=$(dirname "$home")
  echo "strata: venv $1: its interpreter ($home) is not on the CUDA base; copying it from the CPU image" >&2
  for src in "/run/strata/cpu$home"/python3* "/run/strata/cpu$prefix"/lib/python3.* "/run/strata/cpu$prefix"/lib/libpython3*; do
    [ -e "$src" ] || [ -L "$src" ] || continue
    dst=${src#/run/strata/cpu}
    [ -e "$dst" ] || [ -L "$dst" ] || { mkdir -p "$(dirname "$dst")" && cp -a "$src" "$dst"; }
  done
}
"#;

/// The last op of a GPU flavour: checks, as the image's user and with no
/// network, that the image can start; fails the build at the `gpu` line.
pub(crate) fn check(l: &Lowerer, c: &Component, g: &Gpu, mut b: Builder) -> Builder {
    let script = check_script(c, g, &b);
    let file = State::scratch().file(
        FileActions::new()
            .mkfile("/check.sh", 0o644, script, None)
            .custom_name(format!("[{}] GPU: write the start check", c.name)),
    );
    let user = b.built.config.user.clone().unwrap_or_else(|| "0:0".into());
    let mut run = Run::args(["/bin/sh", &format!("{CHECK_MOUNT}/check.sh")])
        .dir("/")
        .user(user)
        .network(Network::None)
        .mount(Mount::bind(CHECK_MOUNT, &file, "/", true));
    for (k, v) in l.exec_env(&b.built.config) {
        run = run.env(k, v);
    }
    b.built.state = b.built.state.run(
        run.custom_name(format!(
            "[{}] GPU: check that the entrypoint, cmd and venvs run on {}",
            c.name,
            match &c.base {
                Base::Image(r) => r.familiar(),
                _ => "the GPU base".into(),
            }
        ))
        .location(l.location(&g.span))
        .ignore_cache(l.ctx.no_cache),
    );
    b
}

/// The check's shell script (see [`check`]).
fn check_script(c: &Component, g: &Gpu, b: &Builder) -> String {
    let cfg = &b.built.config;
    let fix = match g.mode {
        GpuMode::Replay => "install it on the CUDA base (a step in `gpu.steps`, e.g. `{ apt = [\"tini\"] }`, or in the component's steps), or set `entrypoint`/`cmd` on the GPU component",
        GpuMode::Copy => "copy it with `gpu.copy`, install it on the CUDA base (`gpu.steps`), or set `entrypoint`/`cmd` on the GPU component; `mode = \"replay\"` rebuilds the CPU component's steps on the CUDA base",
    };
    let venv_fix = match g.mode {
        GpuMode::Replay => "install a Python the venv can be made with before the replay, e.g. `gpu.steps = [{ apt = [\"python3\", \"python3-venv\"] }]`",
        GpuMode::Copy => "a copied venv needs its interpreter and the libraries it links against, built for the CUDA base's C library: use `mode = \"replay\"` with `gpu.steps = [{ apt = [\"python3\", \"python3-venv\"] }]`, or copy a self-contained Python",
    };
    let mut s = format!(
        r#"set -u
flavour={name}; fail=0
fix={fix}
venv_fix={venv_fix}
say() {{ printf 'strata: GPU flavour %s: %s\n' "$flavour" "$*" >&2; }}
missing() {{ say "$1"; say "  help: $fix"; fail=1; }}
program() {{
  what=$1; p=$2
  case "$p" in
    */*) ;;
    *) found=$(command -v "$p" 2>/dev/null) || {{ missing "the $what '$p' is not on PATH ($PATH) in this image"; return; }}; p=$found ;;
  esac
  if [ ! -f "$p" ] || [ ! -x "$p" ]; then missing "the $what '$p' does not exist (or is not executable) in this image"; return; fi
  first=$(head -c 256 "$p" 2>/dev/null | head -n 1)
  case "$first" in
    '#!'*)
      set -- ${{first#??}}
      if [ ! -x "${{1:-}}" ]; then missing "the $what '$p' is a script for '${{1:-}}', which is not in this image"
      elif [ "${{1##*/}}" = env ] && [ -n "${{2:-}}" ] && ! command -v "$2" >/dev/null 2>&1; then missing "the $what '$p' is a script for '$2', which is not on PATH in this image"
      fi ;;
  esac
}}
venv() {{
  [ -f "$1/pyvenv.cfg" ] || return 0
  home=$(sed -n 's/^home *= *//p' "$1/pyvenv.cfg" | head -n 1)
  if ! out=$(PYTHONDONTWRITEBYTECODE=1 "$1/bin/python" -c 'import sys, encodings' 2>&1); then
    say "the venv $1 does not run in this image: its interpreter is $1/bin/python -> $(readlink "$1/bin/python" 2>/dev/null || echo '?') (pyvenv.cfg: home = $home): $out"
    say "  help: $venv_fix"
    fail=1
  fi
}}
"#,
        name = quote(&c.name),
        fix = quote(fix),
        venv_fix = quote(venv_fix),
    );
    let entrypoint = cfg.entrypoint.clone().unwrap_or_default();
    let cmd = cfg.cmd.clone().unwrap_or_default();
    if let Some(p) = entrypoint.first() {
        s.push_str(&format!("program entrypoint {}\n", quote(p)));
        if let Some(p) = cmd.first().filter(|p| p.starts_with('/')) {
            s.push_str(&format!("program cmd {}\n", quote(p)));
        }
    } else if let Some(p) = cmd.first() {
        s.push_str(&format!("program cmd {}\n", quote(p)));
    }
    let mut venvs: Vec<&str> = cfg.env_value("VIRTUAL_ENV").into_iter().collect();
    if g.mode == GpuMode::Copy {
        venvs.extend(g.copy.iter().map(String::as_str));
    }
    venvs.sort_unstable();
    venvs.dedup();
    for v in venvs {
        s.push_str(&format!("venv {}\n", quote(v)));
    }
    s.push_str("[ \"$fail\" = 0 ] || exit 1\n");
    s
}
