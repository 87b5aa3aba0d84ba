//! A DNS lookup from the lab's client to the lab's resolver, through the router: what teaches
//! `classifier run` an address (docs/design.md, 'DNS learning').

use std::{net::UdpSocket, time::Duration};

use classifier_lab::{self as lab, Lab};
use simple_dns::{CLASS, Name, Packet, Question, TYPE};

/// Asks for `name`'s A record with query id `id` and waits up to 5 s for the answer.
pub fn lookup(lab: &Lab, name: &str, id: u16) {
    let socket = lab
        .client
        .enter(|| UdpSocket::bind((lab::CLIENT_V4, 0)))
        .unwrap()
        .unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut query = Packet::new_query(id);
    query.questions.push(Question::new(
        Name::new_unchecked(name),
        TYPE::A.into(),
        CLASS::IN.into(),
        false,
    ));
    socket
        .send_to(
            &query.build_bytes_vec().unwrap(),
            (lab::SERVER_OTHER_V4, 53),
        )
        .unwrap();
    let mut buffer = [0u8; 1500];
    socket.recv_from(&mut buffer).expect("a DNS answer");
}
