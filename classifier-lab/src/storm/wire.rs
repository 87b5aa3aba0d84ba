//! What the shaper sent, per class, as HTB counts it (whole frames, retransmissions
//! included): the floor is a rate on the wire, so the Apple class is held against it here as
//! well as in goodput.

use crate::{Lab, ROUTER_TO_CLIENT, io_error};
use classifier::Error;

/// Bytes sent so far by r0's normal (1:10) and bulk (1:20) classes. This iproute2 has no
/// JSON for classes: its text says `class htb 1:20 ...` then ` Sent N bytes ...`. HTB counts
/// a packet in its leaf's ancestors too, so 1:20 holds the bulk class's leaves, if any.
pub fn class_bytes(lab: &Lab) -> Result<(u64, u64), Error> {
    let output = lab
        .router
        .exec("tc", &["-s", "class", "show", "dev", ROUTER_TO_CLIENT])?;
    let text = String::from_utf8_lossy(&output.stdout);
    let bytes = |handle: &str| {
        let mut lines = text.lines();
        lines
            .find(|line| line.starts_with(&format!("class htb {handle} ")))
            .and_then(|_| lines.next())
            .and_then(|sent| sent.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                io_error(format!("reading tc's class {handle} on r0"))(std::io::Error::other(
                    format!("no class {handle} with a Sent line in: {text}"),
                ))
            })
    };
    Ok((bytes("1:10")?, bytes("1:20")?))
}
