//! SIGTERM and SIGINT as a file descriptor the run's loop polls beside the ring buffers. The
//! two signals are blocked in the calling thread, so that they stay pending for the signalfd
//! instead of killing the process: this must happen before any thread is spawned, since a
//! thread inherits the mask of its creator and a signal goes to any thread not blocking it.

use std::{
    io,
    mem::MaybeUninit,
    os::fd::{AsFd, AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
};

pub struct Stop {
    fd: OwnedFd,
}

impl Stop {
    pub fn new() -> io::Result<Self> {
        // SAFETY: the set is initialised by sigemptyset before use, and every call gets
        // valid pointers to it.
        let fd = unsafe {
            let mut set = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(set.as_mut_ptr());
            let mut set = set.assume_init();
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            let error = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if error != 0 {
                return Err(io::Error::from_raw_os_error(error));
            }
            libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Whether SIGTERM or SIGINT arrived (consuming it).
    pub fn received(&self) -> bool {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = size_of::<libc::signalfd_siginfo>();
        // SAFETY: the buffer is as large as the one record read asks for.
        let read = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
        read == size as isize
    }
}

impl AsFd for Stop {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
