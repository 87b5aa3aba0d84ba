//! The Prometheus endpoint of `classifier run`: the kernel's counters per interface, the
//! learned addresses, the refused DNS answers, the flow table's fill and the devices per list,
//! read from the maps at every scrape.

use std::sync::{Arc, Mutex};

use classifier_common::{
    Counter, MptcpSubtype, ParseError, counter::INTERFACE_SLOTS, limits::FLOW_ENTRIES_TOTAL,
};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

use crate::{
    ClassifierMaps, CounterSnapshot,
    load::ListNames,
    padded_name,
    report::{devices::devices_per_list, flows::monotonic_coarse_ns},
};

/// Reads the maps on every scrape. The maps are shared with nobody: this is its own handle.
pub struct Metrics {
    maps: Mutex<ClassifierMaps>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

type Labels = Vec<(&'static str, String)>;

impl Metrics {
    pub fn registry(maps: ClassifierMaps) -> Registry {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Arc::new(Self {
            maps: Mutex::new(maps),
        })));
        registry
    }

    /// (interface name, counters) for every interface slot in use, "other" for slot 0.
    fn interfaces(maps: &ClassifierMaps) -> Vec<(String, CounterSnapshot)> {
        let mut names = vec![(0, "other".to_owned())];
        for (_, attachment) in maps.attachments().unwrap_or_default() {
            if attachment.counter_slot != 0 && attachment.counter_slot < INTERFACE_SLOTS {
                names.push((attachment.counter_slot, padded_name(&attachment.name)));
            }
        }
        names
            .into_iter()
            .filter_map(|(slot, name)| maps.counters_of_slot(slot).ok().map(|c| (name, c)))
            .collect()
    }
}

/// One scrape's text, as the endpoint serves it.
pub fn scrape_text(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

fn counter_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: &[(Labels, i64)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let maps = self
            .maps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let interfaces = Self::interfaces(&maps);
        let names = ListNames::read(&maps).unwrap_or_default();
        let classes = Counter::CLASSES;
        let per_interface = |pick: &dyn Fn(&CounterSnapshot) -> Vec<(Labels, u64)>| {
            interfaces
                .iter()
                .flat_map(|(interface, counters)| {
                    pick(counters).into_iter().map(move |(mut labels, value)| {
                        labels.insert(0, ("interface", interface.clone()));
                        (labels, value)
                    })
                })
                .collect::<Vec<_>>()
        };
        let by_class = |field: fn(classifier_common::CounterValue) -> u64| {
            per_interface(&|c: &CounterSnapshot| {
                classes
                    .iter()
                    .map(|(class, counter)| {
                        (
                            vec![("class", (*class).to_owned())],
                            field(c.get(counter.index())),
                        )
                    })
                    .collect()
            })
        };
        counter_family(
            &mut encoder,
            "classifier_packets",
            "Packets seen by the XDP program, by class (each packet in one class).",
            &by_class(|v| v.packets),
        )?;
        counter_family(
            &mut encoder,
            "classifier_bytes",
            "Bytes seen by the XDP program, by class.",
            &by_class(|v| v.bytes),
        )?;
        counter_family(
            &mut encoder,
            "classifier_list_packets",
            "Packets whose source or destination is in a prefix list (a packet may count in several).",
            &per_interface(&|c: &CounterSnapshot| {
                names
                    .iter()
                    .map(|(bit, name)| {
                        (
                            vec![("list", name.to_owned())],
                            c.get(Counter::for_list(bit)).packets,
                        )
                    })
                    .collect()
            }),
        )?;
        counter_family(
            &mut encoder,
            "classifier_mptcp_packets",
            "Packets carrying an MPTCP option (TCP option 30), by subtype.",
            &per_interface(&|c: &CounterSnapshot| {
                MptcpSubtype::ALL
                    .iter()
                    .map(|s| {
                        let value = c.get(Counter::for_mptcp_subtype(*s as u8)).packets;
                        (vec![("subtype", s.name().to_owned())], value)
                    })
                    .collect()
            }),
        )?;
        counter_family(
            &mut encoder,
            "classifier_mptcp_fallbacks",
            "MPTCP connections that fell back to plain TCP: the SYN/ACK answering an MPTCP SYN came back without it.",
            &per_interface(&|c: &CounterSnapshot| {
                vec![(vec![], c.get(Counter::MptcpFallback.index()).packets)]
            }),
        )?;
        counter_family(
            &mut encoder,
            "classifier_transport_unreachable",
            "IP packets classified by their addresses alone because their transport header is out of reach (an IPv6 extension chain longer than the walk; at tc, headers past what can be pulled).",
            &per_interface(&|c: &CounterSnapshot| {
                vec![(vec![], c.get(Counter::TransportUnreachable.index()).packets)]
            }),
        )?;
        counter_family(
            &mut encoder,
            "classifier_parse_errors",
            "Packets with a parse error, by kind. Errors in the TCP options stop the options walk but the packet is still classified; any other kind leaves it unclassified. All are passed.",
            &per_interface(&|c: &CounterSnapshot| {
                ParseError::ALL
                    .iter()
                    .map(|e| {
                        (
                            vec![("kind", e.name().to_owned())],
                            c.get(Counter::for_parse_error(*e)).packets,
                        )
                    })
                    .collect()
            }),
        )?;
        counter_family(
            &mut encoder,
            "classifier_actions",
            "Packets a policy rule matched, by what was done: marked, already_marked, dry_run_would_mark, kept_by_rule.",
            &per_interface(&|c: &CounterSnapshot| {
                [
                    Counter::Marked,
                    Counter::AlreadyMarked,
                    Counter::DryRunWouldMark,
                    Counter::KeptByRule,
                ]
                .iter()
                .map(|counter| {
                    (
                        vec![("action", counter.name().to_owned())],
                        c.get(counter.index()).packets,
                    )
                })
                .collect()
            }),
        )?;
        // Answers refused by `run` itself: not per interface (the slots are user space's).
        let refused: Vec<(Labels, u64)> = crate::dns::refused(&maps)
            .unwrap_or_default()
            .into_iter()
            .map(|(why, value)| (vec![("reason", why.name().to_owned())], value.packets))
            .collect();
        counter_family(
            &mut encoder,
            "classifier_dns_refused_answers",
            "DNS answers refused in whole or in part, and failed own lookups, by reason: untrusted (not a named resolver on its interface), unmatched (no query seen, or a replay), over_cap (a list is full), malformed, off_chain, forbidden (an address never learned), table_full, lookup_failed.",
            &refused,
        )?;
        let entries = maps.learned().unwrap_or_default();
        let learned: Vec<(Labels, i64)> = names
            .iter()
            .map(|(bit, name)| {
                let count = entries.iter().filter(|(key, _)| key.list == bit).count();
                (vec![("list", name.to_owned())], count as i64)
            })
            .collect();
        gauge_family(
            &mut encoder,
            "classifier_learned_prefixes",
            "Addresses learned from DNS (records in the learned table), by list.",
            &learned,
        )?;
        // The whole table in a few dozen batched reads (`ClassifierMaps::flows`), through this
        // endpoint's own handle: nothing here is shared with learning.
        let flows = maps.flows().unwrap_or_default();
        let devices: Vec<(Labels, i64)> = devices_per_list(&flows, &names, monotonic_coarse_ns())
            .into_iter()
            .map(|list| (vec![("list", list.name)], list.active_devices as i64))
            .collect();
        gauge_family(
            &mut encoder,
            "classifier_devices",
            "Devices (LAN-side addresses: the clients of their flows) with a flow in the list that had a packet in the last minute.",
            &devices,
        )?;
        gauge_family(
            &mut encoder,
            "classifier_flow_table_entries",
            "Entries in the flow table.",
            &[(vec![], flows.len() as i64)],
        )?;
        gauge_family(
            &mut encoder,
            "classifier_flow_table_capacity",
            "Entries the flow tables (TCP and UDP, IPv4 and IPv6) hold before the least recently used are evicted.",
            &[(vec![], i64::from(FLOW_ENTRIES_TOTAL))],
        )
    }
}
