//! The classifier on the lab's router at the hook a test asks for, and the check, at the
//! end of the test, that it is still there: a test of tc must not pass by running XDP.

use classifier::Hook;
use classifier_lab::{Lab, ROUTER_INGRESS};

use crate::cli::Cli;

/// `attach r0 r1 r2 --hook HOOK` in the router; fails unless attach names `hook` for each.
pub fn attach_at(cli: &Cli, lab: &Lab, hook: Hook) {
    let mut args = vec!["--netns", lab.router.name(), "attach"];
    args.extend(ROUTER_INGRESS);
    args.extend(["--hook", hook.name()]);
    let attached = cli.run(&args).ok();
    for interface in ROUTER_INGRESS {
        assert!(
            attached
                .stdout
                .contains(&format!("attached to {interface} ({hook} ")),
            "{}",
            attached.stdout
        );
    }
}

/// Fails unless `status` shows the classifier at `hook` on each of the router's ingress
/// interfaces, and nowhere else.
pub fn assert_attached_at(cli: &Cli, hook: Hook) {
    let status = cli.run(&["status", "--json"]).ok().json();
    let name = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    let mut hooks: Vec<(String, String)> = status["interfaces"]
        .as_array()
        .expect("status lists interfaces")
        .iter()
        .map(|i| (name(&i["interface"]), name(&i["hook"])))
        .collect();
    hooks.sort();
    let expected = ROUTER_INGRESS.map(|i| (i.to_owned(), hook.name().to_owned()));
    assert_eq!(hooks, expected, "where status shows the classifier");
}
