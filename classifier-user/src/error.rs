//! Errors of the library layer. The binary adds context with anyhow at its edge.

use aya::{EbpfError, maps::MapError, programs::ProgramError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("loading the classifier's eBPF object: {0}")]
    Load(#[from] EbpfError),
    #[error("the eBPF object has no program `{0}` (was it built from this source tree?)")]
    MissingProgram(&'static str),
    #[error("the eBPF object has no map `{0}` (was it built from this source tree?)")]
    MissingMap(&'static str),
    #[error("map `{map}`: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: MapError,
    },
    #[error("program `{program}`: {source}")]
    Program {
        program: &'static str,
        #[source]
        source: ProgramError,
    },
}

impl Error {
    pub(crate) fn map(map: &'static str) -> impl FnOnce(MapError) -> Self {
        move |source| Self::Map { map, source }
    }

    pub(crate) fn program(program: &'static str) -> impl FnOnce(ProgramError) -> Self {
        move |source| Self::Program { program, source }
    }
}
