//! Who may change what classifier reads. Like sshd with its keys and configuration, a command
//! run as root refuses a config or prefix file that someone other than root could have
//! written — owned by another user, writable by group or others, or in a directory they can
//! write to — since whoever writes the lists decides what the router deprioritizes. The pin
//! directory gets the same checks (see `PinDir::check_trusted`): /sys/fs/bpf is world-writable
//! (sticky), so another user could have made the directory first.

use std::{
    fs,
    os::unix::fs::{FileTypeExt as _, MetadataExt as _},
    path::Path,
};

use crate::Error;

const ROOT: u32 = 0;
const GROUP_OR_OTHER_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// Checks a file classifier is about to read as configuration: the file (symbolic links
/// followed) must belong to root and be writable by no one else, and so must every directory
/// above it, except that a sticky directory (/tmp) may be writable by all: there no one but
/// the owner can replace a root-owned file. Character devices owned by root (`/dev/null`, the
/// idiom for "no configuration") are accepted as they are.
pub fn check_file(path: &Path) -> Result<(), Error> {
    let meta = fs::metadata(path).map_err(Error::io(format!("reading {}", path.display())))?;
    let device = meta.file_type().is_char_device() && meta.uid() == ROOT;
    if !device && let Some((reason, fix)) = problem(path, &meta, false) {
        return Err(Error::BadPermissions {
            path: path.to_path_buf(),
            reason,
            fix,
        });
    }
    // The directories of where the file really is, not of the link that led there.
    let real =
        fs::canonicalize(path).map_err(Error::io(format!("resolving {}", path.display())))?;
    for dir in real.ancestors().skip(1) {
        let meta = fs::metadata(dir).map_err(Error::io(format!("reading {}", dir.display())))?;
        if let Some((reason, fix)) = problem(dir, &meta, true) {
            return Err(Error::BadPermissions {
                path: dir.to_path_buf(),
                reason: format!("{reason}, so they could replace {}", path.display()),
                fix,
            });
        }
    }
    Ok(())
}

/// What is wrong with `path` (whose metadata is `meta`), with the command that fixes it: it
/// must belong to root and be writable by no one else; with `sticky_ok`, a sticky directory
/// writable by all passes too.
pub(crate) fn problem(
    path: &Path,
    meta: &fs::Metadata,
    sticky_ok: bool,
) -> Option<(String, String)> {
    let mode = meta.mode() & 0o7777;
    if meta.uid() != ROOT {
        return Some((
            format!("it is owned by uid {}, not by root", meta.uid()),
            format!("chown root {}", path.display()),
        ));
    }
    if mode & GROUP_OR_OTHER_WRITE != 0 && !(sticky_ok && meta.is_dir() && mode & STICKY != 0) {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "group and others",
            (true, false) => "its group",
            _ => "others",
        };
        return Some((
            format!("{who} may write to it (mode {mode:04o})"),
            format!("chmod go-w {}", path.display()),
        ));
    }
    None
}
