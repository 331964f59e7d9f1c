//! `[user]`: the user policy.

use super::*;

impl Resolver<'_> {
    pub(super) fn user(&mut self, u: &Spanned<raw::RawUser>, vars: &Vars) -> Option<UserPolicy> {
        let raw = u.get_ref();
        let (name, group, mut valid) = self.user_names(raw, vars)?;
        let uid = self.id(&raw.uid, "uid", vars);
        let gid = match &raw.gid {
            Some(g) => self.id(g, "gid", vars),
            None => uid,
        };
        let home = match &raw.home {
            Some(h) => self.passwd_path(h, "home", vars, &mut valid)?,
            None => format!("/home/{name}"),
        };
        let shell = match &raw.shell {
            Some(s) => self.passwd_path(s, "shell", vars, &mut valid)?,
            None => "/bin/sh".to_owned(),
        };
        let on_conflict = self.on_conflict(raw);
        Some(UserPolicy {
            name,
            group,
            uid: uid?,
            gid: gid?,
            home,
            shell,
            on_conflict,
        })
        .filter(|_| valid)
    }

    /// The user and group names (the group defaults to the user's), and
    /// whether both are valid.
    fn user_names(&mut self, raw: &raw::RawUser, vars: &Vars) -> Option<(String, String, bool)> {
        let name = self.interpolate(&raw.name, vars)?;
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 32
                && s.bytes()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == b'_')
                && s.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-')
                })
        };
        let mut valid = true;
        if !ok(&name) {
            self.error(ErrorCode::UserPolicy, raw.name.span(), format!("`{name}` is not a valid user name"), "use at most 32 lowercase letters, digits, `_` and `-`, starting with a letter or `_`");
            valid = false;
        }
        if name == "root" {
            self.error(ErrorCode::UserPolicy, raw.name.span(), "the user policy cannot be root", "remove [user] to run as root, or set `user = \"root\"` on the components that need it");
            valid = false;
        }
        let group = match &raw.group {
            Some(g) => self.interpolate(g, vars)?,
            None => name.clone(),
        };
        // A group defaulted from an invalid user name was reported with it.
        if raw.group.is_some() && !ok(&group) {
            let span = raw.group.as_ref().map_or(raw.name.span(), Spanned::span);
            self.error(
                ErrorCode::UserPolicy,
                span,
                format!("`{group}` is not a valid group name"),
                "use lowercase letters, digits, `_` and `-`",
            );
            valid = false;
        }
        Some((name, group, valid))
    }

    /// `home` or `shell`: a path `/etc/passwd` can hold. A refused value
    /// clears `valid` but is returned, so the rest of the policy is checked.
    fn passwd_path(
        &mut self,
        s: &Spanned<String>,
        what: &str,
        vars: &Vars,
        valid: &mut bool,
    ) -> Option<String> {
        let (v, inserted) = self.expand(s, vars)?;
        if let Err(why) = values::passwd_path(&v) {
            self.refuse(
                s,
                &v,
                &inserted,
                what,
                &why,
                "write an absolute path without `:` or line breaks, e.g. `/home/app`",
            );
            *valid = false;
        }
        Some(v)
    }

    /// `on-conflict`: what to do with a base's user of the same id.
    fn on_conflict(&mut self, raw: &raw::RawUser) -> OnConflict {
        match raw.on_conflict.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("rename") => OnConflict::Rename,
            Some("error") => OnConflict::Error,
            Some(other) => {
                let span = raw.on_conflict.as_ref().map_or(0..0, Spanned::span);
                self.error(
                    ErrorCode::UnknownChoice,
                    span,
                    format!("unknown on-conflict `{other}`"),
                    "use `rename` (take over the base's user with that id) or `error`",
                );
                OnConflict::Rename
            }
        }
    }

    pub(super) fn id(&mut self, v: &Spanned<toml::Value>, what: &str, vars: &Vars) -> Option<u32> {
        let n: i64 = match v.get_ref() {
            toml::Value::Integer(i) => *i,
            toml::Value::String(s) => {
                let text = self.interpolate(&Spanned::new(v.span(), s.clone()), vars)?;
                match text.trim().parse() {
                    Ok(i) => i,
                    Err(_) => {
                        self.error(
                            ErrorCode::UserPolicy,
                            v.span(),
                            format!("{what} `{text}` is not a number"),
                            format!("give the {what} as an integer, e.g. 1000"),
                        );
                        return None;
                    }
                }
            }
            _ => {
                self.error(
                    ErrorCode::UserPolicy,
                    v.span(),
                    format!("{what} must be an integer"),
                    format!("e.g. `{what} = 1000`"),
                );
                return None;
            }
        };
        if n == 0 {
            self.error(ErrorCode::UserPolicy, v.span(), format!("{what} 0 is root"), "a user policy is for a non-root user; set `user = \"root\"` on components that must run as root");
            return None;
        }
        if !(1..=2_147_483_646).contains(&n) {
            self.error(
                ErrorCode::UserPolicy,
                v.span(),
                format!("{what} {n} is out of range"),
                format!("a {what} is between 1 and 2147483646 (1000-60000 is usual)"),
            );
            return None;
        }
        u32::try_from(n).ok()
    }
}
