//! `classifier`: the command line. `main` parses and dispatches; each subcommand is a module
//! of `cli`. Exit codes: 0 success, 2 bad input (a bad prefix, name, rule or interface, and
//! usage errors), 1 anything else; under `-j` a failure is also a JSON document on stdout.

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // `COMPLETE=bash classifier -- WORDS...`: the shell asking for candidates (the scripts
    // `classifier generate completions` writes); answers and exits, else does nothing.
    clap_complete::CompleteEnv::with_factory(<cli::Cli as clap::CommandFactory>::command)
        .completer("classifier")
        .complete();
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        // --help and --version are not failures; a refused command line under -j is.
        Err(error) => match cli::json_requested(std::env::args_os()) {
            Some(format) if error.use_stderr() => {
                let failure = cli::Failure::of_usage(&error);
                failure.report(format);
                return ExitCode::from(failure.exit_code());
            }
            _ => error.exit(),
        },
    };
    let format = args.format();
    if args.may_die_of_a_closed_pipe() {
        // `classifier flows | head` ends quietly, as `ip` and `bpftool` do, instead of
        // panicking on the closed pipe: SIGPIPE's default action, which Rust's runtime
        // ignores.
        // SAFETY: before this process starts any thread.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let failure = cli::Failure::of(&error);
            failure.report(format);
            ExitCode::from(failure.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// clap checks the whole command tree (arguments, defaults, parsers) only at run time:
    /// this catches a mistake before a user does.
    #[test]
    fn the_command_line_is_consistent() {
        super::cli::Cli::command().debug_assert();
    }
}
