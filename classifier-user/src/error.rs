//! Errors of the library layer. Each says what was wrong and where; `is_bad_input` tells the
//! CLI which ones the user caused (exit code 2) and which the system did (exit code 1).

use std::{io, path::PathBuf};

use aya::{
    EbpfError,
    maps::MapError,
    pin::PinError,
    programs::{ProgramError, links::LinkError},
};

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
    #[error("attaching to {interface} in {mode} mode: {source}")]
    Attach {
        interface: String,
        mode: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("{what}: {source}")]
    Link {
        what: String,
        #[source]
        source: LinkError,
    },
    #[error("{what}: {source}")]
    Pin {
        what: String,
        #[source]
        source: PinError,
    },
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "no classifier state in {}: attach an interface first (`classifier attach IFACE`)",
        dir.display()
    )]
    NoState { dir: PathBuf },
    #[error(
        "the state in {} is incomplete (an attach was interrupted while creating it): run \
         `classifier attach` again",
        dir.display()
    )]
    IncompleteState { dir: PathBuf },
    #[error(
        "the state in {} was made by an incompatible version of classifier ({detail}), which \
         this one cannot read. To start again with your lists and policy: `classifier detach \
         --all --purge`, `classifier attach IFACE...`, then `classifier state restore FILE` \
         from the file `classifier state save FILE` wrote before the upgrade (without one, \
         the lists and policy come from the config file)",
        dir.display()
    )]
    IncompatibleState { dir: PathBuf, detail: String },
    #[error(
        "another writer, {holder}, has held the state in {} for more than {} s; classifier \
         changes it one writer at a time: wait for that one to finish, or stop it",
        dir.display(),
        waited.as_secs()
    )]
    WriterBusy {
        dir: PathBuf,
        holder: String,
        waited: std::time::Duration,
    },
    #[error("{} is not on a BPF filesystem (mount one with `mount -t bpf bpf DIR`)", dir.display())]
    NotBpffs { dir: PathBuf },
    #[error("{} is a symbolic link; refusing to follow it out of the pin directory", path.display())]
    Symlink { path: PathBuf },
    #[error(
        "bad owner or permissions on {}: {reason}; refusing it, as sshd would: only root may \
         be able to change what classifier reads (fix: `{fix}`)",
        path.display()
    )]
    BadPermissions {
        path: PathBuf,
        reason: String,
        fix: String,
    },
    #[error(
        "{}: {source}: the classifier's state is root-only (pins 0600, directories 0700): \
         run classifier as root (README, 'Privileges')",
        path.display()
    )]
    PermissionDenied {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "no BPF filesystem is mounted on {}, so there is no state in {}: if bpffs was \
         unmounted, the state pinned in it is gone and the program was detached with it; {hint}",
        mount.display(),
        dir.display()
    )]
    BpffsGone {
        dir: PathBuf,
        mount: PathBuf,
        hint: String,
    },
    #[error(
        "the state in {} vanished while classifier ran (bpffs unmounted, or `detach --purge`): \
         the program is no longer attached; start `classifier run` again to attach afresh",
        dir.display()
    )]
    StateGone { dir: PathBuf },
    #[error("capture {}: {reason}", path.display())]
    Capture { path: PathBuf, reason: String },
    #[error("config file {}: {reason}", path.display())]
    ConfigFile { path: PathBuf, reason: String },
    #[error("saved state {}: {reason} (`classifier state save FILE` writes one)", path.display())]
    SavedStateFile { path: PathBuf, reason: String },
    #[error("{}:{line}: {reason}", path.display())]
    PrefixFile {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("`{text}` is not a prefix: {reason}")]
    InvalidPrefix { text: String, reason: String },
    #[error("`{name}` is not a valid list name: use 1 to 24 of a-z, 0-9, '-' and '_'")]
    InvalidListName { name: String },
    #[error("there is no list named `{name}` (lists: {known})")]
    UnknownList { name: String, known: String },
    #[error(
        "all {max} prefix lists are in use; clear one with `classifier prefixes clear --list NAME`"
    )]
    ListsFull { max: u32 },
    #[error(
        "{map} holds at most {capacity} entries; this change needs {needed}: nothing was changed"
    )]
    MapFull {
        map: &'static str,
        capacity: u32,
        needed: usize,
    },
    #[error("policy rule `{rule}`: {reason}")]
    InvalidRule { rule: String, reason: String },
    #[error("no interface named `{name}`{netns}")]
    UnknownInterface { name: String, netns: String },
    #[error("no network namespace named `{name}` (see `ip netns list`)")]
    UnknownNetns { name: String },
    #[error(
        "{interface}{netns}: its root qdisc is {qdisc}, which classifier did not create; it was \
         left as it is and nothing was changed: {advice}"
    )]
    ForeignQdisc {
        interface: String,
        netns: String,
        /// Kind and handle, as `tc` shows them: "tbf 1:".
        qdisc: String,
        advice: String,
    },
    #[error("{name} is already attached; use --replace to swap the program in place")]
    AlreadyAttached { name: String },
    #[error("{name} is not attached")]
    NotAttached { name: String },
    #[error(
        "the link pinned for {name} is attached to interface index {ifindex}, not to {name} (it \
         was renamed, or moved to another namespace): `classifier detach {name}` removes it, \
         then attach {name} again"
    )]
    LinkElsewhere { name: String, ifindex: u32 },
    #[error(
        "{name} is attached at the {attached} hook; --replace swaps the program under that link \
         and keeps its hook: to move it to {asked}, detach it and attach it again"
    )]
    OtherHook {
        name: String,
        attached: &'static str,
        asked: &'static str,
    },
    #[error("{feature} needs Linux {needs} or later")]
    KernelTooOld {
        feature: &'static str,
        needs: &'static str,
    },
    #[error(
        "{action} needs {needed}: {missing} {verb} missing; run classifier as root, or grant \
         {missing} (README, 'Privileges')"
    )]
    MissingCapabilities {
        action: &'static str,
        needed: String,
        missing: String,
        verb: &'static str,
    },
    #[error(
        "--purge removes the maps the attached program uses: add --all ({attached} still attached)"
    )]
    PurgeWhileAttached { attached: String },
}

/// Each variant's kind, for scripts (`classifier -j` reports it in `error.kind`): the
/// variant's name in snake_case. One list makes both `Error::kind` and `Error::KINDS`, the
/// stable set `docs/json/error.schema.json` lists, so they cannot disagree; the match is
/// exhaustive, so a new variant must be given its kind here. A kind is never renamed.
macro_rules! kinds {
    ($($variant:ident => $kind:ident,)*) => {
        impl Error {
            pub const KINDS: &[&str] = &[$(stringify!($kind)),*];

            pub fn kind(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => stringify!($kind),)*
                }
            }
        }
    };
}

kinds! {
    Load => load,
    MissingProgram => missing_program,
    MissingMap => missing_map,
    Map => map,
    Program => program,
    Attach => attach,
    Link => link,
    Pin => pin,
    Command => command,
    Io => io,
    NoState => no_state,
    IncompleteState => incomplete_state,
    IncompatibleState => incompatible_state,
    WriterBusy => writer_busy,
    NotBpffs => not_bpffs,
    Symlink => symlink,
    BadPermissions => bad_permissions,
    PermissionDenied => permission_denied,
    BpffsGone => bpffs_gone,
    StateGone => state_gone,
    Capture => capture,
    ConfigFile => config_file,
    SavedStateFile => saved_state_file,
    PrefixFile => prefix_file,
    InvalidPrefix => invalid_prefix,
    InvalidListName => invalid_list_name,
    UnknownList => unknown_list,
    ListsFull => lists_full,
    MapFull => map_full,
    InvalidRule => invalid_rule,
    UnknownInterface => unknown_interface,
    UnknownNetns => unknown_netns,
    ForeignQdisc => foreign_qdisc,
    AlreadyAttached => already_attached,
    NotAttached => not_attached,
    LinkElsewhere => link_elsewhere,
    OtherHook => other_hook,
    KernelTooOld => kernel_too_old,
    MissingCapabilities => missing_capabilities,
    PurgeWhileAttached => purge_while_attached,
}

impl Error {
    /// Whether the user's input caused it (a bad prefix, name or rule), as opposed to the system.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::PrefixFile { .. }
                | Self::ConfigFile { .. }
                | Self::SavedStateFile { .. }
                | Self::Capture { .. }
                | Self::InvalidPrefix { .. }
                | Self::InvalidListName { .. }
                | Self::UnknownList { .. }
                | Self::InvalidRule { .. }
                | Self::UnknownInterface { .. }
                | Self::UnknownNetns { .. }
                | Self::AlreadyAttached { .. }
                | Self::ForeignQdisc { .. }
                | Self::NotAttached { .. }
                | Self::OtherHook { .. }
                | Self::PurgeWhileAttached { .. }
        )
    }

    pub(crate) fn map(map: &'static str) -> impl FnOnce(MapError) -> Self {
        move |source| Self::Map { map, source }
    }

    pub(crate) fn program(program: &'static str) -> impl FnOnce(ProgramError) -> Self {
        move |source| Self::Program { program, source }
    }

    pub(crate) fn link(what: impl Into<String>) -> impl FnOnce(LinkError) -> Self {
        let what = what.into();
        move |source| Self::Link { what, source }
    }

    pub(crate) fn pin(what: impl Into<String>) -> impl FnOnce(PinError) -> Self {
        let what = what.into();
        move |source| Self::Pin { what, source }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
