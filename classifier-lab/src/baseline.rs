//! What the benchmarks time the classifier against: `baseline`, an XDP program from the same
//! object that only returns XDP_PASS (and `baseline_tc`, its tc twin, returning TC_ACT_OK),
//! and the kernel's own timing of a program over a packet
//! (BPF_PROG_TEST_RUN with a repeat count). Only the benchmarks use them, so they live here
//! and not in the product's API.

use std::time::Duration;

use aya::{
    Ebpf, EbpfLoader, TestRunResult,
    programs::{SchedClassifier, TestRun, TestRunOptions, Xdp},
};
use classifier::{
    Classifier, Error,
    load::{
        EBPF_OBJECT,
        names::{PROGRAM_BASELINE, PROGRAM_BASELINE_TC, PROGRAM_CLASSIFY},
    },
};

/// The baseline program loaded into the kernel. Attached only by the forwarding benchmark,
/// to the lab's router.
pub struct Baseline {
    ebpf: Ebpf,
}

impl Baseline {
    pub fn load() -> Result<Self, Error> {
        let mut baseline = Self {
            ebpf: EbpfLoader::new().load(EBPF_OBJECT)?,
        };
        baseline.xdp_mut()?.load().map_err(program_error)?;
        Ok(baseline)
    }

    /// The object with `baseline_tc` loaded instead, for tc.
    pub fn load_tc() -> Result<Self, Error> {
        let mut baseline = Self {
            ebpf: EbpfLoader::new().load(EBPF_OBJECT)?,
        };
        baseline.tc_mut()?.load().map_err(program_error)?;
        Ok(baseline)
    }

    /// `baseline_tc`, loaded by `load_tc`.
    pub fn tc(&self) -> Result<&SchedClassifier, Error> {
        self.ebpf
            .program(PROGRAM_BASELINE_TC)
            .ok_or(Error::MissingProgram(PROGRAM_BASELINE_TC))?
            .try_into()
            .map_err(program_error)
    }

    pub fn tc_mut(&mut self) -> Result<&mut SchedClassifier, Error> {
        self.ebpf
            .program_mut(PROGRAM_BASELINE_TC)
            .ok_or(Error::MissingProgram(PROGRAM_BASELINE_TC))?
            .try_into()
            .map_err(program_error)
    }

    pub fn xdp(&self) -> Result<&Xdp, Error> {
        self.ebpf
            .program(PROGRAM_BASELINE)
            .ok_or(Error::MissingProgram(PROGRAM_BASELINE))?
            .try_into()
            .map_err(program_error)
    }

    pub fn xdp_mut(&mut self) -> Result<&mut Xdp, Error> {
        self.ebpf
            .program_mut(PROGRAM_BASELINE)
            .ok_or(Error::MissingProgram(PROGRAM_BASELINE))?
            .try_into()
            .map_err(program_error)
    }
}

fn program_error(source: aya::programs::ProgramError) -> Error {
    Error::Program {
        program: PROGRAM_BASELINE,
        source,
    }
}

/// Runs a loaded XDP program `repeat` times over `packet` in the kernel; returns the mean time
/// per run as the kernel measured it (`time_run` times any program).
pub trait TimeRun {
    fn time_run(&self, packet: &[u8], repeat: u32) -> Result<Duration, Error>;
}

impl<Where> TimeRun for Classifier<Where> {
    fn time_run(&self, packet: &[u8], repeat: u32) -> Result<Duration, Error> {
        time_run(self.xdp()?, PROGRAM_CLASSIFY, packet, repeat)
    }
}

impl TimeRun for Baseline {
    fn time_run(&self, packet: &[u8], repeat: u32) -> Result<Duration, Error> {
        time_run(self.xdp()?, PROGRAM_BASELINE, packet, repeat)
    }
}

/// BPF_PROG_TEST_RUN of `program` (XDP, or tc over an skb the kernel builds on `lo`),
/// `repeat` times over `packet`: the kernel's mean per run.
pub fn time_run<P>(
    program: &P,
    name: &'static str,
    packet: &[u8],
    repeat: u32,
) -> Result<Duration, Error>
where
    P: for<'a> TestRun<Opts<'a> = TestRunOptions<'a>, Result = TestRunResult>,
{
    let result = program
        .test_run(TestRunOptions {
            data_in: Some(packet),
            repeat,
            ..TestRunOptions::default()
        })
        .map_err(|source| Error::Program {
            program: name,
            source,
        })?;
    Ok(result.duration)
}
