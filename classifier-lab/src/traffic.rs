//! Traffic between the lab's hosts: TCP and MPTCP transfers and timed downloads, from
//! sockets opened inside the namespaces (a socket belongs to the namespace it was made in, so
//! it can be used from any thread afterwards).

use std::{
    io::{Read as _, Write as _},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket},
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

/// A connection from `source` (port chosen by the kernel) in `ns` to `destination`.
pub fn connect(
    ns: &Netns,
    source: std::net::IpAddr,
    destination: SocketAddr,
    mptcp: bool,
) -> Result<TcpStream, Error> {
    ns.enter(|| {
        let socket = stream_socket(&destination, mptcp)?;
        socket.bind(&SocketAddr::new(source, 0).into())?;
        socket.connect(&destination.into())?;
        Ok(socket.into())
    })?
    .map_err(io("connecting"))
}

/// Sends `bytes` from `client` (bound to `source`) to a fresh listener on `server`; returns
/// what the server received. With `subflows` above 1 (MPTCP), the first chunk goes alone and
/// the rest only once that many subflows are established, so the path manager's extra
/// subflow carries some of it: the client's path manager opens subflows only once the
/// connection is fully established, which takes the server's acknowledgement of data.
pub fn transfer(
    client: &Netns,
    source: std::net::IpAddr,
    server: &Netns,
    destination: SocketAddr,
    bytes: usize,
    mptcp: bool,
    subflows: usize,
) -> Result<usize, Error> {
    let listener = listen(server, destination, mptcp)?;
    let receiver = thread::spawn(move || -> std::io::Result<usize> {
        let (mut stream, _) = listener.accept()?;
        let mut received = 0;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buffer)? {
                0 => return Ok(received),
                n => received += n,
            }
        }
    });
    let mut stream = connect(client, source, destination, mptcp)?;
    let chunk = vec![0x5a; 64 * 1024];
    let mut left = bytes;
    let mut first = true;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n]).map_err(io("sending"))?;
        left -= n;
        if std::mem::take(&mut first) && subflows > 1 {
            wait_for_subflows(&stream, subflows)?;
        }
    }
    stream.shutdown(Shutdown::Write).map_err(io("closing"))?;
    let received = receiver
        .join()
        .map_err(|_| io_error("receiver".to_owned())(std::io::Error::other("panicked")))?
        .map_err(io("receiving"))?;
    Ok(received)
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
    use std::os::fd::AsRawFd as _;
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

/// Waits up to 5 s for `wanted` established subflows.
fn wait_for_subflows(stream: &TcpStream, wanted: usize) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        let established = established_subflows(stream).map_err(io("reading MPTCP_TCPINFO"))?;
        if established >= wanted {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(5) {
            return Err(io("waiting for MPTCP subflows")(std::io::Error::other(
                format!("{established} of {wanted} subflows established after 5 s"),
            )));
        }
        // A poll interval, not a synchronisation.
        thread::sleep(Duration::from_millis(10));
    }
}

/// A download: `server` sends to `client` as fast as the path allows for `duration`;
/// returns the bytes the client received in that time.
pub fn download(
    client: &Netns,
    client_addr: std::net::IpAddr,
    server: &Netns,
    server_addr: SocketAddr,
    duration: Duration,
) -> Result<u64, Error> {
    let listener = listen(server, server_addr, false)?;
    let sender = thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        let chunk = vec![0xa5; 64 * 1024];
        // Until the client hangs up.
        while stream.write_all(&chunk).is_ok() {}
        Ok(())
    });
    let mut stream = connect(client, client_addr, server_addr, false)?;
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(io("setting a timeout"))?;
    let start = Instant::now();
    let mut received = 0u64;
    let mut buffer = vec![0u8; 256 * 1024];
    while start.elapsed() < duration {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received += n as u64,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(error) => return Err(io("downloading")(error)),
        }
    }
    drop(stream);
    let _ = sender.join();
    Ok(received)
}

/// `count` UDP datagrams of `size` bytes from `source` in `client` to `destination`.
pub fn udp_stream(
    client: &Netns,
    source: std::net::IpAddr,
    destination: SocketAddr,
    count: usize,
    size: usize,
) -> Result<(), Error> {
    let socket = client
        .enter(|| UdpSocket::bind(SocketAddr::new(source, 0)))?
        .map_err(io("binding"))?;
    let payload = vec![0x42; size];
    for _ in 0..count {
        socket
            .send_to(&payload, destination)
            .map_err(io("sending"))?;
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
