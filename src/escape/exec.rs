//! The argument list of a program run for a message (an `exec` service):
//! each argument its own pattern, expanded without a shell.

use super::{Context, EscapeError, Pattern, Style};

/// A program and its arguments, each a compiled [`Pattern`].
///
/// smsbox expands one command line and hands it to `/bin/sh` (`popen`),
/// so a message's words reach the shell; its URL-encoding happens to
/// neutralize most of them, but not `%S`, `%C` or `* ' ( ) ! ~`. Here each
/// argument is expanded on its own and becomes exactly one `argv` entry:
/// nothing in a message can add an argument, quote, redirect or run
/// anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecArgs {
    args: Vec<Pattern>,
}

/// Why an argument list does not compile: argument `index` (from 0, the
/// program) has `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument {index}: {error}")]
pub struct ExecArgError {
    pub index: usize,
    pub error: EscapeError,
}

impl ExecArgs {
    /// Compiles every argument strictly ([`Pattern::compile`]).
    pub fn compile<S: AsRef<str>>(args: &[S]) -> Result<ExecArgs, ExecArgError> {
        let args = args
            .iter()
            .enumerate()
            .map(|(index, arg)| {
                Pattern::compile(arg.as_ref()).map_err(|error| ExecArgError { index, error })
            })
            .collect::<Result<_, _>>()?;
        Ok(ExecArgs { args })
    }

    /// The arguments for one message, as many as were compiled. Use
    /// [`Style::Text`] for values as they are ([`Style::Smsbox`] gives the
    /// values smsbox would have put in its command line). A NUL, which no
    /// argument can hold, is dropped.
    pub fn render(&self, ctx: &Context<'_>, style: Style) -> Vec<String> {
        self.args
            .iter()
            .map(|arg| {
                let mut value = arg.render(ctx, style);
                value.retain(|c| c != '\0');
                value
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_argument_is_expanded_alone_with_raw_values() {
        let args = ExecArgs::compile(&["/usr/bin/reply", "--from=%p", "%a", "%s"]).unwrap();
        let ctx = Context {
            text: "go $(rm -rf /); 'x' \0y",
            sender: "+49 1",
            ..Context::default()
        };
        assert_eq!(
            args.render(&ctx, Style::Text),
            [
                "/usr/bin/reply",
                "--from=+49 1",
                "go $(rm -rf /); 'x' y",
                "$(rm"
            ]
        );
        assert_eq!(
            args.render(&ctx, Style::Smsbox)[1..3],
            ["--from=%2B49+1", "go+%24(rm+-rf+%2F)%3B+'x'+%00y"]
        );
    }

    #[test]
    fn a_bad_argument_is_named() {
        let err = ExecArgs::compile(&["prog", "ok %k", "bad %x"]).unwrap_err();
        assert_eq!(err.index, 2);
        assert!(err
            .to_string()
            .starts_with("argument 2: unknown escape `%x`"));
    }
}
