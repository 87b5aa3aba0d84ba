//! Values the shell completes from the live system, where that is cheap: interface names
//! from /sys/class/net, list names from the config file and, in a root shell, the pinned
//! state. The shell calls the binary back for them (`COMPLETE=bash classifier -- ...`, see
//! `generate completions`); nothing here mounts, locks or changes anything, and a failure
//! means fewer candidates, never an error.

use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};

use classifier::{
    ClassifierMaps, PinDir,
    config_file::{ConfigFile, DEFAULT_CONFIG_FILE},
    load::DEFAULT_PIN_DIR,
    load::{DEFAULT_LIST, ListNames},
};

/// Network interfaces of this namespace (the `--netns` ones are not listed: entering it
/// needs privileges a completion should not use).
pub fn interfaces() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        names.sort();
        names.into_iter().map(CompletionCandidate::new).collect()
    })
}

/// List names: `apple`, the config file's lists, and those in the pinned state when this
/// shell may read it.
pub fn lists() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let mut names = vec![DEFAULT_LIST.to_owned()];
        if let Ok(config) = ConfigFile::read(DEFAULT_CONFIG_FILE.as_ref(), false) {
            names.extend(config.lists.into_iter().map(|list| list.name));
        }
        let pin_dir = std::env::var_os("CLASSIFIER_PIN_DIR")
            .map_or_else(|| PinDir::new(DEFAULT_PIN_DIR), PinDir::new);
        if let Ok(maps) = ClassifierMaps::open_pinned(&pin_dir)
            && let Ok(pinned) = ListNames::read(&maps)
        {
            names.extend(pinned.iter().map(|(_, name)| name.to_owned()));
        }
        names.sort();
        names.dedup();
        names.into_iter().map(CompletionCandidate::new).collect()
    })
}
