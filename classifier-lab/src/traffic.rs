//! Traffic between the lab's hosts: TCP and MPTCP transfers and timed downloads, from
//! sockets opened inside the namespaces (a socket belongs to the namespace it was made in, so
//! it can be used from any thread afterwards).
//!
//! Every exchange has a deadline derived from its size and the link (`Link`): accepts wait
//! with `poll`, connects with a timeout, reads and writes with socket timeouts cut to what is
//! left. A missed deadline is an error naming the flow (kind, addresses, ports) and how far it
//! got, so a load that stalls fails instead of blocking its caller (RELIABILITY.md, 'Soak').

use std::{
    fmt,
    io::{Read as _, Write as _},
    net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::fd::AsRawFd as _,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};

use crate::{Netns, io_error};
use classifier::Error;

/// IPPROTO_MPTCP: a kernel Multipath TCP socket.
const IPPROTO_MPTCP: i32 = 262;

fn io(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |error| io_error(what.to_owned())(error)
}

/// What the lab's links promise at the least, from which each exchange's deadline follows.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// The slowest rate a healthy exchange runs at, in bit/s.
    pub floor_bits_per_s: u64,
    /// Time for what does not scale with size: connecting, accepting, the MPTCP subflow.
    pub setup: Duration,
    /// The longest a download may go without receiving a byte.
    pub silence: Duration,
}

impl Link {
    /// The lab's veths: unshaped, or shaped to 50 Mbit/s on the way down (`lab_shaping`).
    /// Healthy 4 MiB transfers run at hundreds of Mbit/s even with both cores busy with other
    /// builds (load average 20); 8 Mbit/s and 10 s of setup leave room for a machine ten
    /// times slower, while a stalled transfer still fails within 15 s.
    pub const LAB: Self = Self {
        floor_bits_per_s: 8_000_000,
        setup: Duration::from_secs(10),
        silence: Duration::from_secs(5),
    };

    /// How long moving `bytes` may take.
    pub fn deadline(&self, bytes: u64) -> Duration {
        self.setup + Duration::from_secs_f64(bytes as f64 * 8.0 / self.floor_bits_per_s as f64)
    }
}

/// One exchange of the lab's load, as its errors and the soak's evidence name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// "MPTCP transfer", "TCP transfer", "download", "UDP stream".
    pub kind: &'static str,
    /// The client's end; port 0 until the kernel has chosen one.
    pub client: SocketAddr,
    pub server: SocketAddr,
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ⇄ {}", self.kind, self.client, self.server)
    }
}

/// The flow a load is in now and the bytes it moved so far, for a watcher on another thread
/// (the soak records evidence about the flow of a load that stalls).
#[derive(Default)]
pub struct InFlight {
    flow: Mutex<Option<Flow>>,
    moved: AtomicU64,
    fell_back: AtomicBool,
}

impl InFlight {
    /// Whether the last MPTCP transfer fell back to plain TCP (the kernel dropped MPTCP for
    /// the connection: its packets carry no option 30).
    pub fn fell_back(&self) -> bool {
        self.fell_back.load(Ordering::Relaxed)
    }

    pub fn flow(&self) -> Option<Flow> {
        self.flow.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn moved(&self) -> u64 {
        self.moved.load(Ordering::Relaxed)
    }

    fn start(&self, flow: &Flow) {
        *self.flow.lock().unwrap_or_else(|e| e.into_inner()) = Some(flow.clone());
        self.moved.store(0, Ordering::Relaxed);
        self.fell_back.store(false, Ordering::Relaxed);
    }

    fn add(&self, bytes: usize) {
        self.moved.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// A point in time by which an exchange must be done.
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    allowed: Duration,
}

impl Deadline {
    fn after(allowed: Duration) -> Self {
        Self {
            at: Instant::now() + allowed,
            allowed,
        }
    }

    /// What is left, or the error naming `flow`, `doing` and `progress`.
    fn left(&self, flow: &Flow, doing: &str, progress: &str) -> Result<Duration, Error> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(missed(flow, doing, self.allowed, progress));
        }
        Ok(left)
    }
}

/// The error for a flow that missed its deadline.
fn missed(flow: &Flow, doing: &str, allowed: Duration, progress: &str) -> Error {
    io_error(format!("{flow}: {doing}"))(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "missed its deadline of {:.1} s ({progress})",
            allowed.as_secs_f64()
        ),
    ))
}

/// Whether a socket call gave up because its timeout passed.
fn timed_out(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn stream_socket(addr: &SocketAddr, mptcp: bool) -> std::io::Result<Socket> {
    let protocol = if mptcp {
        Protocol::from(IPPROTO_MPTCP)
    } else {
        Protocol::TCP
    };
    Socket::new(Domain::for_address(*addr), Type::STREAM, Some(protocol))
}

/// A listener in `ns` on `addr` (MPTCP or plain TCP).
pub fn listen(ns: &Netns, addr: SocketAddr, mptcp: bool) -> Result<TcpListener, Error> {
    ns.enter(|| {
        let socket = stream_socket(&addr, mptcp)?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(16)?;
        Ok(socket.into())
    })?
    .map_err(io("listening"))
}

/// A connection from `source` (port chosen by the kernel) in `ns` to `destination`, given up
/// after `Link::LAB.setup`.
pub fn connect(
    ns: &Netns,
    source: IpAddr,
    destination: SocketAddr,
    mptcp: bool,
) -> Result<TcpStream, Error> {
    connect_within(ns, source, destination, mptcp, Link::LAB.setup).map_err(io("connecting"))
}

fn connect_within(
    ns: &Netns,
    source: IpAddr,
    destination: SocketAddr,
    mptcp: bool,
    within: Duration,
) -> std::io::Result<TcpStream> {
    ns.enter(|| {
        let socket = stream_socket(&destination, mptcp)?;
        socket.bind(&SocketAddr::new(source, 0).into())?;
        socket.connect_timeout(&destination.into(), within)?;
        Ok(socket.into())
    })
    .map_err(|error| std::io::Error::other(error.to_string()))?
}

/// A failed connect: a timeout is a missed deadline like any other.
fn connect_error(flow: &Flow, error: std::io::Error, allowed: Duration) -> Error {
    if timed_out(&error) {
        return missed(flow, "connecting", allowed, "no answer to the SYN");
    }
    io_error(format!("{flow}: connecting"))(error)
}

/// Accepts one connection on `listener` before `deadline`.
fn accept_before(
    listener: &TcpListener,
    deadline: Deadline,
    flow: &Flow,
) -> Result<TcpStream, Error> {
    loop {
        let left = deadline.left(flow, "accepting", "no connection arrived")?;
        let mut poll = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        if unsafe { libc::poll(&mut poll, 1, ms) } < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(io("waiting for a connection")(error));
            }
            continue;
        }
        if poll.revents & libc::POLLIN != 0 {
            let (stream, _) = listener.accept().map_err(io("accepting"))?;
            stream.set_nonblocking(false).map_err(io("accepting"))?;
            return Ok(stream);
        }
    }
}

/// Sends `bytes` from `client` (bound to `source`) to a fresh listener on `server`; returns
/// what the server received, or an error naming the flow if that takes longer than
/// `Link::LAB` allows for the size. See `Transfer`.
pub fn transfer(
    client: &Netns,
    source: IpAddr,
    server: &Netns,
    destination: SocketAddr,
    bytes: usize,
    mptcp: bool,
    subflows: usize,
) -> Result<usize, Error> {
    Transfer {
        client,
        source,
        server,
        destination,
        bytes,
        mptcp,
        subflows,
    }
    .run(&Link::LAB, &InFlight::default())
}

/// An upload from `client` (bound to `source`) to a fresh listener on `server`. With
/// `subflows` above 1 (MPTCP), the first chunk goes alone and the rest only once that many
/// subflows are established, so the path manager's extra subflow carries some of it: the
/// client's path manager opens subflows only once the connection is fully established, which
/// takes the server's acknowledgement of data.
pub struct Transfer<'a> {
    pub client: &'a Netns,
    pub source: IpAddr,
    pub server: &'a Netns,
    pub destination: SocketAddr,
    pub bytes: usize,
    pub mptcp: bool,
    pub subflows: usize,
}

impl Transfer<'_> {
    /// Runs the transfer within `link.deadline(bytes)`, telling `in_flight` its flow and the
    /// bytes received; returns the bytes the server received (all of them, or an error).
    pub fn run(&self, link: &Link, in_flight: &InFlight) -> Result<usize, Error> {
        let deadline = Deadline::after(link.deadline(self.bytes as u64));
        let mut flow = Flow {
            kind: if self.mptcp {
                "MPTCP transfer"
            } else {
                "TCP transfer"
            },
            client: SocketAddr::new(self.source, 0),
            server: self.destination,
        };
        in_flight.start(&flow);
        let listener = listen(self.server, self.destination, self.mptcp)?;
        let connecting = deadline.left(&flow, "connecting", "not connected")?;
        let stream = connect_within(
            self.client,
            self.source,
            self.destination,
            self.mptcp,
            connecting,
        )
        .map_err(|error| connect_error(&flow, error, deadline.allowed))?;
        flow.client = stream
            .local_addr()
            .map_err(io("reading the client's port"))?;
        in_flight.start(&flow);
        thread::scope(|scope| {
            let receiver = scope.spawn(|| self.receive(listener, deadline, &flow, in_flight));
            let sent = self.send(stream, deadline, &flow, in_flight);
            let received = receiver.join().unwrap_or_else(|panic| {
                std::panic::resume_unwind(panic);
            });
            // The receiver's error says how much arrived, so it comes first.
            let received = received?;
            sent?;
            if received != self.bytes {
                return Err(io(&format!("{flow}: receiving"))(std::io::Error::other(
                    format!("{received} of {} bytes arrived", self.bytes),
                )));
            }
            Ok(received)
        })
    }

    fn send(
        &self,
        mut stream: TcpStream,
        deadline: Deadline,
        flow: &Flow,
        in_flight: &InFlight,
    ) -> Result<(), Error> {
        let chunk = vec![0x5a; 64 * 1024];
        let mut left = self.bytes;
        let mut first = true;
        while left > 0 {
            let progress = format!("{} of {} bytes sent", self.bytes - left, self.bytes);
            let timeout = deadline.left(flow, "sending", &progress)?;
            stream
                .set_write_timeout(Some(timeout))
                .map_err(io("setting a timeout"))?;
            let n = left.min(chunk.len());
            match stream.write_all(&chunk[..n]) {
                Ok(()) => {}
                Err(error) if timed_out(&error) => {
                    return Err(missed(flow, "sending", deadline.allowed, &progress));
                }
                Err(error) => return Err(io(&format!("{flow}: sending"))(error)),
            }
            left -= n;
            if std::mem::take(&mut first) && self.subflows > 1 {
                wait_for_subflows(&stream, self.subflows, deadline, flow)?;
            }
        }
        if self.mptcp {
            in_flight.fell_back.store(
                fell_back(&stream).map_err(io(&format!("{flow}: reading MPTCP_INFO")))?,
                Ordering::Relaxed,
            );
        }
        stream
            .shutdown(Shutdown::Write)
            .map_err(io(&format!("{flow}: closing")))
    }

    fn receive(
        &self,
        listener: TcpListener,
        deadline: Deadline,
        flow: &Flow,
        in_flight: &InFlight,
    ) -> Result<usize, Error> {
        // The listener stays open until the end: the extra subflow's MP_JOIN arrives on it.
        let mut stream = accept_before(&listener, deadline, flow)?;
        let mut received = 0;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let progress = format!("{received} of {} bytes received", self.bytes);
            let timeout = deadline.left(flow, "receiving", &progress)?;
            stream
                .set_read_timeout(Some(timeout))
                .map_err(io("setting a timeout"))?;
            match stream.read(&mut buffer) {
                Ok(0) => return Ok(received),
                Ok(n) => {
                    received += n;
                    in_flight.add(n);
                }
                Err(error) if timed_out(&error) => {
                    return Err(missed(flow, "receiving", deadline.allowed, &progress));
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(io(&format!("{flow}: receiving"))(error)),
            }
        }
    }
}

/// SOL_MPTCP's MPTCP_INFO (linux/mptcp.h): `struct mptcp_info`, whose `mptcpi_flags` (a
/// u32 after six u8 fields) has MPTCP_INFO_FLAG_FALLBACK in bit 0.
const MPTCP_INFO: i32 = 1;
const MPTCP_INFO_FLAGS_AT: usize = 8;
const MPTCP_INFO_FLAG_FALLBACK: u32 = 1;

/// Whether an MPTCP socket fell back to plain TCP. A fallen-back socket passes SOL_MPTCP
/// options to its one TCP subflow, which does not know them (EOPNOTSUPP or ENOPROTOOPT).
fn fell_back(stream: &TcpStream) -> std::io::Result<bool> {
    let mut buffer = [0u8; 64];
    let mut len = buffer.len() as libc::socklen_t;
    // SAFETY: the buffer outlives the call and `len` is its size.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            SOL_MPTCP,
            MPTCP_INFO,
            buffer.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if result != 0 {
        let error = std::io::Error::last_os_error();
        return match error.raw_os_error() {
            Some(libc::EOPNOTSUPP | libc::ENOPROTOOPT) => Ok(true),
            _ => Err(error),
        };
    }
    if (len as usize) < MPTCP_INFO_FLAGS_AT + 4 {
        return Ok(false);
    }
    let flags = u32::from_ne_bytes(
        buffer[MPTCP_INFO_FLAGS_AT..MPTCP_INFO_FLAGS_AT + 4]
            .try_into()
            .expect("four bytes"),
    );
    Ok(flags & MPTCP_INFO_FLAG_FALLBACK != 0)
}

/// SOL_MPTCP's MPTCP_TCPINFO (linux/mptcp.h): a `struct mptcp_subflow_data` header, then a
/// `struct tcp_info` per subflow, of which the caller asks only as many bytes as it reads.
const SOL_MPTCP: i32 = 284;
const MPTCP_TCPINFO: i32 = 2;
const SUBFLOW_DATA_LEN: usize = 16;
/// `tcp_info` starts with `tcpi_state`; TCP_ESTABLISHED is 1.
const TCP_INFO_ASKED: usize = 8;
const TCP_ESTABLISHED: u8 = 1;
const MAX_SUBFLOWS_READ: usize = 8;

/// The subflows of an MPTCP connection in state ESTABLISHED.
fn established_subflows(stream: &TcpStream) -> std::io::Result<usize> {
    let mut buffer = [0u8; SUBFLOW_DATA_LEN + TCP_INFO_ASKED * MAX_SUBFLOWS_READ];
    buffer[0..4].copy_from_slice(&(SUBFLOW_DATA_LEN as u32).to_ne_bytes());
    buffer[12..16].copy_from_slice(&(TCP_INFO_ASKED as u32).to_ne_bytes());
    let mut len = buffer.len() as libc::socklen_t;
    // SAFETY: the buffer outlives the call and `len` is its size.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            SOL_MPTCP,
            MPTCP_TCPINFO,
            buffer.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let listed = (len as usize).saturating_sub(SUBFLOW_DATA_LEN) / TCP_INFO_ASKED;
    Ok((0..listed)
        .filter(|n| buffer[SUBFLOW_DATA_LEN + n * TCP_INFO_ASKED] == TCP_ESTABLISHED)
        .count())
}

/// Waits for `wanted` established subflows, at most 5 s and never past `deadline`.
fn wait_for_subflows(
    stream: &TcpStream,
    wanted: usize,
    deadline: Deadline,
    flow: &Flow,
) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        let established = established_subflows(stream).map_err(io("reading MPTCP_TCPINFO"))?;
        if established >= wanted {
            return Ok(());
        }
        let progress = format!("{established} of {wanted} subflows established");
        deadline.left(flow, "waiting for MPTCP subflows", &progress)?;
        if started.elapsed() > Duration::from_secs(5) {
            return Err(io(&format!("{flow}: waiting for MPTCP subflows"))(
                std::io::Error::other(format!("{progress} after 5 s")),
            ));
        }
        // A poll interval, not a synchronisation.
        thread::sleep(Duration::from_millis(10));
    }
}

/// A download: `server` sends to `client` as fast as the path allows for `duration`;
/// returns the bytes the client received in that time. An error names the flow if it cannot
/// start within `Link::LAB`'s setup or receives nothing for its silence.
pub fn download(
    client: &Netns,
    client_addr: IpAddr,
    server: &Netns,
    server_addr: SocketAddr,
    duration: Duration,
) -> Result<u64, Error> {
    Download {
        client,
        client_addr,
        server,
        server_addr,
        duration,
    }
    .run(&Link::LAB, &InFlight::default())
}

/// The parts of `download`.
pub struct Download<'a> {
    pub client: &'a Netns,
    pub client_addr: IpAddr,
    pub server: &'a Netns,
    pub server_addr: SocketAddr,
    pub duration: Duration,
}

impl Download<'_> {
    /// Runs the download, telling `in_flight` its flow and the bytes received. It fails if
    /// it cannot start within `link.setup`, or if no byte arrives for `link.silence` (or for
    /// the whole download, if that is shorter).
    pub fn run(&self, link: &Link, in_flight: &InFlight) -> Result<u64, Error> {
        let setup = Deadline::after(link.setup);
        let mut flow = Flow {
            kind: "download",
            client: SocketAddr::new(self.client_addr, 0),
            server: self.server_addr,
        };
        in_flight.start(&flow);
        let listener = listen(self.server, self.server_addr, false)?;
        let connecting = setup.left(&flow, "connecting", "not connected")?;
        let mut stream = connect_within(
            self.client,
            self.client_addr,
            self.server_addr,
            false,
            connecting,
        )
        .map_err(|error| connect_error(&flow, error, setup.allowed))?;
        flow.client = stream
            .local_addr()
            .map_err(io("reading the client's port"))?;
        in_flight.start(&flow);
        let whole = self.duration + link.setup;
        thread::scope(|scope| {
            let sender = scope.spawn(|| -> Result<(), Error> {
                let mut stream = accept_before(&listener, setup, &flow)?;
                // Bounded even if the client's close never arrives.
                stream
                    .set_write_timeout(Some(whole))
                    .map_err(io("setting a timeout"))?;
                let chunk = vec![0xa5; 64 * 1024];
                // Until the client hangs up.
                while stream.write_all(&chunk).is_ok() {}
                Ok(())
            });
            let received = self.receive(&mut stream, link, &flow, in_flight);
            drop(stream);
            let sent = sender.join().unwrap_or_else(|panic| {
                std::panic::resume_unwind(panic);
            });
            let received = received?;
            sent?;
            Ok(received)
        })
    }

    fn receive(
        &self,
        stream: &mut TcpStream,
        link: &Link,
        flow: &Flow,
        in_flight: &InFlight,
    ) -> Result<u64, Error> {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(io("setting a timeout"))?;
        let silence = link.silence.min(self.duration);
        let start = Instant::now();
        let mut last_byte = start;
        let mut received = 0u64;
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let quiet = last_byte.elapsed();
            if quiet >= silence {
                return Err(missed(
                    flow,
                    "downloading",
                    silence,
                    &format!("{received} bytes received, then nothing"),
                ));
            }
            if start.elapsed() >= self.duration {
                return Ok(received);
            }
            match stream.read(&mut buffer) {
                Ok(0) => return Ok(received),
                Ok(n) => {
                    received += n as u64;
                    in_flight.add(n);
                    last_byte = Instant::now();
                }
                Err(error) if timed_out(&error) => {}
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(io(&format!("{flow}: downloading"))(error)),
            }
        }
    }
}

/// `count` UDP datagrams of `size` bytes from `source` in `client` to `destination`, within
/// `Link::LAB`'s deadline for the bytes.
pub fn udp_stream(
    client: &Netns,
    source: IpAddr,
    destination: SocketAddr,
    count: usize,
    size: usize,
) -> Result<(), Error> {
    let deadline = Deadline::after(Link::LAB.deadline((count * size) as u64));
    let socket = client
        .enter(|| UdpSocket::bind(SocketAddr::new(source, 0)))?
        .map_err(io("binding"))?;
    let flow = Flow {
        kind: "UDP stream",
        client: socket.local_addr().map_err(io("reading the port"))?,
        server: destination,
    };
    let payload = vec![0x42; size];
    for n in 0..count {
        let progress = format!("{n} of {count} datagrams sent");
        let timeout = deadline.left(&flow, "sending", &progress)?;
        socket
            .set_write_timeout(Some(timeout))
            .map_err(io("setting a timeout"))?;
        match socket.send_to(&payload, destination) {
            Ok(_) => {}
            Err(error) if timed_out(&error) => {
                return Err(missed(&flow, "sending", deadline.allowed, &progress));
            }
            Err(error) => return Err(io(&format!("{flow}: sending"))(error)),
        }
    }
    Ok(())
}

/// Goodput in Mbit/s of two downloads run side by side for `duration`, one from the server's
/// Apple address and one from its other address, to the client: (Apple, normal).
pub fn apple_beside_normal(
    lab: &crate::Lab,
    ports: (u16, u16),
    duration: Duration,
) -> Result<(f64, f64), Error> {
    let client = crate::CLIENT_V4.parse().expect("a valid address");
    let run = |server: &str, port: u16| {
        let server = SocketAddr::new(server.parse().expect("a valid address"), port);
        download(&lab.client, client, &lab.server, server, duration)
            .map(|bytes| bytes as f64 * 8.0 / duration.as_secs_f64() / 1e6)
    };
    thread::scope(|scope| {
        let apple = scope.spawn(|| run(crate::SERVER_APPLE_V4, ports.0));
        let normal = scope.spawn(|| run(crate::SERVER_OTHER_V4, ports.1));
        let apple = apple.join().expect("download thread")?;
        let normal = normal.join().expect("download thread")?;
        Ok((apple, normal))
    })
}
