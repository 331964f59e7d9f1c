//! File ops: copy, mkdir, mkfile and rm, chained in one op by [`FileActions`].

use std::sync::Arc;

use strata_proto::pb;
use strata_proto::pb::file_action::Action as PbAction;

use crate::op::{op_meta_methods, InputList, Node, NodeKind, OpMeta, Output};
use crate::state::join_path;
use crate::State;

/// A user or group, by name (looked up in the target's `/etc/passwd` and
/// `/etc/group`) or by numeric id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// By name.
    Name(String),
    /// By numeric id.
    Id(u32),
}

impl Owner {
    /// A numeric string is an id, anything else a name.
    pub fn parse(spec: &str) -> Self {
        spec.parse()
            .map_or_else(|_| Owner::Name(spec.to_owned()), Owner::Id)
    }

    fn to_pb(&self, base_input: i64) -> pb::UserOpt {
        use pb::user_opt::User;
        let user = match self {
            Owner::Name(name) => User::ByName(pb::NamedUserOpt {
                name: name.clone(),
                input: base_input,
            }),
            Owner::Id(id) => User::ById(*id),
        };
        pb::UserOpt { user: Some(user) }
    }
}

/// Ownership of created or copied files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chown {
    /// The owning user.
    pub user: Owner,
    /// The owning group; BuildKit picks the user's primary group when absent.
    pub group: Option<Owner>,
}

impl Chown {
    /// Numeric `uid:gid`.
    pub fn ids(uid: u32, gid: u32) -> Self {
        Self {
            user: Owner::Id(uid),
            group: Some(Owner::Id(gid)),
        }
    }

    /// A `user[:group]` spec as in Dockerfile `--chown`; numeric parts are ids.
    pub fn parse(spec: &str) -> Self {
        let (user, group) = match spec.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (spec, None),
        };
        Self {
            user: Owner::parse(user),
            group: group.map(Owner::parse),
        }
    }

    fn to_pb(&self, base_input: i64) -> pb::ChownOpt {
        pb::ChownOpt {
            user: Some(self.user.to_pb(base_input)),
            group: self.group.as_ref().map(|group| group.to_pb(base_input)),
        }
    }
}

/// Options of a copy; `CopyOptions::default()` copies as plain `COPY` does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// Owner of the copied files (else kept from the source).
    pub owner: Option<Chown>,
    /// Permission bits of the copied files (else kept from the source).
    pub mode: Option<u32>,
    /// Copy the target of `src` if it is a symlink.
    pub follow_symlinks: bool,
    /// Copy the contents of a `src` directory rather than the directory itself.
    pub copy_dir_contents: bool,
    /// Create missing parents of `dest`.
    pub create_dest_path: bool,
    /// Treat `src` as a glob pattern.
    pub allow_wildcard: bool,
    /// Accept a pattern that matches nothing.
    pub allow_empty_wildcard: bool,
    /// Copy only paths matching these patterns.
    pub include_patterns: Vec<String>,
    /// Skip paths matching these patterns.
    pub exclude_patterns: Vec<String>,
    /// Modification time of the copied files, in Unix nanoseconds.
    pub timestamp: Option<i64>,
}

/// File actions applied in order as one op: each works on the result of the
/// previous one. Relative paths are taken from the working directory of the
/// state they apply to (for a copy's `src`: of the state copied from).
#[derive(Clone, Debug, Default)]
pub struct FileActions {
    actions: Vec<Action>,
    op: OpMeta,
}

op_meta_methods!(FileActions);

#[derive(Clone, Debug)]
enum Action {
    Copy {
        source: Option<Output>,
        src: String,
        dest: String,
        options: CopyOptions,
    },
    Mkdir {
        path: String,
        mode: u32,
        make_parents: bool,
        owner: Option<Chown>,
    },
    Mkfile {
        path: String,
        mode: u32,
        data: Vec<u8>,
        owner: Option<Chown>,
    },
    Rm {
        path: String,
        allow_not_found: bool,
        allow_wildcard: bool,
    },
}

impl FileActions {
    /// No actions yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Copies `src` of `from` to `dest`. A `dest` ending in `/` (or `/.`)
    /// names a directory to copy into.
    pub fn copy(mut self, from: &State, src: &str, dest: &str, options: CopyOptions) -> Self {
        self.actions.push(Action::Copy {
            source: from.output.clone(),
            src: join_path(from.dir(), src),
            dest: dest.to_owned(),
            options,
        });
        self
    }

    /// Creates a directory with permission bits `mode`.
    pub fn mkdir(
        mut self,
        path: &str,
        mode: u32,
        make_parents: bool,
        owner: Option<Chown>,
    ) -> Self {
        self.actions.push(Action::Mkdir {
            path: path.to_owned(),
            mode,
            make_parents,
            owner,
        });
        self
    }

    /// Creates a file with permission bits `mode` holding `data`.
    pub fn mkfile(
        mut self,
        path: &str,
        mode: u32,
        data: impl Into<Vec<u8>>,
        owner: Option<Chown>,
    ) -> Self {
        self.actions.push(Action::Mkfile {
            path: path.to_owned(),
            mode,
            data: data.into(),
            owner,
        });
        self
    }

    /// Removes a file or directory.
    pub fn rm(mut self, path: &str, allow_not_found: bool, allow_wildcard: bool) -> Self {
        self.actions.push(Action::Rm {
            path: path.to_owned(),
            allow_not_found,
            allow_wildcard,
        });
        self
    }

    /// Whether no action was added.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The new state; without actions, `base` itself.
    pub(crate) fn apply(self, base: &State) -> State {
        if self.actions.is_empty() {
            return base.clone();
        }
        let dir = base.dir();
        let actions = self
            .actions
            .into_iter()
            .map(|action| match action {
                Action::Copy {
                    source,
                    src,
                    dest,
                    options,
                } => Action::Copy {
                    source,
                    src,
                    dest: dest_path(dir, &dest),
                    options,
                },
                Action::Mkdir {
                    path,
                    mode,
                    make_parents,
                    owner,
                } => Action::Mkdir {
                    path: join_path(dir, &path),
                    mode,
                    make_parents,
                    owner,
                },
                Action::Mkfile {
                    path,
                    mode,
                    data,
                    owner,
                } => Action::Mkfile {
                    path: join_path(dir, &path),
                    mode,
                    data,
                    owner,
                },
                Action::Rm {
                    path,
                    allow_not_found,
                    allow_wildcard,
                } => Action::Rm {
                    path: join_path(dir, &path),
                    allow_not_found,
                    allow_wildcard,
                },
            })
            .collect();
        let node = Node {
            kind: NodeKind::File(FileNode {
                base: base.output.clone(),
                actions,
            }),
            meta: self.op,
        };
        base.with_output(Some(Output {
            node: Arc::new(node),
            index: 0,
        }))
    }
}

/// A destination path, keeping a trailing `/` or `/.` that says "into this
/// directory" (as Go's client does).
fn dest_path(dir: &str, dest: &str) -> String {
    let mut path = join_path(dir, dest);
    if dest.ends_with("/.") {
        if path != "/" {
            path.push('/');
        }
        path.push('.');
    } else if dest.ends_with('/') && !path.ends_with('/') {
        path.push('/');
    }
    path
}

/// A file op as it will be emitted, paths resolved.
#[derive(Debug)]
pub(crate) struct FileNode {
    base: Option<Output>,
    actions: Vec<Action>,
}

impl FileNode {
    /// The base state first, then each copy's source, in action order.
    pub(crate) fn inputs(&self) -> Vec<&Output> {
        let sources = self.actions.iter().filter_map(|action| match action {
            Action::Copy { source, .. } => source.as_ref(),
            _ => None,
        });
        self.base.iter().chain(sources).collect()
    }

    pub(crate) fn lower(&self, inputs: &[pb::Input]) -> pb::Op {
        let mut op_inputs = InputList::default();
        let mut resolved = inputs.iter();
        let mut next_index = |present: bool| match (present, resolved.next()) {
            (true, Some(input)) => op_inputs.index_of(input),
            _ => -1,
        };
        let base_input = next_index(self.base.is_some());
        let secondary: Vec<i64> = self
            .actions
            .iter()
            .map(|action| match action {
                Action::Copy { source, .. } => next_index(source.is_some()),
                _ => -1,
            })
            .collect();
        let input_count = op_inputs.0.len() as i64;
        let last = self.actions.len().saturating_sub(1);
        let actions = self
            .actions
            .iter()
            .zip(secondary)
            .enumerate()
            .map(|(i, (action, secondary_input))| pb::FileAction {
                // Action n > 0 works on the result of action n - 1, which is
                // addressed past the real inputs.
                input: if i == 0 {
                    base_input
                } else {
                    input_count + i as i64 - 1
                },
                secondary_input,
                output: if i == last { 0 } else { -1 },
                action: Some(action.to_pb(base_input)),
            })
            .collect();
        pb::Op {
            inputs: op_inputs.0,
            op: Some(pb::op::Op::File(pb::FileOp { actions })),
            // File ops are not platform specific.
            platform: None,
            constraints: Some(pb::WorkerConstraints::default()),
        }
    }
}

impl Action {
    fn to_pb(&self, base_input: i64) -> PbAction {
        let owner = |owner: &Option<Chown>| owner.as_ref().map(|chown| chown.to_pb(base_input));
        match self {
            Action::Copy {
                src, dest, options, ..
            } => PbAction::Copy(pb::FileActionCopy {
                src: src.clone(),
                dest: dest.clone(),
                owner: owner(&options.owner),
                mode: options.mode.map_or(-1, |mode| (mode & 0o7777) as i32),
                follow_symlink: options.follow_symlinks,
                dir_copy_contents: options.copy_dir_contents,
                attempt_unpack_docker_compatibility: false,
                create_dest_path: options.create_dest_path,
                allow_wildcard: options.allow_wildcard,
                allow_empty_wildcard: options.allow_empty_wildcard,
                timestamp: options.timestamp.unwrap_or(-1),
                include_patterns: options.include_patterns.clone(),
                exclude_patterns: options.exclude_patterns.clone(),
            }),
            Action::Mkdir {
                path,
                mode,
                make_parents,
                owner: chown,
            } => PbAction::Mkdir(pb::FileActionMkDir {
                path: path.clone(),
                mode: (mode & 0o777) as i32,
                make_parents: *make_parents,
                owner: owner(chown),
                timestamp: -1,
            }),
            Action::Mkfile {
                path,
                mode,
                data,
                owner: chown,
            } => PbAction::Mkfile(pb::FileActionMkFile {
                path: path.clone(),
                mode: (mode & 0o777) as i32,
                data: data.clone(),
                owner: owner(chown),
                timestamp: -1,
            }),
            Action::Rm {
                path,
                allow_not_found,
                allow_wildcard,
            } => PbAction::Rm(pb::FileActionRm {
                path: path.clone(),
                allow_not_found: *allow_not_found,
                allow_wildcard: *allow_wildcard,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_keeps_directory_markers() {
        assert_eq!(dest_path("/app", "out/"), "/app/out/");
        assert_eq!(dest_path("/app", "."), "/app");
        assert_eq!(dest_path("/app", "./"), "/app/");
        assert_eq!(dest_path("/", "/."), "/.");
        assert_eq!(dest_path("/app", "x/."), "/app/x/.");
    }

    #[test]
    fn chown_spec() {
        assert_eq!(Chown::parse("1000:1000"), Chown::ids(1000, 1000));
        assert_eq!(
            Chown::parse("app"),
            Chown {
                user: Owner::Name("app".into()),
                group: None
            }
        );
    }
}
