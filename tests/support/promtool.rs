//! Prometheus' own checker (Debian package `prometheus`): `promtool check
//! metrics` over a scrape, `promtool check rules` over a rules file. Like Kannel: without it a test prints
//! that it is skipped, except under CI (`CI=true`), where it fails.

use std::io::Write;
use std::process::{Command, Stdio};

/// promtool, as installed by Debian's `prometheus` package.
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// Whether promtool is installed; prints why `test` skips its check, or
/// panics under CI, when it is not.
pub fn require_promtool(test: &str) -> bool {
    if std::path::Path::new(PROMTOOL).is_file() {
        return true;
    }
    if super::in_ci() {
        panic!(
            "{test}: promtool is required under CI but {PROMTOOL} is missing; \
             install it with `apt-get install -y prometheus`"
        );
    }
    eprintln!("{test}: promtool check skipped: {PROMTOOL} not installed");
    false
}

/// `promtool check metrics` over `text`: `Err` with what it printed when
/// it does not accept it (a parse error or a lint problem).
pub fn check_metrics(text: &str) -> Result<(), String> {
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {PROMTOOL}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("writing to promtool: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for promtool: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool ({}): {said}", out.status))
    }
}

/// `promtool check rules FILE`: `Err` with what it printed when it does
/// not accept the rules file.
pub fn check_rules(file: &std::path::Path) -> Result<(), String> {
    let out = Command::new(PROMTOOL)
        .args(["check", "rules"])
        .arg(file)
        .output()
        .map_err(|e| format!("cannot run {PROMTOOL}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
