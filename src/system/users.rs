//! Who a `user` key names: a numeric uid, or a name looked up in `<root>/etc/passwd`.
//! Resolved once at start-up; the checks then compare uids the kernel reports, never names.

use std::path::Path;

use crate::system::sysfile;
use crate::system::Root;

/// Why `user`, as written in a config, cannot name a user (`None` when it can): the
/// static rule, before anything is looked up.
pub fn bad_user_key(user: &str) -> Option<String> {
    (user.is_empty() || user.contains(|c: char| c == ':' || c == '/' || c.is_control())).then(|| {
        format!(
            "`{}` is not a user name or uid: write a user of /etc/passwd (e.g. hacluster) or a numeric uid",
            user.escape_debug()
        )
    })
}

/// The uid `user` names: digits are a uid as written; anything else is looked up in
/// `<root>/etc/passwd`. The error says what was wrong and what to write instead.
pub fn resolve_uid(root: &Root, user: &str) -> Result<u32, String> {
    if let Ok(uid) = user.parse::<u32>() {
        return Ok(uid);
    }
    if user == "root" {
        return Ok(0);
    }
    let passwd = root.resolve(Path::new("/etc/passwd"));
    let text = sysfile::read_capped(root, &passwd, sysfile::TABLE)
        .map_err(|e| format!("user `{user}`: cannot read {e}; write a numeric uid instead"))?;
    text.lines()
        .find_map(|line| {
            let mut f = line.split(':');
            (f.next() == Some(user)).then(|| f.nth(1).and_then(|u| u.parse().ok()))?
        })
        .ok_or_else(|| {
            format!("user `{user}` is not in /etc/passwd: write an existing user or a numeric uid")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        assert_eq!(resolve_uid(&root, "0"), Ok(0));
        assert_eq!(resolve_uid(&root, "65534"), Ok(65534));
        assert_eq!(resolve_uid(&root, "root"), Ok(0));
        let e = resolve_uid(&root, "hacluster").unwrap_err();
        assert!(
            e.contains("cannot read") && e.contains("numeric uid"),
            "{e}"
        );
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nhacluster:x:189:189::/var/lib/pacemaker:/sbin/nologin\nbad:x:zz:1::/:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(resolve_uid(&root, "hacluster"), Ok(189));
        assert!(resolve_uid(&root, "bad").is_err());
        let e = resolve_uid(&root, "nobody").unwrap_err();
        assert!(e.contains("not in /etc/passwd"), "{e}");
    }
}
