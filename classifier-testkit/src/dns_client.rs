//! A DNS lookup from the lab's client to the lab's resolver, through the router: what teaches
//! `classifier run` an address (docs/design.md, 'DNS learning').

use classifier_lab::{self as lab, Lab};

/// Asks for `name`'s A record with query id `id` until answered (`classifier_lab::dns`).
pub fn lookup(lab: &Lab, name: &str, id: u16) {
    let (client, resolver) = (lab::CLIENT_V4, lab::SERVER_OTHER_V4);
    lab::dns::lookup(
        &lab.client,
        client.parse().unwrap(),
        resolver.parse().unwrap(),
        name,
        id,
    )
    .unwrap_or_else(|error| panic!("{error}"));
}
