//! Contention on a shaped link: an Apple bulk download beside a normal download through the
//! lab's router, whose client-side interface is shaped to 50 Mbit/s. With the classifier the
//! normal flow gets at least 80 % of the rate and the Apple flow at least its floor; without
//! it, TCP splits the link and neither gets 70 %. With the classifier at either hook, XDP or
//! tc (docs/design.md, 'The tc hook').

use classifier_testkit as support;

use std::time::Duration;

use classifier::Hook;
use classifier_lab::{Lab, htb, traffic};
use support::{
    cli::Cli,
    router::{assert_attached_at, attach_at},
};

const RATE_MBIT: f64 = 50.0;
const FLOOR_PERCENT: f64 = 10.0;
const SECONDS: f64 = 4.0;
const DURATION: Duration = Duration::from_secs(4);

/// Bytes sent by r0's normal and bulk classes so far, as HTB counts them.
fn class_bytes(lab: &Lab) -> (u64, u64) {
    htb::normal_and_bulk_bytes(&lab.router, "r0").expect("r0's classes")
}

#[test]
fn the_normal_flow_gets_its_share_and_the_apple_flow_its_floor_with_the_xdp_hook() {
    shaped_link(Hook::Xdp);
}

#[test]
fn the_normal_flow_gets_its_share_and_the_apple_flow_its_floor_with_the_tc_hook() {
    shaped_link(Hook::Tc);
}

fn shaped_link(hook: Hook) {
    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    attach_at(&cli, &lab, hook);
    let router = lab.router.name();
    cli.run(&[
        "--netns",
        router,
        "shape",
        "r0",
        "--rate",
        "50mbit",
        "--bulk-floor",
        "10",
    ])
    .ok();

    let before = class_bytes(&lab);
    let (apple, normal) = traffic::apple_beside_normal(&lab, (8100, 8101), DURATION).unwrap();
    let after = class_bytes(&lab);
    assert_attached_at(&cli, hook);
    let bulk_wire = (after.1 - before.1) as f64 * 8.0 / SECONDS / 1e6;
    println!(
        "with the classifier ({hook}): Apple {apple:5.1} Mbit/s, normal {normal:5.1} Mbit/s \
         (bulk class on the wire {bulk_wire:.1} Mbit/s)"
    );

    cli.run(&["--netns", router, "detach", "r0", "r1", "r2"])
        .ok();
    let (apple_off, normal_off) =
        traffic::apple_beside_normal(&lab, (8102, 8103), DURATION).unwrap();
    println!(
        "without the classifier:   Apple {apple_off:5.1} Mbit/s, normal {normal_off:5.1} Mbit/s"
    );

    assert!(
        normal >= 0.8 * RATE_MBIT,
        "normal flow got {normal:.1} Mbit/s"
    );
    // The floor is a wire rate; goodput is lower by the headers, so the check is on the wire
    // bytes of the bulk class, with 5 % for the edges of the measuring window.
    let floor = RATE_MBIT * FLOOR_PERCENT / 100.0;
    assert!(
        bulk_wire >= 0.95 * floor,
        "Apple flow got {bulk_wire:.1} Mbit/s on the wire"
    );
    assert!(apple > 0.8 * floor, "Apple goodput {apple:.1} Mbit/s");
    for (name, got) in [("Apple", apple_off), ("normal", normal_off)] {
        assert!(
            got < 0.7 * RATE_MBIT,
            "{name} got {got:.1} Mbit/s without the classifier"
        );
    }

    cli.run(&["--netns", router, "shape", "r0", "--off"]).ok();
    let qdisc = lab
        .router
        .exec("tc", &["-j", "qdisc", "show", "dev", "r0"])
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&qdisc.stdout).contains("htb"),
        "HTB left on r0"
    );
}
