//! Running the binary and finding fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The result of one `pisama` run.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

pub(crate) fn finish(out: &Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pisama"));
    cmd.env_remove("RUST_LOG").env("NO_COLOR", "1");
    cmd
}

/// Runs `pisama ARGS` with no stdin.
pub(crate) fn pisama(args: &[&str]) -> Run {
    finish(
        &command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run pisama"),
    )
}

/// Runs `pisama ARGS` feeding `stdin`.
pub(crate) fn pisama_stdin(args: &[&str], stdin: &[u8]) -> Run {
    use std::io::Write;
    let mut child = command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pisama");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    finish(&out)
}

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn fixtures() -> PathBuf {
    root().join("fixtures/traces")
}

/// `../shared/bench` when it is there.
pub(crate) fn bench_dir() -> Option<PathBuf> {
    let dir = root().join("../shared/bench");
    dir.is_dir().then_some(dir)
}

/// Every file under a folder, sorted.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
