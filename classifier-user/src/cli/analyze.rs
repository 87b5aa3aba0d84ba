//! `classifier analyze`: a capture through the real kernel program.

use std::{
    io::{BufWriter, IsTerminal as _, Write as _},
    path::PathBuf,
};

use clap::Args;
use classifier::analyze;

use super::Context;

/// Characterize a capture: run every packet through the real kernel program.
///
/// The packets go through the same XDP program the router runs (BPF_PROG_TEST_RUN), in
/// capture order, with a private flow table and counters: the live state is never touched.
/// pcap and pcapng (any number of interfaces) with Ethernet, Linux cooked (SLL, SLL2), raw
/// IP, PPP or BSD loopback (NULL, LOOP: macOS `tcpdump -i lo0`) frames. The summary gives packets and bytes per class, MPTCP connections and subtypes,
/// the top flows, and the share of bytes the policy would mark.
#[derive(Args)]
#[command(after_help = "Examples:
  tcpdump -i eth1 -w update.pcap -c 200000 && classifier analyze update.pcap
  classifier analyze update.pcapng --prefixes apple=/etc/classifier/apple.txt --prefixes cdn=cdn.txt
  classifier -j analyze update.pcap --policy list:apple=LE mptcp=LE | jq 'select(.mptcp_option)'

-j (--json) prints JSON Lines: one object per packet, with exactly these keys:
  {\"index\":0,\"len\":74,\"verdict\":\"pass\",\"mptcp_option\":true,\"mptcp_subtypes\":[0],
   \"mptcp_version\":1,\"mptcp_flow\":false,\"mptcp_state\":\"attempted\",\"lists\":[\"apple\"],
   \"dscp_in\":0,\"dscp_out\":1,\"error\":null}
mptcp_version is there only for MP_CAPABLE; mptcp_state is the flow's: no, attempted (a SYN
offered MPTCP), fallback (the SYN/ACK came back without it) or yes. An option 30 that Linux
would not accept counts for nothing and sets error to mptcp_option_malformed; an error in the
TCP options does not stop classification. verdict, dscp_in and dscp_out are null for a record
that never reached the program (its `error` says why).")]
pub struct AnalyzeArgs {
    /// The capture (pcap or pcapng).
    file: PathBuf,
    /// A prefix list for this analysis: FILE replaces the `apple` list, NAME=FILE defines
    /// list NAME. Repeatable. Without it, the shipped `apple` list is used.
    #[arg(long, value_name = "[NAME=]FILE")]
    prefixes: Vec<String>,
    /// The policy for this analysis, as for `policy set` [default: list:apple=LE mptcp=keep].
    #[arg(long, value_name = "MATCH=ACTION", num_args = 1..)]
    policy: Vec<String>,
}

pub fn analyze(context: &Context, args: AnalyzeArgs) -> anyhow::Result<()> {
    // Under -j the packets are a stream: one object per line instead of the summary.
    let json = context.format.is_json();
    let settings = analyze::Settings::from_args(&args.prefixes, &args.policy)?;

    let size = std::fs::metadata(&args.file).map(|m| m.len()).unwrap_or(0);
    let progress = (std::io::stderr().is_terminal() && size > 16 << 20).then(|| {
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}",
            )
            .expect("a valid template"),
        );
        bar
    });
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut write_error = None;
    let analysis = analyze::analyze(&args.file, &settings, |packet| {
        if let Some(bar) = &progress {
            // Record header and data: close enough to the file offset for a progress bar.
            bar.inc(packet.len as u64 + 16);
        }
        if json && write_error.is_none() {
            let line = serde_json::to_string(packet).expect("a verdict serializes");
            if let Err(error) = writeln!(out, "{line}") {
                write_error = Some(error);
            }
        }
    })?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if let Some(error) = write_error {
        // A closed pipe (`| head`) is not an error worth a message.
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(error.into());
        }
        return Ok(());
    }
    if !json {
        write!(out, "{}", analysis.summary)?;
    }
    out.flush()?;
    Ok(())
}
