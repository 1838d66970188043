//! Which files the server may read: the workspace root, the roots given with `--allow`, and
//! the roots the client declares (`roots/list`). Everything else is refused with an error that
//! names the allowed roots.
//!
//! A path is checked twice: lexically (after joining it to the workspace root and folding
//! `.`/`..`), so that a path outside the roots is refused without saying whether it exists, and
//! again after `canonicalize`, so that a symlink inside a root cannot lead out of it.

use std::path::{Component, Path, PathBuf};

/// The roots a request may read under (canonical paths).
#[derive(Debug, Clone)]
pub(crate) struct Roots {
    /// The workspace root: relative paths are resolved against it.
    pub(crate) workspace: PathBuf,
    /// Every allowed root, the workspace first.
    pub(crate) allowed: Vec<PathBuf>,
}

impl Roots {
    pub(crate) fn new(workspace: PathBuf, extra: &[PathBuf], client: &[PathBuf]) -> Roots {
        let mut allowed = vec![workspace.clone()];
        for r in extra.iter().chain(client) {
            if !allowed.contains(r) {
                allowed.push(r.clone());
            }
        }
        Roots { workspace, allowed }
    }

    fn names(&self) -> String {
        self.allowed
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The canonical path of `requested` if it lies under an allowed root.
    pub(crate) fn resolve(&self, requested: &str) -> Result<PathBuf, String> {
        let requested = requested.trim();
        if requested.is_empty() {
            return Err("`path` is empty".into());
        }
        let requested = requested.strip_prefix("file://").unwrap_or(requested);
        let joined = self.workspace.join(requested);
        let lexical = normalize(&joined);
        if !self.allowed.iter().any(|r| lexical.starts_with(r)) {
            return Err(self.outside(requested));
        }
        let canonical = std::fs::canonicalize(&lexical).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("{requested}: no such file or directory")
            } else {
                format!("{requested}: {e}")
            }
        })?;
        if !self.allowed.iter().any(|r| canonical.starts_with(r)) {
            return Err(format!(
                "{} (it resolves through a symbolic link to a place outside them)",
                self.outside(requested)
            ));
        }
        Ok(canonical)
    }

    /// Whether an already canonical path (a file found inside a folder) is under a root.
    pub(crate) fn contains(&self, canonical: &Path) -> bool {
        self.allowed.iter().any(|r| canonical.starts_with(r))
    }

    pub(crate) fn outside(&self, requested: &str) -> String {
        format!(
            "{requested} is outside the allowed roots ({}); pisama mcp reads only under the workspace root, the roots given with --allow and the roots the client declares",
            self.names()
        )
    }
}

/// Folds `.` and `..` without touching the file system (`..` at the root stays at the root).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A `file://` URI from `roots/list` as a canonical local path (other schemes are ignored).
pub(crate) fn root_from_uri(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    // `file:///home/x` has an empty authority; `file://localhost/home/x` names this machine.
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    let decoded = percent_decode(path);
    std::fs::canonicalize(decoded).ok()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(dir: &Path) -> Roots {
        Roots::new(std::fs::canonicalize(dir).expect("tempdir"), &[], &[])
    }

    #[test]
    fn relative_paths_resolve_under_the_workspace() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.json"), "{}").expect("write");
        let r = roots(dir.path());
        let p = r.resolve("a.json").expect("inside");
        assert!(p.ends_with("a.json"));
        assert!(r.resolve("./sub/../a.json").is_ok());
    }

    #[test]
    fn traversal_and_absolute_paths_outside_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = roots(dir.path());
        for bad in [
            "../../etc/passwd",
            "/etc/passwd",
            "file:///etc/passwd",
            "a/../../x",
        ] {
            let e = r.resolve(bad).expect_err(bad);
            assert!(e.contains("outside the allowed roots"), "{bad}: {e}");
            assert!(e.contains(&dir.path().canonicalize().expect("c").display().to_string()));
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret.json"), "{}").expect("write");
        std::os::unix::fs::symlink(
            outside.path().join("secret.json"),
            dir.path().join("link.json"),
        )
        .expect("symlink");
        let e = roots(dir.path())
            .resolve("link.json")
            .expect_err("symlink out");
        assert!(e.contains("symbolic link"), "{e}");
    }

    #[test]
    fn file_uris_become_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let uri = format!("file://{}", dir.path().display()).replace(' ', "%20");
        assert_eq!(
            root_from_uri(&uri),
            Some(dir.path().canonicalize().expect("c"))
        );
        assert_eq!(root_from_uri("https://example.com/x"), None);
    }
}
