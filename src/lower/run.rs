//! `run` steps: an exec with the image's env, cwd, the chosen user,
//! network, cache mounts and secret mounts.

use strata_llb::{
    CacheSharing, Mount, Network as LlbNetwork, Run as LlbRun, SourceLocation, State,
};

use super::{Builder, Lowerer};
use crate::graph::{Component, Network, Run};

/// Where secrets are mounted, as in Dockerfile `RUN --mount=type=secret`.
pub const SECRETS_DIR: &str = "/run/secrets";

/// The LLB network mode of a step's network setting.
pub fn network(n: Network) -> LlbNetwork {
    match n {
        Network::Default => LlbNetwork::Sandbox,
        Network::None => LlbNetwork::None,
        Network::Host => LlbNetwork::Host,
    }
}

/// Common exec settings: env, cwd, user.
pub(crate) fn exec(l: &Lowerer, b: &Builder, args: Vec<String>, as_user: bool) -> LlbRun {
    let mut run = LlbRun::args(args).dir(b.cwd());
    for (k, v) in l.exec_env(&b.built.config) {
        run = run.env(k, v);
    }
    let user = match (&l.stack.user, as_user) {
        (Some(p), true) => format!("{}:{}", p.uid, p.gid),
        _ => "0:0".to_owned(),
    };
    run.user(user)
}

/// Lowers a run step.
pub fn lower(l: &Lowerer, b: &Builder, c: &Component, r: &Run, loc: SourceLocation) -> State {
    let mut run = exec(l, b, r.args.clone(), r.as_user).network(network(r.network));
    for (k, v) in &r.env {
        run = run.env(k.clone(), v.clone());
    }
    for dir in &r.cache {
        let id = format!("{}/{}", l.stack.name, dir);
        run = run.mount(Mount::cache(dir, &id, CacheSharing::Locked));
    }
    let (uid, gid) = match (&l.stack.user, r.as_user) {
        (Some(p), true) => (p.uid, p.gid),
        _ => (0, 0),
    };
    for id in &r.secrets {
        run = run.mount(Mount::secret(
            &format!("{SECRETS_DIR}/{id}"),
            id,
            uid,
            gid,
            0o400,
            false,
        ));
    }
    let name = r.name.clone().unwrap_or_else(|| {
        let shown = crate::spec::raw::Command::shown(&r.args);
        format!("RUN {}", shown.lines().next().unwrap_or(""))
    });
    run = run
        .custom_name(format!("[{}] {name}", c.name))
        .location(loc)
        .ignore_cache(l.ctx.no_cache);
    b.built.state.run(run)
}
