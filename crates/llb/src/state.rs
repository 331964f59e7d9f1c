//! [`State`]: an immutable filesystem value plus the settings later ops inherit.

use std::sync::Arc;

use crate::file::FileActions;
use crate::op::Output;
use crate::{CopyOptions, Exec, Image, Local, Platform, Run};

/// A filesystem (the output of an op, or scratch) together with the env,
/// working directory, user and platform that ops built on it inherit.
///
/// Every method returns a new `State`; the receiver is never changed. Clones
/// are cheap: the op graph is shared.
#[derive(Clone, Debug)]
pub struct State {
    pub(crate) output: Option<Output>,
    env: Arc<Vec<(String, String)>>,
    dir: String,
    user: Option<String>,
    platform: Option<Platform>,
}

impl State {
    /// The empty filesystem.
    pub fn scratch() -> Self {
        Self {
            output: None,
            env: Arc::default(),
            dir: "/".to_owned(),
            user: None,
            platform: None,
        }
    }

    /// An image from a registry, with default options; see [`Image`] for more.
    pub fn image(reference: &str) -> Self {
        Image::new(reference).into_state()
    }

    /// A directory of the client, by its session name (e.g. `context`); see
    /// [`Local`] for options.
    pub fn local(name: &str) -> Self {
        Local::new(name).into_state()
    }

    /// This state's settings with another filesystem.
    pub(crate) fn with_output(&self, output: Option<Output>) -> Self {
        Self {
            output,
            ..self.clone()
        }
    }

    /// Whether this is the empty filesystem.
    pub fn is_scratch(&self) -> bool {
        self.output.is_none()
    }

    /// Sets an environment variable; an existing one of that name is removed
    /// and the new one goes last, as Dockerfile `ENV` does.
    pub fn with_env(&self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let mut next = self.clone();
        set_env(Arc::make_mut(&mut next.env), key.into(), value.into());
        next
    }

    /// The environment, in order.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The value of one environment variable.
    pub fn get_env(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets the working directory; a relative path is taken from the current one.
    pub fn with_dir(&self, path: &str) -> Self {
        Self {
            dir: join_path(&self.dir, path),
            ..self.clone()
        }
    }

    /// The working directory (absolute; `/` by default).
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// Sets the user ops run as (`name`, `uid`, `name:group`, ...).
    pub fn with_user(&self, user: impl Into<String>) -> Self {
        Self {
            user: Some(user.into()),
            ..self.clone()
        }
    }

    /// The user, if one was set.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Sets the platform of ops built on this state.
    pub fn with_platform(&self, platform: Platform) -> Self {
        Self {
            platform: Some(platform),
            ..self.clone()
        }
    }

    /// The platform, if one was set (else the marshal default applies).
    pub fn platform(&self) -> Option<&Platform> {
        self.platform.as_ref()
    }

    /// Runs a command on this state and returns the resulting root filesystem,
    /// with this state's env, dir, user and platform.
    pub fn run(&self, run: impl Into<Run>) -> State {
        self.exec(run).root()
    }

    /// Runs a command and returns the [`Exec`], which also gives access to
    /// the outputs of writable mounts.
    pub fn exec(&self, run: impl Into<Run>) -> Exec {
        Exec::new(self, run.into())
    }

    /// Applies file actions (copy, mkdir, mkfile, rm) in one op.
    pub fn file(&self, actions: FileActions) -> State {
        actions.apply(self)
    }

    /// Copies `src` of `from` to `dest` of this state.
    pub fn copy(&self, from: &State, src: &str, dest: &str, options: CopyOptions) -> State {
        self.file(FileActions::new().copy(from, src, dest, options))
    }
}

impl Default for State {
    fn default() -> Self {
        Self::scratch()
    }
}

/// Replaces or appends `key`, moving it last.
pub(crate) fn set_env(env: &mut Vec<(String, String)>, key: String, value: String) {
    env.retain(|(k, _)| *k != key);
    env.push((key, value));
}

/// `path` resolved against the absolute directory `base`, cleaned like Go's
/// `path.Join` (no `.`, no `..`, no double or trailing slashes).
pub(crate) fn join_path(base: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{base}/{path}")
    };
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_path_cleans() {
        assert_eq!(join_path("/", "app"), "/app");
        assert_eq!(join_path("/app", "src/../lib/"), "/app/lib");
        assert_eq!(join_path("/app", "/etc//x/."), "/etc/x");
        assert_eq!(join_path("/", "../.."), "/");
    }

    #[test]
    fn settings_carry_forward() {
        let base = State::scratch()
            .with_env("A", "1")
            .with_env("B", "2")
            .with_env("A", "3")
            .with_dir("/app")
            .with_dir("src")
            .with_user("builder");
        assert_eq!(
            base.env(),
            [("B".into(), "2".into()), ("A".into(), "3".into())]
        );
        assert_eq!(base.get_env("A"), Some("3"));
        assert_eq!(base.dir(), "/app/src");
        assert_eq!(base.user(), Some("builder"));
        let after = base.run("true");
        assert_eq!(after.env(), base.env());
        assert_eq!(after.dir(), "/app/src");
        assert_eq!(after.user(), Some("builder"));
    }
}
