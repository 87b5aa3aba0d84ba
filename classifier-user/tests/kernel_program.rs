//! The programs as this kernel's verifier accepted them, XDP `classify`, tc `classify_tc` and
//! the egress program `steer`: their size, and what the verifier did.

use classifier_testkit as support;

use aya::programs::ProgramInfo;
use classifier::{Classifier, Hook, load::names::PROGRAM_STEER};

/// `program` at `hook` (xdp, tc, egress).
fn check(program: &str, hook: &str, info: &ProgramInfo) {
    let translated = info.size_translated().expect("xlated size") / 8;
    // Without the count this test would prove nothing about the verifier's budget: the
    // kernel reports it (since 5.16) and aya reads it, so its absence is a failure.
    let verified = info
        .verified_instruction_count()
        .expect("the kernel did not report how many instructions the verifier processed");
    println!(
        "{program} ({hook}): id {}, {translated} instructions after translation, verifier \
         processed {verified} (limit 1,000,000)",
        info.id()
    );
    assert!(translated > 0, "the program has no translated instructions");
    assert!(
        verified > 0,
        "the verifier reports processing no instruction"
    );
    // bpftool's view of the same program, for the record (installed by `cargo xtask setup`).
    let bpftool = std::process::Command::new("bpftool")
        .args(["prog", "show", "id", &info.id().to_string()])
        .output()
        .expect("running bpftool (install it with `cargo xtask setup`)");
    assert!(bpftool.status.success(), "bpftool prog show failed");
    print!("{}", String::from_utf8_lossy(&bpftool.stdout));
    assert!(
        verified < 500_000,
        "the verifier's work ({verified}) is close to its limit: later features will not fit"
    );
}

#[test]
fn the_verifier_accepts_the_programs_and_their_size_is_reported() {
    support::require_root();
    for hook in Hook::ALL {
        let classifier = Classifier::load_for(hook).expect("loading the program");
        let info = match hook {
            Hook::Xdp => classifier.xdp().expect("program").info(),
            Hook::Tc => classifier.tc().expect("program").info(),
        }
        .expect("program info");
        check(hook.program(), &hook.to_string(), &info);
    }
    let mut classifier = Classifier::load().expect("loading the program");
    let info = classifier
        .steer_mut()
        .expect("loading the egress program")
        .info()
        .expect("program info");
    check(PROGRAM_STEER, "egress", &info);
}

/// The object declares exactly the maps the user side names (`load::names`): a map added,
/// renamed or dropped on one side only fails here, rather than at a router's first attach
/// (a missing map) or never (a map the user side does not pin, silently reset by every
/// reload).
#[test]
fn the_object_declares_exactly_the_maps_the_user_side_names() {
    let object = aya_obj::Object::parse(classifier::load::EBPF_OBJECT).expect("parsing the object");
    let mut declared: Vec<&str> = object
        .maps
        .keys()
        .map(String::as_str)
        // The sections the compiler makes for statics and aya-log's own maps.
        .filter(|name| !name.starts_with('.') && !name.starts_with("AYA_"))
        .collect();
    declared.sort_unstable();
    let mut named: Vec<&str> = classifier::load::names::ALL_MAPS
        .iter()
        .chain(&classifier::load::names::UNPINNED_MAPS)
        .copied()
        .collect();
    named.sort_unstable();
    assert_eq!(
        declared, named,
        "the object's maps (left) and the user side's names (right)"
    );
}
