//! The HTTP side of the metrics endpoint: `GET /metrics` answered with the registry's text,
//! one connection at a time, in a thread of its own so that a scrape never holds up learning.
//! Reads and writes time out, so a client that stalls costs at most a few seconds.

use std::{
    io::{self, Read as _, Write as _},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    time::Duration,
};

use prometheus_client::registry::Registry;

use crate::Error;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// How long a client may take to send its request or to take the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// A request head longer than this is not a scrape.
const MAX_HEAD: usize = 8192;

/// Binds `addr` (an error if taken) and answers scrapes from then on, for the life of the
/// process.
pub fn serve(addr: SocketAddr, registry: Registry) -> Result<(), Error> {
    let listener = TcpListener::bind(addr)
        .map_err(Error::io(format!("binding the metrics endpoint to {addr}")))?;
    std::thread::Builder::new()
        .name("metrics".to_owned())
        .spawn(move || {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Err(error) = answer(stream, &registry) {
                            log::debug!("metrics endpoint: a client: {error}");
                        }
                    }
                    Err(error) => {
                        log::error!("metrics endpoint: {error}");
                        // Out of descriptors, most likely: give the process time to close some.
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        })
        .map_err(Error::io("starting the metrics endpoint"))?;
    Ok(())
}

fn answer(mut stream: TcpStream, registry: &Registry) -> io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let request_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let request_line = String::from_utf8_lossy(request_line);
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or_default();
    let target = words.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    let response = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let (content_type, body) = match super::metrics::scrape_text(registry) {
                Ok(text) => (CONTENT_TYPE, text),
                Err(_) => ("text/plain", "encoding failed".to_owned()),
            };
            let sent = if method == "HEAD" { "" } else { &body };
            response(
                "200 OK",
                &[("content-type", content_type)],
                sent,
                body.len(),
            )
        }
        (_, "/metrics") => response("405 Method Not Allowed", &[("allow", "GET,HEAD")], "", 0),
        _ => response("404 Not Found", &[], "", 0),
    };
    stream.write_all(response.as_bytes())?;
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

/// The request up to its blank line; the rest (a GET has no body) is never read.
fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request too long",
            ));
        }
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    Ok(head)
}

fn response(status: &str, headers: &[(&str, &str)], body: &str, length: usize) -> String {
    let mut text = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!(
        "content-length: {length}\r\nconnection: close\r\n\r\n{body}"
    ));
    text
}
