//! Running commands with `-j` against one pin directory, keeping each document with the
//! schema it must satisfy, and knowing which commands `classifier --help` has, so that a
//! command no test held to a schema is found.

use std::{
    io::{BufRead as _, BufReader},
    process::Stdio,
};

use serde_json::Value;

use crate::cli::{Cli, Ran, binary};

/// One document a command printed, and the schema it must satisfy.
pub struct Printed {
    pub command: String,
    pub schema: &'static str,
    pub document: Value,
}

/// Runs commands with `-j` against one pin directory and keeps what they printed.
pub struct Contract {
    pub cli: Cli,
    /// Every leaf command of `classifier --help` ("status", "prefixes add", ...).
    pub commands: Vec<String>,
    pub printed: Vec<Printed>,
}

impl Contract {
    pub fn new(cli: Cli) -> Self {
        Self {
            cli,
            commands: leaf_commands(),
            printed: Vec::new(),
        }
    }

    /// The leaf command `args` run: their first one or two words, after `--netns NAME`.
    fn command_of(&self, args: &[&str]) -> String {
        let words: Vec<&str> = match args {
            ["--netns", _, rest @ ..] => rest.to_vec(),
            _ => args.to_vec(),
        };
        let two = words.iter().take(2).copied().collect::<Vec<_>>().join(" ");
        if self.commands.contains(&two) {
            two
        } else {
            words[0].to_owned()
        }
    }

    /// `classifier -j ARGS`: succeeds and prints exactly one compact document on one line.
    pub fn document(&mut self, schema: &'static str, args: &[&str]) -> Value {
        let ran = self.run_json(args);
        assert_eq!(
            ran.stdout.lines().count(),
            1,
            "`-j {}`: one document on one line: {}",
            args.join(" "),
            ran.stdout
        );
        let document = ran.json();
        self.printed.push(Printed {
            command: self.command_of(args),
            schema,
            document: document.clone(),
        });
        document
    }

    /// `classifier -j ARGS` for a stream: succeeds, and every line is one document.
    pub fn lines(&mut self, schema: &'static str, args: &[&str]) -> usize {
        let ran = self.run_json(args);
        let command = self.command_of(args);
        let mut count = 0;
        for line in ran.stdout.lines() {
            let document = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("`-j {}`: a line is not JSON ({e}): {line}", args[0]));
            self.printed.push(Printed {
                command: command.clone(),
                schema,
                document,
            });
            count += 1;
        }
        count
    }

    pub fn run_json(&self, args: &[&str]) -> Ran {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        self.cli.run(&all).ok()
    }

    /// Every document as (schema, command, document), for `json_schema::assert_conform`.
    pub fn cases(&self) -> Vec<(&str, &str, &Value)> {
        self.printed
            .iter()
            .map(|p| (p.schema, p.command.as_str(), &p.document))
            .collect()
    }

    /// The leaf commands of `classifier --help` that printed no document here.
    pub fn uncovered(&self) -> Vec<&str> {
        self.commands
            .iter()
            .map(String::as_str)
            .filter(|command| !self.printed.iter().any(|p| p.command == *command))
            .collect()
    }

    /// `stats --watch 1` under `-p`: the first `count` lines, each one whole object (a stream
    /// stays JSON Lines even when pretty is asked for).
    pub fn watch(&mut self, count: usize) {
        let mut watch = self
            .cli
            .command()
            .args(["-p", "stats", "--watch", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting stats --watch");
        let mut stdout = BufReader::new(watch.stdout.take().unwrap());
        for _ in 0..count {
            let mut line = String::new();
            stdout.read_line(&mut line).expect("reading a line");
            let document: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!("stats --watch -p: not one object a line ({e}): {line}")
            });
            assert!(
                document["total"]["packets_per_second"].is_number(),
                "{line}"
            );
            self.printed.push(Printed {
                command: "stats".to_owned(),
                schema: "stats",
                document,
            });
        }
        let _ = watch.kill();
        let _ = watch.wait();
    }
}

/// The leaf commands `classifier --help` lists, following subcommands down.
fn leaf_commands() -> Vec<String> {
    fn commands_in(path: &[&str]) -> Vec<String> {
        let output = std::process::Command::new(binary())
            .args(path)
            .arg("--help")
            .output()
            .expect("classifier --help");
        let help = String::from_utf8_lossy(&output.stdout).into_owned();
        help.lines()
            .skip_while(|line| *line != "Commands:")
            .skip(1)
            .take_while(|line| !line.is_empty())
            // A name is indented by two; a wrapped description, by more.
            .filter(|line| line.starts_with("  ") && !line[2..].starts_with(' '))
            .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
            .filter(|name| name != "help")
            .collect()
    }
    let mut leaves = Vec::new();
    for command in commands_in(&[]) {
        let below = commands_in(&[&command]);
        if below.is_empty() {
            leaves.push(command);
        } else {
            leaves.extend(below.into_iter().map(|sub| format!("{command} {sub}")));
        }
    }
    assert!(leaves.len() > 10, "parsing --help found only {leaves:?}");
    leaves
}
