//! The command line as shipped: `--version` with the git revision, help text
//! on every argument, and keys taken from a file or the environment rather
//! than the command line.

use std::process::{Command, Output};

use clap::CommandFactory;
use freedompay_receiver::cli::Cli;

use crate::support::{KEY, TestApp};

/// Runs the binary with no key or configuration in its environment, plus `env`.
fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_freedompay-receiver"));
    command
        .args(args)
        .env_remove("FPR_CONFIG")
        .env_remove("FPR_SECRET");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The published Platron vector V01 as name=value pairs, and its signature.
const V01_PAIRS: [&str; 6] = [
    "pg_salt=9imM909TH820jwk387",
    "pg_t_param=value3",
    "pg_a_param=value1",
    "pg_z_param[pg_q_subparam]=subvalue2",
    "pg_z_param[pg_m_subparam]=subvalue1",
    "pg_b_param=value2",
];
const V01_KEY: &str = "mypasskey";
const V01_SIG: &str = "a8a4d5a9188f24038a14a4d65c387bf7";

fn key_file(dir: &tempfile::TempDir, name: &str, contents: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

#[test]
fn version_prints_the_package_version_and_the_git_revision() {
    let out = cli(&["--version"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let prefix = format!("freedompay-receiver {} (", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&prefix), "{text}");
    let revision = text[prefix.len()..]
        .trim_end()
        .strip_suffix(')')
        .unwrap_or_else(|| panic!("no closing parenthesis: {text}"));
    assert!(
        revision == "unknown"
            || (revision.len() >= 7 && revision.chars().all(|c| c.is_ascii_alphanumeric())),
        "{text}"
    );
    // Built inside the repository, the revision is known.
    if std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.git")).exists()
        && std::env::var_os("FPR_GIT_REVISION").is_none()
    {
        assert_ne!(revision, "unknown", "{text}");
    }
}

#[test]
fn every_command_and_argument_has_help_text() {
    fn walk(command: &mut clap::Command, path: &str, missing: &mut Vec<String>) {
        command.build();
        if command.get_about().is_none() && command.get_long_about().is_none() {
            missing.push(format!("{path}: the command itself"));
        }
        for arg in command.get_arguments() {
            if arg.is_hide_set() {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path}: {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands_mut() {
            let name = format!("{path} {}", sub.get_name());
            walk(sub, &name, missing);
        }
    }
    let mut root = Cli::command();
    let mut missing = Vec::new();
    walk(&mut root, "freedompay-receiver", &mut missing);
    assert!(
        missing.is_empty(),
        "arguments without help:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_help_of_every_subcommand_prints() {
    let root = Cli::command();
    for sub in root.get_subcommands() {
        let out = cli(&[sub.get_name(), "--help"], &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            sub.get_name(),
            stderr(&out)
        );
    }
}

#[test]
fn sign_takes_the_key_from_a_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = key_file(&dir, "key", &format!("{V01_KEY}\n"));
    let mut from_file = vec!["sign", "--script", "script.php", "--secret-file", &file];
    from_file.extend(V01_PAIRS);
    let out = cli(&from_file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{V01_SIG}\n"));

    let mut from_env = vec!["sign", "--script", "script.php"];
    from_env.extend(V01_PAIRS);
    let out = cli(&from_env, &[("FPR_SECRET", V01_KEY)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{V01_SIG}\n"));

    // The file wins over the environment.
    let out = cli(&from_file, &[("FPR_SECRET", "some-other-key")]);
    assert_eq!(stdout(&out), format!("{V01_SIG}\n"));
}

#[test]
fn sign_without_a_key_or_with_an_empty_one_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut none = vec!["sign", "--script", "script.php"];
    none.extend(V01_PAIRS);
    let out = cli(&none, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--secret-file"), "{}", stderr(&out));

    let empty = key_file(&dir, "empty", "\n");
    let mut with_empty = vec!["sign", "--script", "script.php", "--secret-file", &empty];
    with_empty.extend(V01_PAIRS);
    let out = cli(&with_empty, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is empty"), "{}", stderr(&out));

    let missing = dir.path().join("absent").display().to_string();
    let mut with_missing = vec!["sign", "--script", "script.php", "--secret-file", &missing];
    with_missing.extend(V01_PAIRS);
    assert_eq!(cli(&with_missing, &[]).status.code(), Some(2));

    let out = cli(&none, &[("FPR_SECRET", "")]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn verify_takes_keys_from_files_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let old = key_file(&dir, "old", "an-old-key\n");
    let current = key_file(&dir, "current", V01_KEY);
    let signed = format!("pg_sig={V01_SIG}");
    let mut args = vec![
        "verify",
        "--script",
        "script.php",
        "--secret-file",
        &old,
        "--secret-file",
        &current,
    ];
    args.extend(V01_PAIRS);
    args.push(&signed);
    let out = cli(&args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "valid: key #2 of 2, variant canonical\n");

    let mut from_env = vec!["verify", "--script", "script.php"];
    from_env.extend(V01_PAIRS);
    from_env.push(&signed);
    let out = cli(&from_env, &[("FPR_SECRET", V01_KEY)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "valid: key #1 of 1, variant canonical\n");

    let out = cli(&from_env, &[("FPR_SECRET", "wrong")]);
    assert_eq!(out.status.code(), Some(1));
    let out = cli(&from_env, &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_takes_the_key_from_a_file_or_the_environment() {
    let app = TestApp::spawn(crate::support::Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let file = key_file(&dir, "key", &format!("{KEY}\n"));
    let url = app.url("");
    for (extra, env) in [
        (vec!["--secret-file", file.as_str()], vec![]),
        (vec![], vec![("FPR_SECRET", KEY)]),
    ] {
        let mut args = vec!["simulate", "--url", &url];
        args.extend(extra.iter().copied());
        args.extend(["--order-id", "SECRET-1", "check", "--json"]);
        let out = tokio::task::spawn_blocking({
            let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
            let env: Vec<(String, String)> = env
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect();
            move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                cli(&args, &env)
            }
        })
        .await
        .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&out), stderr(&out)));
        // Signed with the right key: the receiver verified it and answered
        // (rejected: no such order), and its answer verifies with the key.
        assert_eq!(report["http_status"], 200, "{report}");
        assert_eq!(report["signature"], "ok", "{report}");
    }
    app.stop().await;
}
