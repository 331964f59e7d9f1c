//! `user-writable-entrypoint`: the program a container starts is a file
//! the user it runs as may rewrite (copied with `owner = "user"`, or under
//! a directory copied so).

use std::ops::Range;

use crate::graph::{Base, Component, Owner, RunAs, Stack, StepKind};
use crate::lower::clean_path;

/// A copy that leaves files owned by the runtime user.
pub struct UserCopy<'a> {
    /// The absolute destination, cleaned.
    pub dst: String,
    /// The component that copies.
    pub component: &'a str,
    /// The copy step.
    pub span: Range<usize>,
}

/// For a component running as the policy user: each start program (the
/// entrypoint's or cmd's first word, inherited or not) that a user-owned
/// copy wrote, with that copy.
pub fn writable_starts<'a>(stack: &'a Stack, c: &'a Component) -> Vec<(String, UserCopy<'a>)> {
    let Some(policy) = &stack.user else {
        return Vec::new();
    };
    if c.run_as != RunAs::Policy {
        return Vec::new();
    }
    let chain = chain(stack, c);
    let first = |pick: fn(&Component) -> Option<&Vec<String>>| {
        chain.iter().find_map(|b| pick(b)).and_then(|v| v.first())
    };
    let workdir = chain
        .iter()
        .find_map(|b| b.config.workdir.clone())
        .unwrap_or_else(|| "/".into());
    let mut starts: Vec<String> = [
        first(|b| b.config.entrypoint.as_ref()),
        first(|b| b.config.cmd.as_ref()),
    ]
    .into_iter()
    .flatten()
    // A bare name is looked up in PATH: not a path this lint can follow.
    .filter(|p| p.contains('/'))
    .map(|p| clean_path(&join(&workdir, p)))
    .collect();
    starts.dedup();
    let mut out = Vec::new();
    for b in &chain {
        for copy in user_copies(b, policy.uid) {
            for s in &starts {
                if *s == copy.dst || s.starts_with(&format!("{}/", copy.dst.trim_end_matches('/')))
                {
                    out.push((
                        s.clone(),
                        UserCopy {
                            dst: copy.dst.clone(),
                            component: copy.component,
                            span: copy.span.clone(),
                        },
                    ));
                }
            }
        }
    }
    out
}

/// `c` and the components it is built from, nearest first.
fn chain<'a>(stack: &'a Stack, c: &'a Component) -> Vec<&'a Component> {
    let mut out = vec![c];
    let mut at = c;
    while let Base::Component(b) = &at.base {
        match stack.component(b) {
            Some(next) if !out.iter().any(|o| o.name == next.name) => {
                out.push(next);
                at = next;
            }
            _ => break,
        }
    }
    out
}

/// The copies of `c` whose files belong to `uid`.
fn user_copies(c: &Component, uid: u32) -> Vec<UserCopy<'_>> {
    let mut cwd = c.config.workdir.clone().unwrap_or_else(|| "/".into());
    let mut out = Vec::new();
    for step in &c.steps {
        match &step.kind {
            StepKind::Workdir { path } => cwd = join(&cwd, path),
            StepKind::Copy(cp) => {
                let user = match cp.owner {
                    Owner::User => true,
                    Owner::Ids(u, _) => u == uid && u != 0,
                    Owner::Root => false,
                };
                if user {
                    out.push(UserCopy {
                        dst: clean_path(&join(&cwd, &cp.dst)),
                        component: &c.name,
                        span: step.span.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

fn join(dir: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", dir.trim_end_matches('/'))
    }
}
