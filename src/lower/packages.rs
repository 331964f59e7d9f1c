//! apt, pip and conda steps as execs (see `apt`, `pip`, `conda` for the scripts).

use strata_llb::{CacheSharing, Mount, Network, SourceLocation, State};

use super::shell::sh;
use super::{
    apt as apt_script, conda as conda_script, os as os_script, pip as pip_script, run, Builder,
    Lowerer,
};
use crate::graph::{Apt, Component, Conda, OsPackages, Pip};

/// The cache mount id namespace of a component: its root base, so
/// different distributions never share package lists. Computed once per
/// component in `Builder::start` (walking the bases at every step made
/// lowering a chain of N components O(N³)).
fn cache_ns(b: &Builder) -> &str {
    &b.built.cache_ns
}

/// apt-get update + install in one exec.
pub fn apt(l: &Lowerer, b: &Builder, c: &Component, a: &Apt, loc: SourceLocation) -> State {
    // The step's own archive first, then [packages]'.
    let (repo, mirror) = match (&a.repo, &a.mirror) {
        (None, None) => (
            l.stack.metadata.apt_repo.clone(),
            l.stack.metadata.apt_mirror.as_ref(),
        ),
        (repo, mirror) => (repo.clone(), mirror.as_ref()),
    };
    let archive = match (&repo, mirror) {
        (_, Some(m)) => apt_script::Archive::Mirror(m),
        (Some(_), None) => apt_script::Archive::Flat,
        (None, None) => apt_script::Archive::Base,
    };
    let ns = cache_ns(b);
    let mut run = run::exec(l, b, sh(apt_script::script(a, archive)), false)
        .mount(Mount::cache(
            "/var/cache/apt",
            &format!("strata-apt-cache:{ns}"),
            CacheSharing::Locked,
        ))
        .mount(Mount::cache(
            "/var/lib/apt",
            &format!("strata-apt-lists:{ns}"),
            CacheSharing::Locked,
        ));
    match archive {
        apt_script::Archive::Flat => {
            let repo = repo.unwrap_or_default();
            let ctx = l.context(c, &[format!("{repo}/")], &[]);
            run = run
                .mount(Mount::bind(
                    apt_script::REPO_MOUNT,
                    &ctx,
                    &context_path(c, &repo),
                    true,
                ))
                .mount(Mount::tmpfs("/run/strata/apt-tmp"))
                .network(Network::None);
        }
        // The mirror is reached over the build's default network.
        apt_script::Archive::Mirror(_) => run = run.mount(Mount::tmpfs("/run/strata/apt-tmp")),
        apt_script::Archive::Base => {}
    }
    b.built.state.run(
        run.custom_name(format!("[{}] apt install {}", c.name, a.packages.join(" ")))
            .location(loc)
            .ignore_cache(l.ctx.no_cache),
    )
}

/// dnf (microdnf, yum) install in one exec, caches in cache mounts.
pub fn dnf(l: &Lowerer, b: &Builder, c: &Component, p: &OsPackages, loc: SourceLocation) -> State {
    let ns = cache_ns(b);
    let mut run = run::exec(l, b, sh(os_script::dnf_script(&p.packages)), false);
    for dir in os_script::DNF_CACHES {
        let tool = dir.rsplit('/').next().unwrap_or("dnf");
        run = run.mount(Mount::cache(
            dir,
            &format!("strata-{tool}:{ns}"),
            CacheSharing::Locked,
        ));
    }
    b.built.state.run(
        run.custom_name(format!("[{}] dnf install {}", c.name, p.packages.join(" ")))
            .location(loc)
            .ignore_cache(l.ctx.no_cache),
    )
}

/// apk add in one exec, its cache in a cache mount.
pub fn apk(l: &Lowerer, b: &Builder, c: &Component, p: &OsPackages, loc: SourceLocation) -> State {
    let run = run::exec(l, b, sh(os_script::apk_script(&p.packages)), false).mount(Mount::cache(
        os_script::APK_CACHE,
        &format!("strata-apk:{}", cache_ns(b)),
        CacheSharing::Locked,
    ));
    b.built.state.run(
        run.custom_name(format!("[{}] apk add {}", c.name, p.packages.join(" ")))
            .location(loc)
            .ignore_cache(l.ctx.no_cache),
    )
}

/// A path of the component's context as a selector in the context source.
fn context_path(c: &Component, p: &str) -> String {
    format!("/{}{p}", super::context_prefix(c))
}

/// pip install into a venv, requirement files mounted alone.
pub fn pip(l: &Lowerer, b: &Builder, c: &Component, p: &Pip, loc: SourceLocation) -> State {
    let links = p
        .find_links
        .clone()
        .or_else(|| l.stack.metadata.find_links.clone());
    let index = p.index.over(&l.stack.metadata.pip_index);
    let mut run = run::exec(
        l,
        b,
        sh(pip_script::script(p, links.is_some(), &index)),
        false,
    )
    .mount(Mount::cache(
        pip_script::CACHE_DIR,
        &format!("strata-pip:{}", cache_ns(b)),
        CacheSharing::Locked,
    ));
    if !p.requirements.is_empty() {
        let reqs = l.context(c, &p.requirements, &[]);
        let selector = context_path(c, "");
        run = run.mount(Mount::bind(
            pip_script::REQ_MOUNT,
            &reqs,
            selector.trim_end_matches('/'),
            true,
        ));
    }
    if let Some(links) = &links {
        let wheels = l.context(c, &[format!("{links}/")], &[]);
        run = run.mount(Mount::bind(
            pip_script::WHEELS_MOUNT,
            &wheels,
            &context_path(c, links),
            true,
        ));
        // Offline unless an index is named (reached over the build's default network).
        if index.is_empty() {
            run = run.network(Network::None);
        }
    }
    let what = p
        .requirements
        .iter()
        .map(|r| format!("-r {r}"))
        .chain(p.packages.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    b.built.state.run(
        run.custom_name(format!("[{}] pip install {what}", c.name))
            .location(loc)
            .ignore_cache(l.ctx.no_cache),
    )
}

/// A conda environment.
pub fn conda(l: &Lowerer, b: &Builder, c: &Component, cd: &Conda, loc: SourceLocation) -> State {
    let channel = cd
        .channel_dir
        .clone()
        .or_else(|| l.stack.metadata.conda_channel.clone());
    let mut run = run::exec(l, b, sh(conda_script::script(cd, channel.is_some())), false).mount(
        Mount::cache(
            conda_script::PKGS_DIR,
            &format!("strata-conda:{}", cache_ns(b)),
            CacheSharing::Locked,
        ),
    );
    if let Some(dir) = &channel {
        let ctx = l.context(c, &[format!("{dir}/")], &[]);
        run = run
            .mount(Mount::bind(
                conda_script::CHANNEL_MOUNT,
                &ctx,
                &context_path(c, dir),
                true,
            ))
            .network(Network::None);
    }
    if let Some(f) = &cd.file {
        let ctx = l.context(c, std::slice::from_ref(f), &[]);
        let selector = context_path(c, "");
        run = run.mount(Mount::bind(
            conda_script::FILE_MOUNT,
            &ctx,
            selector.trim_end_matches('/'),
            true,
        ));
    }
    b.built.state.run(
        run.custom_name(format!("[{}] {} create -n {}", c.name, cd.tool, cd.env))
            .location(loc)
            .ignore_cache(l.ctx.no_cache),
    )
}
