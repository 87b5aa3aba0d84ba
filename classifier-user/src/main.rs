//! `classifier`: the command line. `main` parses and dispatches; each subcommand is a module
//! of `cli`. Exit codes: 0 success, 2 bad input (a bad prefix, name, rule or interface, and
//! usage errors), 1 anything else.

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // `COMPLETE=bash classifier -- WORDS...`: the shell asking for candidates (the scripts
    // `classifier generate completions` writes); answers and exits, else does nothing.
    clap_complete::CompleteEnv::with_factory(<cli::Cli as clap::CommandFactory>::command)
        .completer("classifier")
        .complete();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            let bad_input = error
                .chain()
                .filter_map(|cause| cause.downcast_ref::<classifier::Error>())
                .any(classifier::Error::is_bad_input);
            ExitCode::from(if bad_input { 2 } else { 1 })
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
