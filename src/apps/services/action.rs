//! What a service does with an MO: its action compiled from the
//! configuration, and the `text`, `file` and `exec` actions themselves
//! (`obey_request`). The HTTP ones are in `fetch`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::config::SmsService;
use crate::escape::{Context, EscapeError, ExecArgError, ExecArgs, Pattern, Style};

/// Most bytes of a file or a program's output that become a reply: more
/// than any `max-messages` can send.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// A service's action, compiled.
#[derive(Debug, Clone)]
pub enum Action {
    GetUrl(Pattern),
    PostUrl(Pattern),
    PostXml(Pattern),
    Text(Pattern),
    File(Pattern),
    Exec(ExecArgs),
}

/// Why an action does not compile (check-config reports it first).
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no action")]
    None,
    #[error("{0}")]
    Escape(#[from] EscapeError),
    #[error("{0}")]
    Exec(#[from] ExecArgError),
}

impl Action {
    /// The action of `service`, in `create_onetrans`'s order of precedence.
    pub fn compile(service: &SmsService) -> Result<(Action, String), ActionError> {
        let url = service.get_url.as_ref().or(service.url.as_ref());
        let (make, source): (fn(Pattern) -> Action, &String) = if let Some(u) = url {
            (Action::GetUrl, u)
        } else if let Some(u) = &service.post_url {
            (Action::PostUrl, u)
        } else if let Some(u) = &service.post_xml {
            (Action::PostXml, u)
        } else if let Some(f) = &service.file {
            (Action::File, f)
        } else if let Some(t) = &service.text {
            (Action::Text, t)
        } else if let Some(args) = &service.exec {
            return Ok((Action::Exec(ExecArgs::compile(args)?), args.join(" ")));
        } else {
            return Err(ActionError::None);
        };
        Ok((make(Pattern::compile(source)?), source.clone()))
    }
}

/// A file's contents, at most [`MAX_OUTPUT`] bytes; `None` when it cannot
/// be read (smsbox then answers with an empty reply).
pub async fn read_file(path: &str) -> Option<Vec<u8>> {
    let file = tokio::fs::File::open(path).await.ok()?;
    let mut out = Vec::new();
    file.take(MAX_OUTPUT as u64)
        .read_to_end(&mut out)
        .await
        .ok()?;
    Some(out)
}

/// Runs the program with its arguments rendered for `ctx` (no shell), and
/// returns what it printed, at most [`MAX_OUTPUT`] bytes, within
/// `timeout`. `Err` when it cannot be started or takes too long (it is
/// killed): smsbox's "request failed".
pub async fn run(
    args: &ExecArgs,
    ctx: &Context<'_>,
    style: Style,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let argv = args.render(ctx, style);
    let Some((program, rest)) = argv.split_first() else {
        return Err("no program".into());
    };
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let work = async {
        let mut out = Vec::new();
        (&mut stdout)
            .take(MAX_OUTPUT as u64)
            .read_to_end(&mut out)
            .await
            .map_err(|e| e.to_string())?;
        // The rest of a runaway program's output is not waited for.
        drop(stdout);
        let _ = child.wait().await;
        Ok::<_, String>(out)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(format!("{program}: no end within {timeout:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_program_gets_each_argument_whole_and_no_shell() {
        let args = ExecArgs::compile(&["/bin/echo", "%a"]).unwrap();
        let ctx = Context {
            text: "hi $(touch /tmp/x); `id`",
            ..Context::default()
        };
        let out = run(&args, &ctx, Style::Text, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(out, b"hi $(touch /tmp/x); `id`\n");
    }

    #[tokio::test]
    async fn a_missing_program_or_a_slow_one_fails() {
        let missing = ExecArgs::compile(&["/nonexistent/prog"]).unwrap();
        let ctx = Context::default();
        assert!(run(&missing, &ctx, Style::Text, Duration::from_secs(1))
            .await
            .is_err());
        let slow = ExecArgs::compile(&["/bin/sleep", "5"]).unwrap();
        assert!(run(&slow, &ctx, Style::Text, Duration::from_millis(100))
            .await
            .is_err());
    }

    #[test]
    fn precedence_is_smsbox_s() {
        let service = SmsService {
            text: Some("t".into()),
            file: Some("/f".into()),
            ..SmsService::new()
        };
        let (action, source) = Action::compile(&service).unwrap();
        assert!(matches!(action, Action::File(_)));
        assert_eq!(source, "/f");
    }
}
