//! Build script: records the git revision the binary is built from, for
//! `--version`. The revision comes from `FPR_GIT_REVISION` when set (builds
//! without `.git`, such as the Docker image), else from
//! `git rev-parse --short HEAD`, else it is "unknown". Nothing here can fail
//! the build.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=FPR_GIT_REVISION");
    let revision = std::env::var("FPR_GIT_REVISION")
        .ok()
        .map(|r| r.trim().to_owned())
        .filter(|r| is_revision(r))
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".to_owned());
    for path in git_paths_to_watch() {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rustc-env=FPR_BUILD_REVISION={revision}");
}

/// A revision is printed on one line: hex digits and a few safe characters.
fn is_revision(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+'))
}

/// The output of `git args…`, trimmed, when git runs and succeeds.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

fn git_revision() -> Option<String> {
    git(&["rev-parse", "--short", "HEAD"]).filter(|r| is_revision(r))
}

/// The files whose change means a new revision: HEAD, the branch it points
/// to, and the packed refs. Outside a repository: none, and the script runs
/// again only when FPR_GIT_REVISION changes.
fn git_paths_to_watch() -> Vec<String> {
    let mut paths = Vec::new();
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        paths.push(head);
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(&["rev-parse", "--git-path", branch.as_str()])
    {
        paths.push(path);
    }
    if let Some(packed) = git(&["rev-parse", "--git-path", "packed-refs"]) {
        paths.push(packed);
    }
    // A missing file would make Cargo run the script on every build.
    paths.retain(|p| std::path::Path::new(p).exists());
    paths
}
