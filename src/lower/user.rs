//! The user policy on any base: a POSIX sh script that edits
//! `/etc/passwd`, `/etc/group` and their shadows directly, so it needs no
//! `useradd`/`adduser` (busybox bases have neither) and behaves the same
//! everywhere.
//!
//! Behaviour on a base that already has the policy's ids:
//! - same uid/gid with the policy's names: nothing to do;
//! - `on-conflict = "rename"` (default): the existing user/group with that
//!   id is taken over: its line is replaced by the policy's (Ubuntu's
//!   `ubuntu`, uid 1000, becomes `fedbiomed`); its old home stays as it is;
//! - `on-conflict = "error"`: the build fails naming the clash;
//! - the policy's *name* with another id is always an error (renumbering
//!   a user would leave files owned by the old id behind).

use super::shell::quote;
use crate::graph::{OnConflict, UserPolicy};

/// The script run (as root, network none) to apply the policy.
pub fn script(p: &UserPolicy) -> String {
    let mode = match p.on_conflict {
        OnConflict::Rename => "rename",
        OnConflict::Error => "error",
    };
    format!(
        r#"set -eu
u={u}; g={g}; uid={uid}; gid={gid}; home={home}; shell={shell}; mode={mode}
fail() {{ echo "strata: user policy: $*" >&2; exit 1; }}
touch /etc/passwd /etc/group
field() {{ awk -F: -v k="$2" -v c="$3" -v o="$4" '$c == k {{ print $o; exit }}' "$1"; }}
drop() {{ awk -F: -v k="$2" -v c="$3" '$c != k' "$1" > "$1.strata" && cat "$1.strata" > "$1" && rm -f "$1.strata"; }}
# group
old=$(field /etc/group "$gid" 3 1)
byname=$(field /etc/group "$g" 1 3)
[ -z "$byname" ] || [ "$byname" = "$gid" ] || fail "group $g exists with gid $byname, the policy says $gid: change [user].gid or the base"
if [ "$old" != "$g" ]; then
  if [ -n "$old" ]; then
    [ "$mode" = rename ] || fail "gid $gid already belongs to group $old in the base image (on-conflict = error)"
    echo "strata: taking over group $old (gid $gid) as $g" >&2
    drop /etc/group "$gid" 3
    [ ! -f /etc/gshadow ] || drop /etc/gshadow "$old" 1
  fi
  echo "$g:x:$gid:" >> /etc/group
  [ ! -f /etc/gshadow ] || echo "$g:!::" >> /etc/gshadow
fi
# user
[ -x "$shell" ] || {{ echo "strata: $shell is not in this base, using /bin/sh" >&2; shell=/bin/sh; }}
old=$(field /etc/passwd "$uid" 3 1)
byname=$(field /etc/passwd "$u" 1 3)
[ -z "$byname" ] || [ "$byname" = "$uid" ] || fail "user $u exists with uid $byname, the policy says $uid: change [user].uid or the base"
if [ -n "$old" ] && [ "$old" != "$u" ]; then
  [ "$mode" = rename ] || fail "uid $uid already belongs to user $old in the base image (on-conflict = error)"
  echo "strata: taking over user $old (uid $uid) as $u" >&2
fi
drop /etc/passwd "$uid" 3
echo "$u:x:$uid:$gid::$home:$shell" >> /etc/passwd
if [ -f /etc/shadow ]; then
  [ -z "$old" ] || drop /etc/shadow "$old" 1
  drop /etc/shadow "$u" 1
  echo "$u:!::0:99999:7:::" >> /etc/shadow
fi
mkdir -p "$home"
chown "$uid:$gid" "$home"
chmod 0755 "$home"
"#,
        u = quote(&p.name),
        g = quote(&p.group),
        uid = p.uid,
        gid = p.gid,
        home = quote(&p.home),
        shell = quote(&p.shell),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn policy(mode: OnConflict) -> UserPolicy {
        UserPolicy {
            name: "fedbiomed".into(),
            group: "fedbiomed".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/fedbiomed".into(),
            shell: "/bin/bash".into(),
            on_conflict: mode,
        }
    }

    /// Runs the script against a fake root (paths rewritten into a temp dir).
    fn run_in(root: &std::path::Path, p: &UserPolicy) -> std::process::Output {
        let s = script(p)
            .replace("/etc/", &format!("{}/etc/", root.display()))
            .replace(
                "mkdir -p \"$home\"",
                &format!("mkdir -p \"{}$home\"", root.display()),
            )
            .replace("chown \"$uid:$gid\" \"$home\"", "true")
            .replace("chmod 0755 \"$home\"", "true");
        Command::new("sh")
            .arg("-c")
            .arg(s)
            .output()
            .expect("sh runs")
    }

    fn root_with(passwd: &str, group: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "strata-user-{}-{}",
            std::process::id(),
            passwd.len() * 31 + group.len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).expect("temp dir");
        std::fs::write(dir.join("etc/passwd"), passwd).expect("write");
        std::fs::write(dir.join("etc/group"), group).expect("write");
        dir
    }

    #[test]
    fn adds_the_user_on_a_bare_base() {
        let root = root_with("root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\n");
        let out = run_in(&root, &policy(OnConflict::Rename));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).expect("read");
        assert!(passwd.contains("root:x:0:0"));
        assert!(
            passwd.contains("fedbiomed:x:1000:1000::/home/fedbiomed:/bin/bash"),
            "{passwd}"
        );
        let group = std::fs::read_to_string(root.join("etc/group")).expect("read");
        assert!(group.contains("fedbiomed:x:1000:"));
        assert!(root.join("home/fedbiomed").is_dir());
    }

    #[test]
    fn takes_over_an_existing_uid_or_fails_naming_it() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n";
        let group = "root:x:0:\nubuntu:x:1000:\n";
        let root = root_with(passwd, group);
        let out = run_in(&root, &policy(OnConflict::Rename));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let p = std::fs::read_to_string(root.join("etc/passwd")).expect("read");
        assert!(!p.contains("ubuntu:x"), "{p}");
        assert!(p.contains("fedbiomed:x:1000:1000"));

        let root = root_with(passwd, group);
        let out = run_in(&root, &policy(OnConflict::Error));
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("gid 1000 already belongs to group ubuntu"),
            "{err}"
        );
    }

    #[test]
    fn a_name_with_another_id_is_an_error() {
        let root = root_with("fedbiomed:x:1001:1000::/h:/bin/sh\n", "fedbiomed:x:1000:\n");
        let out = run_in(&root, &policy(OnConflict::Rename));
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("user fedbiomed exists with uid 1001")
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("/home/x"), "/home/x");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
