//! `classifier state save`: the operator's own state, in a file that no change of the pinned
//! maps' layout can make unreadable (docs/design.md, 'Upgrades'): every list by name with the
//! prefixes it was given (what DNS taught is not kept: it is taught again), and the policy as
//! its rules' text. `control::restore` puts such a file back.

use std::{collections::BTreeMap, io::Write as _, os::unix::fs::OpenOptionsExt as _, path::Path};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use classifier_common::config::CONFIG_DRY_RUN;

use crate::{
    ClassifierMaps, Error, PinDir,
    load::{ListNames, rules},
};

/// The version of this file's format; `restore` refuses any other.
pub const SAVED_STATE_FORMAT: u32 = 1;

/// The saved state (`docs/json/saved-state.schema.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedState {
    pub format: u32,
    /// Every list, in bit order, empty ones included.
    pub lists: Vec<SavedList>,
    /// The policy's rules, in order, as `policy set` takes them.
    pub rules: Vec<String>,
    pub dry_run: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedList {
    pub name: String,
    /// The prefixes added to this list, in order.
    pub prefixes: Vec<IpNet>,
}

impl SavedState {
    /// How many prefixes the lists hold in all.
    pub fn prefix_count(&self) -> usize {
        self.lists.iter().map(|list| list.prefixes.len()).sum()
    }
}

/// How many times a read that a writer overlapped is made again before `save` gives up.
const READS: usize = 10;

/// The lists and the policy of the state in `pin_dir`, as of one generation. A reader takes
/// no lock, and a writer's change spans many elements (a replace adds, then removes, then
/// moves the generation): a read during which the generation moved is made again.
pub fn read(pin_dir: &PinDir) -> Result<SavedState, Error> {
    let maps = ClassifierMaps::open_pinned(pin_dir)?;
    for _ in 0..READS {
        let before = maps.generation()?;
        let saved = read_once(&maps)?;
        if maps.generation()? == before {
            return Ok(saved);
        }
    }
    Err(Error::io(format!(
        "saving the state in {}",
        pin_dir.path().display()
    ))(std::io::Error::other(format!(
        "it changed during each of {READS} reads"
    ))))
}

fn read_once(maps: &ClassifierMaps) -> Result<SavedState, Error> {
    let names = ListNames::read(maps)?;
    let mut by_list: BTreeMap<u32, Vec<IpNet>> =
        names.iter().map(|(bit, _)| (bit, Vec::new())).collect();
    let mut prefixes = maps.prefixes()?;
    prefixes.sort_by_key(|(prefix, _)| *prefix);
    for (prefix, value) in prefixes {
        for (bit, list) in by_list.iter_mut() {
            if value.own & (1 << bit) != 0 {
                list.push(prefix);
            }
        }
    }
    let config = maps.config()?;
    Ok(SavedState {
        format: SAVED_STATE_FORMAT,
        lists: by_list
            .into_iter()
            .filter_map(|(bit, prefixes)| {
                let name = names.name(bit)?.to_owned();
                Some(SavedList { name, prefixes })
            })
            .collect(),
        rules: rules::decode(&config, &names)
            .iter()
            .map(ToString::to_string)
            .collect(),
        dry_run: config.flags & CONFIG_DRY_RUN != 0,
    })
}

/// Saves the lists and the policy of the state in `pin_dir` to `path`, whole or not at all:
/// written beside it, then renamed over it, so that a failure never leaves half a file (nor
/// spoils an earlier one). The file is root's, 0600: `restore` trusts no file another user
/// could have changed.
pub fn save(pin_dir: &PinDir, path: &Path) -> Result<SavedState, Error> {
    let saved = read(pin_dir)?;
    let mut text = serde_json::to_string_pretty(&saved)
        .map_err(|error| Error::io("encoding the saved state")(std::io::Error::other(error)))?;
    text.push('\n');
    let name = path
        .file_name()
        .ok_or_else(|| Error::SavedStateFile {
            path: path.to_path_buf(),
            reason: "not a file name".to_owned(),
        })?
        .to_string_lossy();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    crate::trust::check_dir(dir)?;
    let partial = path.with_file_name(format!(".{name}.partial"));
    // A stale partial file, or a link another user planted under its name, is removed, never
    // followed: the new one is created here or not at all (`create_new`, no symlink), 0600.
    let _ = std::fs::remove_file(&partial);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&partial)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&partial, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(Error::io(format!("writing {}", path.display()))(error));
    }
    Ok(saved)
}
