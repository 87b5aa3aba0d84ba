//! Scraping `classifier run`'s metrics endpoint from inside the namespace it listens in.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
};

use classifier_lab::Netns;

/// The whole HTTP response to `GET /metrics` on 127.0.0.1:`port` in `netns`.
pub fn scrape(netns: &Netns, port: u16) -> std::io::Result<String> {
    netns
        .enter(|| scrape_here(port))
        .map_err(|error| std::io::Error::other(error.to_string()))?
}

/// The same, from a thread already in the namespace.
pub fn scrape_here(port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}
