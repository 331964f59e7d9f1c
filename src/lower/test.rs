//! `test` entries: each one an exec on the finished image, with the
//! image's env, workdir and user, without network unless asked. Its
//! output is thrown away: the frontend solves each test apart and returns
//! the image only when all of them passed (see `frontend::gateway`).

use strata_llb::{Run, State};

use super::{run, Built, Lowerer};
use crate::graph::{Component, Test};

/// The state whose solve runs `t` on the finished image `built`.
pub(crate) fn lower(l: &Lowerer, c: &Component, built: &Built, t: &Test) -> State {
    let cwd = built.config.workdir.clone().unwrap_or_else(|| "/".into());
    let user = match (&l.stack.user, t.as_user) {
        (Some(p), true) => format!("{}:{}", p.uid, p.gid),
        _ => "0:0".to_owned(),
    };
    let mut exec = Run::args(t.args.clone())
        .dir(cwd)
        .user(user)
        .network(run::network(t.network));
    for (k, v) in l.image_env(&built.config) {
        exec = exec.env(k, v);
    }
    exec = exec
        .custom_name(format!("[{}] TEST {}", c.name, name(t)))
        .location(l.location(&t.span))
        .ignore_cache(l.ctx.no_cache);
    built.state.run(exec)
}

/// The test's name: its `name`, else its command's first line.
pub fn name(t: &Test) -> String {
    t.name.clone().unwrap_or_else(|| {
        let shown = crate::spec::raw::Command::shown(&t.args);
        shown.lines().next().unwrap_or("").to_owned()
    })
}
