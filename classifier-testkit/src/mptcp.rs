//! MPTCP options (TCP option kind 30) as iOS and Linux send them, built byte by byte from
//! RFC 6824 (v0) and RFC 8684 (v1).

pub const KIND: u8 = 30;

/// The counter each subtype moves, by subtype number: written out here, not taken from the
/// library's labels, so that a test catches a wrong one.
pub const SUBTYPE_COUNTERS: [&str; 9] = [
    "mptcp_mp_capable",
    "mptcp_mp_join",
    "mptcp_dss",
    "mptcp_add_addr",
    "mptcp_remove_addr",
    "mptcp_mp_prio",
    "mptcp_mp_fail",
    "mptcp_mp_fastclose",
    "mptcp_mp_tcprst",
];
const KEY_A: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
const KEY_B: [u8; 8] = [0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01];

fn option(subtype_version: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![KIND, (body.len() + 3) as u8, subtype_version];
    bytes.extend_from_slice(body);
    bytes
}

fn with(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// MP_CAPABLE v0 SYN as iOS 7 sent it: 12 bytes, flags 0x01, the sender's 64-bit key.
pub fn mp_capable_v0_syn() -> Vec<u8> {
    option(0x00, &with(&[&[0x01], &KEY_A]))
}

/// MP_CAPABLE v0 third ACK: 20 bytes, both keys.
pub fn mp_capable_v0_ack() -> Vec<u8> {
    option(0x00, &with(&[&[0x01], &KEY_A, &KEY_B]))
}

/// MP_CAPABLE v1 SYN as Linux sends it: 4 bytes, no key.
pub fn mp_capable_v1_syn() -> Vec<u8> {
    option(0x01, &[0x81])
}

/// MP_CAPABLE v1 SYN-ACK: 12 bytes with the server's key.
pub fn mp_capable_v1_syn_ack() -> Vec<u8> {
    option(0x01, &with(&[&[0x01], &KEY_B]))
}

/// MP_CAPABLE v1 ACK carrying data: both keys and the data-level length (22 bytes).
pub fn mp_capable_v1_ack_with_data() -> Vec<u8> {
    option(0x01, &with(&[&[0x01], &KEY_A, &KEY_B, &[0x00, 0x10]]))
}

/// MP_JOIN SYN: 12 bytes, address id, receiver's token and a random nonce.
pub fn mp_join_syn() -> Vec<u8> {
    option(
        0x10,
        &[0x02, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04],
    )
}

/// MP_JOIN SYN/ACK: 16 bytes, address id, a truncated 64-bit HMAC and a nonce.
pub fn mp_join_syn_ack() -> Vec<u8> {
    option(0x10, &with(&[&[0x01], &KEY_B, &[0x0a, 0x0b, 0x0c, 0x0d]]))
}

/// DSS with a 4-byte data ACK and a mapping (DSN, subflow sequence, length), 18 bytes;
/// with the DSS checksum, 20.
pub fn dss(checksum: bool) -> Vec<u8> {
    let mut body = vec![0x05]; // flags: M (mapping present) | A (data ACK present)
    body.extend_from_slice(&[0, 0, 0x10, 0]); // data ACK
    body.extend_from_slice(&[0, 0, 0x20, 0]); // data sequence number
    body.extend_from_slice(&[0, 0, 0, 1]); // subflow sequence number
    body.extend_from_slice(&[0x05, 0xb4]); // data-level length
    if checksum {
        body.extend_from_slice(&[0xab, 0xcd]);
    }
    option(0x20, &body)
}

pub fn add_addr() -> Vec<u8> {
    option(0x30, &with(&[&[0x03], &[17, 253, 0, 11], &KEY_A]))
}

pub fn remove_addr() -> Vec<u8> {
    option(0x40, &[0x03])
}

pub fn mp_prio() -> Vec<u8> {
    option(0x51, &[])
}

pub fn mp_fail() -> Vec<u8> {
    option(0x60, &with(&[&[0x00], &KEY_A]))
}

pub fn mp_fastclose() -> Vec<u8> {
    option(0x70, &with(&[&[0x00], &KEY_B]))
}

pub fn mp_tcprst() -> Vec<u8> {
    option(0x80, &[0x01])
}

/// One option of each subtype 0..=8, with its subtype.
pub fn one_of_each_subtype() -> Vec<(u8, Vec<u8>)> {
    vec![
        (0, mp_capable_v1_syn()),
        (1, mp_join_syn()),
        (2, dss(false)),
        (3, add_addr()),
        (4, remove_addr()),
        (5, mp_prio()),
        (6, mp_fail()),
        (7, mp_fastclose()),
        (8, mp_tcprst()),
    ]
}

pub const NOP: u8 = 1;
pub const EOL: u8 = 0;

/// MSS, SACK-permitted, timestamps and window scale, as a SYN carries them (20 bytes).
pub fn syn_options() -> Vec<u8> {
    vec![
        2, 4, 0x05, 0xb4, // MSS 1460
        4, 2, // SACK permitted
        8, 10, 0, 0, 0, 1, 0, 0, 0, 0, // timestamps
        NOP, 3, 3, 7, // window scale
    ]
}
