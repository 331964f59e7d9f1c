//! Exec ops: [`Run`] a command on a [`State`], with [`Mount`]s.

use std::sync::Arc;

use strata_proto::pb;

use crate::op::{op_meta_methods, InputList, Node, NodeKind, OpMeta, Output};
use crate::state::{join_path, set_env};
use crate::{LlbError, Platform, State};

/// The network a command sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// BuildKit's default sandboxed network.
    #[default]
    Sandbox,
    /// The host's network (needs the `network.host` entitlement).
    Host,
    /// No network at all.
    None,
}

/// How concurrent builds share a cache mount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheSharing {
    /// Used by all builds at once.
    #[default]
    Shared,
    /// A fresh copy when another build holds it.
    Private,
    /// One build at a time.
    Locked,
}

/// A command to run, with its options. `"cmd".into()` is `Run::shell("cmd")`.
#[derive(Clone, Debug)]
pub struct Run {
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: Option<String>,
    user: Option<String>,
    network: Network,
    mounts: Vec<Mount>,
    op: OpMeta,
}

op_meta_methods!(Run);

impl Run {
    /// Runs `args` directly (exec form).
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(args: I) -> Self {
        Self {
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            dir: None,
            user: None,
            network: Network::Sandbox,
            mounts: Vec::new(),
            op: OpMeta::default(),
        }
    }

    /// Runs `command` with `/bin/sh -c` (shell form).
    pub fn shell(command: impl Into<String>) -> Self {
        Self::args(["/bin/sh".to_owned(), "-c".to_owned(), command.into()])
    }

    /// Adds an environment variable for this command only.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        set_env(&mut self.env, key.into(), value.into());
        self
    }

    /// Runs in `path` (relative to the state's directory) instead of the state's directory.
    pub fn dir(mut self, path: impl Into<String>) -> Self {
        self.dir = Some(path.into());
        self
    }

    /// Runs as `user` instead of the state's user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the network mode.
    pub fn network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// Adds a mount; a relative target is taken from the working directory.
    /// A bind mount at `/` replaces the state's own root filesystem.
    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }
}

impl From<&str> for Run {
    fn from(command: &str) -> Self {
        Run::shell(command)
    }
}

impl From<String> for Run {
    fn from(command: String) -> Self {
        Run::shell(command)
    }
}

/// A filesystem mounted into a command besides its root.
#[derive(Clone, Debug)]
pub struct Mount {
    target: String,
    kind: MountKind,
}

#[derive(Clone, Debug)]
enum MountKind {
    Bind {
        source: Option<Output>,
        selector: String,
        readonly: bool,
    },
    Cache {
        id: String,
        sharing: CacheSharing,
    },
    Tmpfs {
        size: i64,
    },
    Secret(FileMount),
    Ssh(FileMount),
}

/// Options of a secret or SSH socket mount.
#[derive(Clone, Debug)]
struct FileMount {
    id: String,
    uid: u32,
    gid: u32,
    mode: u32,
    optional: bool,
}

impl FileMount {
    fn new(id: &str, uid: u32, gid: u32, mode: u32, optional: bool) -> Self {
        let id = id.to_owned();
        Self {
            id,
            uid,
            gid,
            mode,
            optional,
        }
    }
}

impl Mount {
    /// `selector` (a path inside `source`, or "" for all of it) mounted at
    /// `target`. A writable bind mount is an extra output of the exec, see
    /// [`Exec::mount`].
    pub fn bind(target: &str, source: &State, selector: &str, readonly: bool) -> Self {
        // "" and "/" mean the same; one spelling keeps digests stable.
        let selector = match join_path("/", selector).as_str() {
            "/" => String::new(),
            path => path.to_owned(),
        };
        Self::new(
            target,
            MountKind::Bind {
                source: source.output.clone(),
                selector,
                readonly,
            },
        )
    }

    /// A persistent cache directory `id`, kept between builds.
    pub fn cache(target: &str, id: &str, sharing: CacheSharing) -> Self {
        let id = id.to_owned();
        Self::new(target, MountKind::Cache { id, sharing })
    }

    /// An empty in-memory filesystem.
    pub fn tmpfs(target: &str) -> Self {
        Self::new(target, MountKind::Tmpfs { size: 0 })
    }

    /// An in-memory filesystem of at most `bytes`.
    pub fn tmpfs_sized(target: &str, bytes: u64) -> Self {
        let size = i64::try_from(bytes).unwrap_or(i64::MAX);
        Self::new(target, MountKind::Tmpfs { size })
    }

    /// The build secret `id` as a file owned by `uid:gid` with `mode`; an
    /// `optional` secret may be missing.
    pub fn secret(target: &str, id: &str, uid: u32, gid: u32, mode: u32, optional: bool) -> Self {
        Self::new(
            target,
            MountKind::Secret(FileMount::new(id, uid, gid, mode, optional)),
        )
    }

    /// The SSH agent socket `id` as a socket owned by `uid:gid` with `mode`.
    pub fn ssh(target: &str, id: &str, uid: u32, gid: u32, mode: u32, optional: bool) -> Self {
        Self::new(
            target,
            MountKind::Ssh(FileMount::new(id, uid, gid, mode, optional)),
        )
    }

    fn new(target: &str, kind: MountKind) -> Self {
        let target = target.to_owned();
        Self { target, kind }
    }

    /// Filesystem mounts first, by target (as Go sorts them), then secrets,
    /// then SSH sockets: the order never depends on how the run was written.
    fn sort_key(&self) -> (u8, &str) {
        let class = match self.kind {
            MountKind::Secret(_) => 1,
            MountKind::Ssh(_) => 2,
            _ => 0,
        };
        (class, &self.target)
    }
}

/// An exec op on its way to the graph: the root and every mount, sorted,
/// with output numbers assigned.
#[derive(Debug)]
pub(crate) struct ExecNode {
    meta: pb::Meta,
    network: Network,
    mounts: Vec<(Mount, i64)>,
    platform: Option<Platform>,
}

impl ExecNode {
    pub(crate) fn inputs(&self) -> Vec<&Output> {
        self.mounts
            .iter()
            .filter_map(|(mount, _)| match &mount.kind {
                MountKind::Bind { source, .. } => source.as_ref(),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn lower(
        &self,
        inputs: &[pb::Input],
        default_platform: &Platform,
    ) -> Result<pb::Op, LlbError> {
        if self.meta.args.is_empty() {
            return Err(LlbError::EmptyArgs);
        }
        let mut op_inputs = InputList::default();
        let mut resolved = inputs.iter();
        let mut mounts = Vec::with_capacity(self.mounts.len());
        for (mount, output) in &self.mounts {
            let mut pb_mount = pb::Mount {
                input: -1,
                dest: mount.target.clone(),
                output: *output,
                ..Default::default()
            };
            match &mount.kind {
                MountKind::Bind {
                    source,
                    selector,
                    readonly,
                } => {
                    if source.is_some() {
                        // inputs() yields exactly one entry per bind source, in this order.
                        if let Some(input) = resolved.next() {
                            pb_mount.input = op_inputs.index_of(input);
                        }
                    }
                    pb_mount.selector = selector.clone();
                    pb_mount.readonly = *readonly;
                    pb_mount.mount_type = pb::MountType::Bind as i32;
                }
                other => scratch_mount(other, &mut pb_mount),
            }
            mounts.push(pb_mount);
        }
        let network = match self.network {
            Network::Sandbox => pb::NetMode::Unset,
            Network::Host => pb::NetMode::Host,
            Network::None => pb::NetMode::None,
        };
        Ok(pb::Op {
            inputs: op_inputs.0,
            op: Some(pb::op::Op::Exec(pb::ExecOp {
                meta: Some(self.meta.clone()),
                mounts,
                network: network as i32,
                ..Default::default()
            })),
            platform: Some(self.platform.as_ref().unwrap_or(default_platform).to_pb()),
            constraints: Some(pb::WorkerConstraints::default()),
        })
    }
}

/// The type and options of a mount that reads no input (cache, tmpfs,
/// secret, SSH agent).
fn scratch_mount(kind: &MountKind, pb_mount: &mut pb::Mount) {
    match kind {
        MountKind::Bind { .. } => {}
        MountKind::Cache { id, sharing } => {
            pb_mount.mount_type = pb::MountType::Cache as i32;
            let sharing = match sharing {
                CacheSharing::Shared => pb::CacheSharingOpt::Shared,
                CacheSharing::Private => pb::CacheSharingOpt::Private,
                CacheSharing::Locked => pb::CacheSharingOpt::Locked,
            };
            pb_mount.cache_opt = Some(pb::CacheOpt {
                id: id.clone(),
                sharing: sharing as i32,
            });
        }
        MountKind::Tmpfs { size } => {
            pb_mount.mount_type = pb::MountType::Tmpfs as i32;
            pb_mount.tmpfs_opt = Some(pb::TmpfsOpt { size: *size });
        }
        MountKind::Secret(secret) => {
            pb_mount.mount_type = pb::MountType::Secret as i32;
            pb_mount.secret_opt = Some(pb::SecretOpt {
                id: secret.id.clone(),
                uid: secret.uid,
                gid: secret.gid,
                mode: secret.mode,
                optional: secret.optional,
            });
        }
        MountKind::Ssh(ssh) => {
            pb_mount.mount_type = pb::MountType::Ssh as i32;
            pb_mount.ssh_opt = Some(pb::SshOpt {
                id: ssh.id.clone(),
                uid: ssh.uid,
                gid: ssh.gid,
                mode: ssh.mode,
                optional: ssh.optional,
            });
        }
    }
}

/// A command run on a state: its root filesystem and its writable mounts.
#[derive(Clone, Debug)]
pub struct Exec {
    node: Arc<Node>,
    base: State,
}

impl Exec {
    pub(crate) fn new(base: &State, run: Run) -> Self {
        let mut env = base.env().to_vec();
        for (key, value) in run.env {
            set_env(&mut env, key, value);
        }
        let cwd = join_path(base.dir(), run.dir.as_deref().unwrap_or("."));
        let user = run.user.or_else(|| base.user().map(str::to_owned));

        let mut mounts: Vec<Mount> = run
            .mounts
            .into_iter()
            .map(|mut mount| {
                mount.target = join_path(&cwd, &mount.target);
                mount
            })
            .collect();
        if !mounts.iter().any(|mount| mount.target == "/") {
            mounts.push(Mount::bind("/", base, "", false));
        }
        mounts.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        let mut next_output = 0;
        let mounts = mounts
            .into_iter()
            .map(|mount| {
                let output = match mount.kind {
                    MountKind::Bind {
                        readonly: false, ..
                    } => {
                        next_output += 1;
                        next_output - 1
                    }
                    _ => -1,
                };
                (mount, output)
            })
            .collect();

        let meta = pb::Meta {
            args: run.args,
            env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            cwd,
            user: user.unwrap_or_default(),
            // Docker 26.1's worker does not enable exec.meta.removemountstubs.recursive
            // (seen in its Ping), so the older, non-recursive stub removal is used.
            remove_mount_stubs_recursive: false,
            ..Default::default()
        };
        let node = Node {
            kind: NodeKind::Exec(Box::new(ExecNode {
                meta,
                network: run.network,
                mounts,
                platform: base.platform().cloned(),
            })),
            meta: run.op,
        };
        Self {
            node: Arc::new(node),
            base: base.clone(),
        }
    }

    fn exec_node(&self) -> Option<&ExecNode> {
        match &self.node.kind {
            NodeKind::Exec(exec) => Some(exec),
            _ => None,
        }
    }

    /// The root filesystem after the command, with the settings of the state
    /// it ran on.
    pub fn root(&self) -> State {
        self.mount("/").unwrap_or_else(|| self.base.clone())
    }

    /// The filesystem at a mount `target` after the command: the new
    /// contents of a writable bind mount, the unchanged source of a readonly
    /// one; `None` for other mounts (cache, tmpfs, secret, ssh).
    pub fn mount(&self, target: &str) -> Option<State> {
        let exec = self.exec_node()?;
        let target = join_path(&exec.meta.cwd, target);
        let (mount, output) = exec.mounts.iter().find(|(m, _)| m.target == target)?;
        let MountKind::Bind {
            source, readonly, ..
        } = &mount.kind
        else {
            return None;
        };
        let output = if *readonly {
            source.clone()
        } else {
            Some(Output {
                node: Arc::clone(&self.node),
                index: *output,
            })
        };
        let state = if target == "/" {
            self.base.clone()
        } else {
            let fresh = State::scratch();
            match self.base.platform() {
                Some(platform) => fresh.with_platform(platform.clone()),
                None => fresh,
            }
        };
        Some(state.with_output(output))
    }
}
