//! The loaded classifier: its programs (XDP, and tc for interfaces without native XDP) and
//! its maps.

use std::marker::PhantomData;

use aya::{
    Ebpf, EbpfLoader,
    programs::{SchedClassifier, TestRun, TestRunOptions, Xdp},
};

use super::{
    EBPF_OBJECT, Hook,
    maps::{ClassifierMaps, MapWriter},
    names::{ALL_MAPS, PROGRAM_CLASSIFY, PROGRAM_CLASSIFY_TC, PROGRAM_STEER},
    pin_dir::{PinDir, restrict},
};
use crate::{Error, capabilities};

/// Where a loaded classifier's maps live, which says who may write them.
///
/// Its own, unpinned maps, which no other process sees: the tests, `classifier analyze` and
/// the benchmarks. Their owner writes them freely (`Classifier::writer`).
pub enum Private {}
/// The live state pinned in bpffs: written only under `control`'s writer lock.
pub enum Pinned {}

/// The classifier loaded into the kernel, with its maps: private ones, or the pinned ones.
pub struct Classifier<Where = Private> {
    ebpf: Ebpf,
    /// The maps: to read through `maps`, to write through `writer` (a private object's) or
    /// `control`'s writer lock (the pinned ones). Private, so that no other set of maps can
    /// be put where a private object's writer would reach it.
    maps: ClassifierMaps,
    place: PhantomData<Where>,
}

/// What one BPF_PROG_TEST_RUN returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunOutput {
    /// What the program returned: the XDP action (2 = XDP_PASS) or the tc one (0 = TC_ACT_OK).
    pub verdict: u32,
    /// The packet as the program left it.
    pub packet: Vec<u8>,
}

impl Classifier<Private> {
    /// Loads the XDP program and creates fresh maps. Nothing is attached or pinned: this is
    /// the form the tests and `classifier analyze` use, and it never touches the live state.
    pub fn load() -> Result<Self, Error> {
        Self::load_for(Hook::Xdp)
    }

    /// As `load`, with the program of `hook` loaded instead.
    pub fn load_for(hook: Hook) -> Result<Self, Error> {
        capabilities::require("loading the program", capabilities::LOAD)?;
        Self::with_object(EbpfLoader::new().load(EBPF_OBJECT)?, &[hook])
    }

    /// As `load`, from another build of the kernel object: the benchmark's ablation loads
    /// variants of classifier-ebpf with one stage taken out (its `ablate-*` features).
    #[cfg(feature = "bench")]
    pub fn load_object(object: &[u8]) -> Result<Self, Error> {
        capabilities::require("loading the program", capabilities::LOAD)?;
        Self::with_object(EbpfLoader::new().load(object)?, &[Hook::Xdp])
    }

    /// Writes the maps: this object's own, which nothing else sees.
    pub fn writer(&mut self) -> MapWriter<'_> {
        MapWriter::private(&mut self.maps)
    }

    /// The DNS queries and answers the program handed over since the last call.
    pub fn take_dns_events(&mut self) -> Vec<Vec<u8>> {
        self.maps.take_dns_events()
    }
}

impl Classifier<Pinned> {
    /// Loads both programs with their maps pinned in `pin_dir`: maps already pinned there are
    /// reused (so counters, flows and prefixes survive a reload), missing ones are created and
    /// pinned 0600. The directory must have been prepared (`PinDir::prepare`). Only `control`
    /// loads it, under the writer lock (`control::state::load_pinned` for everyone else): it
    /// may create maps.
    pub(crate) fn load_pinned(pin_dir: &PinDir) -> Result<Self, Error> {
        capabilities::require("loading the program", capabilities::LOAD)?;
        Self::with_object(load_object_pinned(pin_dir)?, &Hook::ALL)
    }
}

impl<Where> Classifier<Where> {
    /// The maps, to read.
    pub fn maps(&self) -> &ClassifierMaps {
        &self.maps
    }

    /// Takes the object's maps and loads the programs of `hooks` into the kernel.
    fn with_object(mut ebpf: Ebpf, hooks: &[Hook]) -> Result<Self, Error> {
        let maps = ClassifierMaps::take_from(&mut ebpf)?;
        let mut classifier = Self {
            ebpf,
            maps,
            place: PhantomData,
        };
        for hook in hooks {
            match hook {
                Hook::Xdp => classifier
                    .xdp_mut()?
                    .load()
                    .map_err(Error::program(PROGRAM_CLASSIFY))?,
                Hook::Tc => classifier
                    .tc_mut()?
                    .load()
                    .map_err(Error::program(PROGRAM_CLASSIFY_TC))?,
            }
        }
        Ok(classifier)
    }

    pub fn xdp(&self) -> Result<&Xdp, Error> {
        xdp(&self.ebpf, PROGRAM_CLASSIFY)
    }

    pub fn xdp_mut(&mut self) -> Result<&mut Xdp, Error> {
        xdp_mut(&mut self.ebpf, PROGRAM_CLASSIFY)
    }

    /// The tc program (`classify_tc`), loaded by `load_for(Hook::Tc)` and `load_pinned`.
    pub fn tc(&self) -> Result<&SchedClassifier, Error> {
        self.ebpf
            .program(PROGRAM_CLASSIFY_TC)
            .ok_or(Error::MissingProgram(PROGRAM_CLASSIFY_TC))?
            .try_into()
            .map_err(Error::program(PROGRAM_CLASSIFY_TC))
    }

    pub fn tc_mut(&mut self) -> Result<&mut SchedClassifier, Error> {
        self.ebpf
            .program_mut(PROGRAM_CLASSIFY_TC)
            .ok_or(Error::MissingProgram(PROGRAM_CLASSIFY_TC))?
            .try_into()
            .map_err(Error::program(PROGRAM_CLASSIFY_TC))
    }

    /// Runs the XDP program once over `packet` with BPF_PROG_TEST_RUN.
    pub fn test_run(&self, packet: &[u8]) -> Result<TestRunOutput, Error> {
        self.test_run_on(Hook::Xdp, packet)
    }

    /// Runs the program of `hook` once over `packet` with BPF_PROG_TEST_RUN. For tc the
    /// kernel builds an skb of the packet (on `lo`, data at the Ethernet header), which it
    /// refuses for packets shorter than an Ethernet header.
    pub fn test_run_on(&self, hook: Hook, packet: &[u8]) -> Result<TestRunOutput, Error> {
        self.test_run_at(hook, packet, None)
    }

    /// `test_run_on`, as if `packet` came in through interface `ifindex` of this thread's
    /// network namespace (None: `lo`). The kernel resolves the interface there.
    pub fn test_run_at(
        &self,
        hook: Hook,
        packet: &[u8],
        ifindex: Option<u32>,
    ) -> Result<TestRunOutput, Error> {
        // The program never grows a packet; the slack only guards against ENOSPC.
        let mut out = vec![0u8; packet.len() + 256];
        // xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
        let mut xdp_md = [0u32; 6];
        let mut sk_buff = [0u8; SK_BUFF_LEN];
        let context: Option<&[u8]> = match (ifindex, hook) {
            (None, _) => None,
            (Some(ifindex), Hook::Xdp) => {
                xdp_md[1] = packet.len() as u32;
                xdp_md[3] = ifindex;
                Some(bytemuck_u32(&xdp_md))
            }
            (Some(ifindex), Hook::Tc) => {
                sk_buff[SK_BUFF_IFINDEX..][..4].copy_from_slice(&ifindex.to_ne_bytes());
                Some(&sk_buff)
            }
        };
        let options = TestRunOptions {
            data_in: Some(packet),
            data_out: Some(&mut out),
            ctx_in: context,
            ..TestRunOptions::default()
        };
        let result = match hook {
            Hook::Xdp => self.xdp()?.test_run(options),
            Hook::Tc => self.tc()?.test_run(options),
        }
        .map_err(Error::program(hook.program()))?;
        out.truncate(result.data_size_out as usize);
        Ok(TestRunOutput {
            verdict: result.return_value,
            packet: out,
        })
    }
}

/// What one BPF_PROG_TEST_RUN of the egress program returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SteerRunOutput {
    /// The tc action (0 = TC_ACT_OK).
    pub verdict: u32,
    /// skb->priority as the program left it: the HTB class id it steered the packet to.
    pub priority: u32,
    /// The packet as the program left it.
    pub packet: Vec<u8>,
}

/// The size of `struct __sk_buff` (uapi/linux/bpf.h, through `hwtstamp`), and where its
/// `priority` and `ifindex` fields are: BPF_PROG_TEST_RUN takes the skb's context in it.
const SK_BUFF_LEN: usize = 192;
const SK_BUFF_PRIORITY: usize = 32;
const SK_BUFF_IFINDEX: usize = 40;

impl Classifier {
    /// The egress program (`steer`), loaded by `steer_mut` (or `steer_test_run`).
    pub fn steer(&self) -> Result<&SchedClassifier, Error> {
        self.ebpf
            .program(PROGRAM_STEER)
            .ok_or(Error::MissingProgram(PROGRAM_STEER))?
            .try_into()
            .map_err(Error::program(PROGRAM_STEER))
    }

    /// The egress program, with this object's maps; loaded on first use.
    pub fn steer_mut(&mut self) -> Result<&mut SchedClassifier, Error> {
        let program: &mut SchedClassifier = self
            .ebpf
            .program_mut(PROGRAM_STEER)
            .ok_or(Error::MissingProgram(PROGRAM_STEER))?
            .try_into()
            .map_err(Error::program(PROGRAM_STEER))?;
        if program.fd().is_err() {
            program.load().map_err(Error::program(PROGRAM_STEER))?;
        }
        Ok(program)
    }

    /// Runs the egress program (`steer`) once over `packet`, as if it left through
    /// interface `ifindex` of this thread's network namespace (0: the loopback) with
    /// skb->priority `priority`. The program is loaded on first use.
    pub fn steer_test_run(
        &mut self,
        packet: &[u8],
        ifindex: u32,
        priority: u32,
    ) -> Result<SteerRunOutput, Error> {
        let program = self.steer_mut()?;
        let mut context = [0u8; SK_BUFF_LEN];
        context[SK_BUFF_PRIORITY..][..4].copy_from_slice(&priority.to_ne_bytes());
        context[SK_BUFF_IFINDEX..][..4].copy_from_slice(&ifindex.to_ne_bytes());
        let mut context_out = [0u8; SK_BUFF_LEN];
        let mut out = vec![0u8; packet.len() + 256];
        let result = program
            .test_run(TestRunOptions {
                data_in: Some(packet),
                data_out: Some(&mut out),
                ctx_in: Some(&context),
                ctx_out: Some(&mut context_out),
                ..TestRunOptions::default()
            })
            .map_err(Error::program(PROGRAM_STEER))?;
        out.truncate(result.data_size_out as usize);
        let priority = u32::from_ne_bytes(
            context_out[SK_BUFF_PRIORITY..][..4]
                .try_into()
                .expect("four bytes"),
        );
        Ok(SteerRunOutput {
            verdict: result.return_value,
            priority,
            packet: out,
        })
    }
}

/// The bytes of `words`, as the kernel reads a context struct of u32 fields.
fn bytemuck_u32(words: &[u32; 6]) -> &[u8] {
    // SAFETY: u32 has no padding and any byte is a valid u8; the length is the array's.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), size_of_val(words)) }
}

/// The XDP program `name` of the object.
fn xdp<'a>(ebpf: &'a Ebpf, name: &'static str) -> Result<&'a Xdp, Error> {
    ebpf.program(name)
        .ok_or(Error::MissingProgram(name))?
        .try_into()
        .map_err(Error::program(name))
}

fn xdp_mut<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Xdp, Error> {
    ebpf.program_mut(name)
        .ok_or(Error::MissingProgram(name))?
        .try_into()
        .map_err(Error::program(name))
}

/// The object with its maps pinned in `pin_dir` (reused when already pinned, else created and
/// pinned 0600); no program is loaded yet.
fn load_object_pinned(pin_dir: &PinDir) -> Result<Ebpf, Error> {
    let paths: Vec<_> = ALL_MAPS
        .iter()
        .map(|name| (*name, pin_dir.map(name)))
        .collect();
    let mut loader = EbpfLoader::new();
    for (name, path) in &paths {
        loader.map_pin_path(name, path.as_path());
    }
    let ebpf = loader
        .load(EBPF_OBJECT)
        .map_err(|source| Error::IncompatibleState {
            dir: pin_dir.path().to_path_buf(),
            detail: format!("the pinned maps do not fit this program: {source}"),
        })?;
    for (_, path) in &paths {
        restrict(path, 0o600)?;
    }
    Ok(ebpf)
}

/// The egress program (`steer`, tc) loaded with the pinned maps.
pub struct Steer {
    ebpf: Ebpf,
}

impl Steer {
    pub(crate) fn load_pinned(pin_dir: &PinDir) -> Result<Self, Error> {
        capabilities::require("loading the shaper's program", capabilities::LOAD)?;
        let mut egress = Self {
            ebpf: load_object_pinned(pin_dir)?,
        };
        egress
            .program_mut()?
            .load()
            .map_err(Error::program(PROGRAM_STEER))?;
        Ok(egress)
    }

    pub fn program_mut(&mut self) -> Result<&mut SchedClassifier, Error> {
        self.ebpf
            .program_mut(PROGRAM_STEER)
            .ok_or(Error::MissingProgram(PROGRAM_STEER))?
            .try_into()
            .map_err(Error::program(PROGRAM_STEER))
    }
}
