//! What the kernel says about a pinned link's interface. Deleting an interface detaches its
//! XDP and TCX links but does not free them: the link stays pinned, defunct, attached to
//! nothing (its interface index reads 0), until its pin is removed. aya 0.14 does not expose
//! that part of `bpf_link_info`, hence the two syscalls here.

use std::{
    ffi::CString,
    os::{
        fd::{FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::Path,
};

use crate::Error;

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// `union bpf_attr` for BPF_OBJ_GET, zero-padded.
#[repr(C)]
#[derive(Default)]
struct ObjGetAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
    path_fd: i32,
    padding: [u32; 7],
}

/// `union bpf_attr` for BPF_OBJ_GET_INFO_BY_FD.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The head of `struct bpf_link_info`: type, id, program id, then (8-byte aligned) the
/// per-type union, whose `xdp` and `tcx` members both start with the interface index.
#[repr(C)]
#[derive(Default)]
struct LinkInfoHead {
    link_type: u32,
    id: u32,
    prog_id: u32,
    padding: u32,
    ifindex: u32,
    rest: [u32; 15],
}

fn bpf<T>(command: libc::c_long, attr: &mut T) -> libc::c_long {
    // SAFETY: attr is a live, writable bpf_attr of the size passed; the kernel reads and
    // writes only within it (and within the buffers it points to, which the callers own).
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            attr as *mut T,
            std::mem::size_of::<T>(),
        )
    }
}

/// The interface index the link pinned at `path` (XDP or TCX) is attached to, or None once
/// its interface is gone.
pub fn attached_ifindex(path: &Path) -> Result<Option<u32>, Error> {
    let what = || format!("reading the link pinned at {}", path.display());
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|error| Error::io(what())(std::io::Error::other(error)))?;
    let mut get = ObjGetAttr {
        pathname: c_path.as_ptr() as u64,
        ..ObjGetAttr::default()
    };
    let fd = bpf(BPF_OBJ_GET, &mut get);
    if fd < 0 {
        return Err(Error::io(what())(std::io::Error::last_os_error()));
    }
    // SAFETY: the kernel just returned this descriptor to us, and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut info = LinkInfoHead::default();
    let mut attr = InfoAttr {
        bpf_fd: std::os::fd::AsRawFd::as_raw_fd(&fd) as u32,
        info_len: std::mem::size_of::<LinkInfoHead>() as u32,
        info: &mut info as *mut LinkInfoHead as u64,
    };
    if bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) < 0 {
        return Err(Error::io(what())(std::io::Error::last_os_error()));
    }
    Ok((info.ifindex != 0).then_some(info.ifindex))
}
