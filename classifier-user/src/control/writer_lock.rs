//! One writer at a time (docs/design.md, 'One writer at a time').
//!
//! Every change to the pinned state is a read-modify-write: `policy set` reads the config
//! and writes it back, a prefix change reads both tries, plans, and writes the difference,
//! `attach` picks a free counter slot, a new list takes the first free name. Two writers that
//! interleave lose each other's writes: a `prefixes replace` that read the tries before a
//! `prefixes add` deletes or overwrites what the add wrote, two new lists take the same slot,
//! and `policy set` writes back a config read before `classifier run` turned learning on.
//!
//! So every writer holds an exclusive advisory lock, flock(2) on the pin directory itself,
//! for the whole of its read-modify-write:
//! - the mutating commands: `attach`, `detach`, `prefixes add|remove|load|replace|clear`,
//!   `policy set`, `shape` (on and off), through the library functions they call, so the lab
//!   and `classifier run`'s own attach and detach take it too;
//! - `classifier run`: turning learning on and off, each batch of DNS answers it learns from,
//!   and each round of expiry. It takes the lock per batch, never for its whole life, so the
//!   commands an operator types wait at most one batch.
//!
//! Readers (`stats`, `flows`, `status`, `prefixes list`, `policy show`, the metrics
//! endpoint) take no lock: every map element they read is written whole by one syscall, so a
//! reader sees each element old or new, never torn, and a reader that needs a consistent
//! snapshot of many elements does not exist. A reader must never wait behind a writer.
//!
//! bpffs allows no regular files, so the lock is on the directory's own file descriptor
//! (flock works on any inode there), and no pid file can be written: a writer that waits
//! longer than `WAIT` gives up with an error naming the holder's pid as /proc/locks shows it.
//! The lock is released when the guard drops or the process dies, so a killed writer never
//! leaves it held. A lock taken on a directory that `detach --purge` removed meanwhile is
//! worthless; it is dropped and the directory opened again.

use std::{
    fs::File,
    os::{
        fd::AsRawFd as _,
        unix::fs::{MetadataExt as _, OpenOptionsExt as _},
    },
    path::Path,
    time::{Duration, Instant},
};

use crate::{Error, PinDir};

/// How long a writer waits for another one to finish before it gives up.
pub const WAIT: Duration = Duration::from_secs(10);

/// How often a waiting writer tries again.
const RETRY: Duration = Duration::from_millis(5);

/// Held while one writer changes the pinned state; dropping it lets the next one in. Only
/// `control` takes it (`acquire` is private to it), and only with it in hand does a
/// `MapWriter` of the pinned maps exist (`MapWriter::under`).
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct WriterLock {
    _dir: File,
}

impl WriterLock {
    /// Waits (at most `WAIT`) until no other writer holds the pin directory, then holds it.
    /// Without a pin directory there is no state to change: the error says so.
    pub(in crate::control) fn acquire(pin_dir: &PinDir) -> Result<Self, Error> {
        Self::acquire_within(pin_dir, WAIT)
    }

    fn acquire_within(pin_dir: &PinDir, wait: Duration) -> Result<Self, Error> {
        // Every writer writes the pinned state: say what it lacks before waiting for anyone.
        crate::capabilities::require("changing the pinned state", crate::capabilities::STATE)?;
        let path = pin_dir.path();
        let deadline = Instant::now() + wait;
        loop {
            let dir = open_dir(pin_dir)?;
            while !try_lock(&dir, path)? {
                if Instant::now() >= deadline {
                    return Err(Error::WriterBusy {
                        dir: path.to_path_buf(),
                        holder: holder(&dir),
                        waited: wait,
                    });
                }
                std::thread::sleep(RETRY);
            }
            if still_there(&dir, path) {
                return Ok(Self { _dir: dir });
            }
        }
    }
}

fn open_dir(pin_dir: &PinDir) -> Result<File, Error> {
    let path = pin_dir.path();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => pin_dir.bpffs_missing().unwrap_or(Error::NoState {
                dir: path.to_path_buf(),
            }),
            std::io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                path: path.to_path_buf(),
                source: error,
            },
            _ => Error::io(format!("opening {} to lock it", path.display()))(error),
        })
}

/// Takes the lock if it is free; false if another writer holds it.
fn try_lock(dir: &File, path: &Path) -> Result<bool, Error> {
    // SAFETY: the fd is open for as long as `dir` lives.
    if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        Some(libc::EINTR) => Ok(false),
        _ => Err(Error::io(format!("locking {}", path.display()))(error)),
    }
}

/// Whether `path` still names the directory `dir` locked (a purge may have removed it, and
/// an attach made a new one).
fn still_there(dir: &File, path: &Path) -> bool {
    match (dir.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(locked), Ok(now)) => locked.dev() == now.dev() && locked.ino() == now.ino(),
        _ => false,
    }
}

/// Who holds the lock on `dir`: the pid /proc/locks gives for a FLOCK on its inode, and the
/// process's name.
fn holder(dir: &File) -> String {
    let unknown = "another process".to_owned();
    let Ok(meta) = dir.metadata() else {
        return unknown;
    };
    let dev = meta.dev();
    let inode = format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        meta.ino()
    );
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return unknown;
    };
    locks
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        // `1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF`; waiters have `->` after the `1:`.
        .find(|fields| fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&inode.as_str()))
        .and_then(|fields| fields.get(4).map(|pid| (*pid).to_owned()))
        .map_or(unknown, |pid| {
            match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
                Ok(name) => format!("pid {pid} ({})", name.trim()),
                Err(_) => format!("pid {pid}"),
            }
        })
}
