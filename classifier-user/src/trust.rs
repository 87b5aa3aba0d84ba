//! Who may change what classifier reads. Like sshd with its keys and configuration, a command
//! run as root refuses a config or prefix file that someone other than root could have
//! written — owned by another user, writable by group or others, or in a directory they can
//! write to — since whoever writes the lists decides what the router deprioritizes. The pin
//! directory gets the same checks (see `PinDir::check_trusted`): /sys/fs/bpf is world-writable
//! (sticky), so another user could have made the directory first.

use std::{
    fs,
    io::Read as _,
    os::{
        fd::AsRawFd as _,
        unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _},
    },
    path::Path,
};

use crate::Error;

const ROOT: u32 = 0;
const GROUP_OR_OTHER_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// Reads a file classifier takes configuration from (a config, prefix or saved-state file).
/// The file (symbolic links followed) must belong to root and be writable by no one else, and
/// so must every directory above where it really is, except that a sticky directory (/tmp)
/// may be writable by all: there no one but the owner can replace a root-owned file. What is
/// trusted is what is read, not only the name: the file is opened once, and these checks are made on what was
/// opened (its owner and mode through the descriptor, the directories of where it really is),
/// before the bytes are read from that same descriptor. A name swapped for another file
/// between a check and the read (a FIFO held open, a link renamed over it) changes nothing.
/// Only a regular file, or a root-owned character device (`/dev/null`), is read; at most
/// `limit` bytes.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, std::io::Error> {
    let file = fs::OpenOptions::new()
        .read(true)
        // A FIFO opens at once instead of waiting for a writer; it is refused below.
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    let device = meta.file_type().is_char_device() && meta.uid() == ROOT;
    if meta.is_dir() {
        return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
    }
    if !device && !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let untrusted = |path: &Path, reason: String, fix: String| {
        std::io::Error::other(Error::BadPermissions {
            path: path.to_path_buf(),
            reason,
            fix,
        })
    };
    if !device && let Some((reason, fix)) = problem(path, &meta, false) {
        return Err(untrusted(path, reason, fix));
    }
    let real = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    for dir in real.ancestors().skip(1) {
        let meta = fs::metadata(dir)?;
        if let Some((reason, fix)) = problem(dir, &meta, true) {
            return Err(untrusted(
                dir,
                format!("{reason}, so they could replace {}", path.display()),
                fix,
            ));
        }
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!("larger than {limit} bytes")));
    }
    Ok(bytes)
}

/// The library's error of a failed `read_file`: a trust refusal as it is, any other failure
/// as `other` makes it.
pub fn read_error(error: std::io::Error, other: impl FnOnce(std::io::Error) -> Error) -> Error {
    match error.downcast::<Error>() {
        Ok(refused) => refused,
        Err(error) => other(error),
    }
}

/// Checks a directory classifier is about to write a file into as root: it, and every
/// directory above it, belongs to root and is writable by no one else (a sticky one excepted),
/// so that no other user can swap it, or one above it, between the write and the rename.
pub fn check_dir(dir: &Path) -> Result<(), Error> {
    let real = fs::canonicalize(dir).map_err(Error::io(format!("resolving {}", dir.display())))?;
    for dir in real.ancestors() {
        let meta = fs::metadata(dir).map_err(Error::io(format!("reading {}", dir.display())))?;
        if let Some((reason, fix)) = problem(dir, &meta, true) {
            return Err(Error::BadPermissions {
                path: dir.to_path_buf(),
                reason,
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
