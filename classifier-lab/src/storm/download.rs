//! The storm's downloads: servers that send as fast as TCP lets them, and clients that read
//! until a deadline, counting what arrived inside the measuring window. Every blocking call
//! has a deadline (a socket timeout, then a look at the clock or the stop flag), so a stalled
//! connection ends with the storm instead of hanging it.

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd as _,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use socket2::{Domain, Socket, Type};

use crate::{Netns, io_error};
use classifier::Error;

/// How often a blocked send, receive or accept looks at the clock or the stop flag.
const TICK: Duration = Duration::from_millis(100);
/// How long a connection may take to be established: a SYN lost in a full queue is sent
/// again after 1 s, and once more after 3 s.
const CONNECT_DEADLINE: Duration = Duration::from_secs(8);

/// Listeners that serve every connection with an endless download, until dropped.
pub struct Senders {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Senders {
    /// Listens on each of `addresses` in `server`.
    pub fn start(server: &Netns, addresses: &[SocketAddr]) -> Result<Self, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for address in addresses {
            let listener = listen(server, *address)?;
            let stop = Arc::clone(&stop);
            threads.push(thread::spawn(move || serve(&listener, &stop, send_forever)));
        }
        Ok(Self { stop, threads })
    }
}

impl Drop for Senders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A listener in `ns` with room for the storm's simultaneous connections.
pub fn listen(ns: &Netns, address: SocketAddr) -> Result<TcpListener, Error> {
    ns.enter(|| -> std::io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&address.into())?;
        socket.listen(4096)?;
        Ok(socket.into())
    })?
    .map_err(io_error(format!("listening on {address}")))
}

/// Accepts until `stop`, running `work` on a thread of its own for each connection; waits for
/// those threads before returning.
pub fn serve(
    listener: &TcpListener,
    stop: &AtomicBool,
    work: impl Fn(TcpStream, &AtomicBool) + Copy + Send,
) {
    thread::scope(|scope| {
        while !stop.load(Ordering::Relaxed) {
            if !readable(listener, TICK) {
                continue;
            }
            if let Ok((stream, _)) = listener.accept() {
                scope.spawn(move || work(stream, stop));
            }
        }
    });
}

/// Whether `listener` has a connection to accept within `timeout`.
fn readable(listener: &TcpListener, timeout: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut poll, 1, timeout.as_millis() as i32) > 0 }
}

/// Sends until the client hangs up or the storm stops.
fn send_forever(mut stream: TcpStream, stop: &AtomicBool) {
    let chunk = vec![0xa5; 64 * 1024];
    if stream.set_write_timeout(Some(TICK)).is_err() {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        match stream.write(&chunk) {
            Ok(_) => {}
            Err(error) if is_timeout(&error) => {}
            Err(_) => return,
        }
    }
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// When a download counts what it receives.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Bytes before this are the ramp-up: slow start, and the connections still opening.
    pub from: Instant,
    pub until: Instant,
}

impl Window {
    pub fn seconds(&self) -> f64 {
        (self.until - self.from).as_secs_f64()
    }
}

/// A TCP socket in `client`, bound to `source`, not yet connected: made in the namespace,
/// usable from any thread.
pub fn socket_from(client: &Netns, source: Ipv4Addr) -> Result<Socket, Error> {
    client
        .enter(|| -> std::io::Result<Socket> {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            socket.bind(&SocketAddr::from((source, 0)).into())?;
            Ok(socket)
        })?
        .map_err(io_error(format!("a socket from {source}")))
}

/// Connects `socket` to `server` and reads until `window.until`; returns the bytes received
/// inside the window.
pub fn download(socket: Socket, server: SocketAddr, window: Window) -> Result<u64, Error> {
    let what = format!("downloading from {server}");
    socket
        .connect_timeout(&server.into(), CONNECT_DEADLINE)
        .map_err(io_error(format!("connecting to {server}")))?;
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(TICK))
        .map_err(io_error(what.clone()))?;
    let mut buffer = vec![0u8; 256 * 1024];
    let mut counted = 0u64;
    loop {
        let now = Instant::now();
        if now >= window.until {
            return Ok(counted);
        }
        match stream.read(&mut buffer) {
            Ok(0) => {
                return Err(io_error(what)(std::io::Error::other(
                    "the server closed the connection",
                )));
            }
            Ok(n) if now >= window.from => counted += n as u64,
            Ok(_) => {}
            Err(error) if is_timeout(&error) => {}
            Err(error) => return Err(io_error(what)(error)),
        }
    }
}
