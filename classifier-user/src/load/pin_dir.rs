//! The pin directory: where the live state (maps, the program, one link per interface) is
//! pinned in bpffs, so that any later CLI run finds it and no daemon is needed.
//!
//! Layout: `maps/<MAP>`, `program`, `links/<interface>` (or `links/<interface>@netns-<inode>`
//! for an interface in another network namespace), and `shaping/<interface>` for the egress
//! links of shaped interfaces. The directories are 0700, the pins 0600:
//! only root may read or change the state, and a directory someone else could change is
//! refused (`check_trusted`).

use std::{
    fs,
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use crate::{Error, trust};

pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/classifier";

/// statfs(2) f_type of a BPF filesystem.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
const BPFFS_ROOT: &str = "/sys/fs/bpf";

#[derive(Clone, Debug)]
pub struct PinDir {
    path: PathBuf,
}

impl PinDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn map(&self, name: &str) -> PathBuf {
        self.path.join("maps").join(name)
    }

    /// The XDP program every XDP link runs.
    pub fn program(&self) -> PathBuf {
        self.path.join("program")
    }

    /// The pinned program of `hook`: `program` for XDP, `program-tc` for tc.
    pub fn program_of(&self, hook: super::Hook) -> PathBuf {
        match hook {
            super::Hook::Xdp => self.program(),
            super::Hook::Tc => self.path.join("program-tc"),
        }
    }

    pub fn links(&self) -> PathBuf {
        self.path.join("links")
    }

    pub fn link(&self, pin_name: &str) -> PathBuf {
        self.links().join(pin_name)
    }

    /// The pin names under `links/`, sorted: the interfaces attached (none without the
    /// directory).
    pub fn link_pins(&self) -> Result<Vec<String>, Error> {
        let Ok(entries) = fs::read_dir(self.links()) else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Where the egress (tc) links of shaped interfaces are pinned.
    pub fn shaping(&self) -> PathBuf {
        self.path.join("shaping")
    }

    /// Whether state has been pinned here (by an earlier attach).
    pub fn has_state(&self) -> bool {
        self.map(super::names::MAP_CONFIG).exists()
    }

    /// Refuses a pin directory that someone other than root could change, or that a symbolic
    /// link redirects: the directories above it, the directory itself, and `maps/`, `links/`,
    /// `shaping/` and every pin in them must be what they seem (no symbolic links) and owned
    /// by root; the pin directory and what is in it writable by root alone, the directories
    /// above at most sticky (/sys/fs/bpf is world-writable and sticky, so another user could
    /// have made the directory before root did).
    pub fn check_trusted(&self) -> Result<(), Error> {
        let refuse = |path: &Path, meta: &fs::Metadata, sticky_ok: bool| {
            if meta.file_type().is_symlink() {
                return Err(Error::Symlink {
                    path: path.to_path_buf(),
                });
            }
            match trust::problem(path, meta, sticky_ok) {
                Some((reason, fix)) => Err(Error::BadPermissions {
                    path: path.to_path_buf(),
                    reason,
                    fix,
                }),
                None => Ok(()),
            }
        };
        for dir in self.path.ancestors().skip(1) {
            if let Ok(meta) = fs::symlink_metadata(dir) {
                refuse(dir, &meta, true)?;
            }
        }
        for dir in [
            self.path.clone(),
            self.path.join("maps"),
            self.links(),
            self.shaping(),
        ] {
            let Ok(meta) = fs::symlink_metadata(&dir) else {
                continue;
            };
            refuse(&dir, &meta, false)?;
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                // An entry removed meanwhile (a concurrent detach) is no threat.
                if let Ok(meta) = fs::symlink_metadata(entry.path()) {
                    refuse(&entry.path(), &meta, false)?;
                }
            }
        }
        Ok(())
    }

    /// Why there is no state here when no BPF filesystem holds the directory any more: bpffs
    /// was unmounted (or never mounted), and the state with it.
    pub fn bpffs_missing(&self) -> Option<Error> {
        let parent = self.path.parent().unwrap_or(Path::new("/"));
        if is_bpffs(parent) || is_bpffs(&self.path) {
            return None;
        }
        let hint = if parent == Path::new(BPFFS_ROOT) {
            "`classifier attach` mounts it again and starts afresh".to_owned()
        } else {
            format!(
                "mount one (`mount -t bpf bpf {}`) and attach again",
                parent.display()
            )
        };
        Some(Error::BpffsGone {
            dir: self.path.clone(),
            mount: parent.to_path_buf(),
            hint,
        })
    }

    /// Makes the directory ready for pinning: bpffs mounted at /sys/fs/bpf when it is not
    /// (it is not at boot on Debian), directories created 0700.
    pub fn prepare(&self) -> Result<(), Error> {
        self.check_trusted()?;
        let parent = self.path.parent().unwrap_or(Path::new("/"));
        if !is_bpffs(parent) {
            if parent == Path::new(BPFFS_ROOT) {
                mount_bpffs()?;
            } else if !is_bpffs(&self.path) {
                return Err(Error::NotBpffs {
                    dir: parent.to_path_buf(),
                });
            }
        }
        for dir in [
            self.path.clone(),
            self.path.join("maps"),
            self.links(),
            self.shaping(),
        ] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(Error::io(format!("creating {}", dir.display())))?;
            restrict(&dir, 0o700)?;
        }
        Ok(())
    }
}

/// Sets `path`'s mode: 0700 for directories, 0600 for pinned objects.
pub(crate) fn restrict(path: &Path, mode: u32) -> Result<(), Error> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(Error::io(format!("setting the mode of {}", path.display())))
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and stat is a valid, writable statfs.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    rc == 0 && stat.f_type as i64 == BPF_FS_MAGIC
}

fn mount_bpffs() -> Result<(), Error> {
    crate::capabilities::require(
        "mounting bpffs on /sys/fs/bpf",
        crate::capabilities::SYS_ADMIN,
    )?;
    let what = format!("mounting bpffs on {BPFFS_ROOT}");
    let (source, target, fstype) = (c"bpf", c"/sys/fs/bpf", c"bpf");
    // SAFETY: all strings are NUL-terminated literals; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(Error::io(what)(std::io::Error::last_os_error()));
    }
    Ok(())
}
