//! Attaching the program to interfaces and detaching it, through bpf_links pinned one per
//! interface: the attachment outlives the CLI, and `--replace` swaps the program under a
//! link atomically (bpf_link_update), keeping maps and counters. A link is XDP (`classify`)
//! or TCX ingress (`classify_tc`, for interfaces without native XDP: docs/design.md,
//! 'The tc hook'); both kinds pin, replace and detach alike.

use std::{
    fs,
    time::{SystemTime, UNIX_EPOCH},
};

use aya::programs::{
    LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode,
    links::{FdLink, LinkError, LinkType, PinnedLink},
    tc::{SchedClassifierLink, TcAttachOptions},
    xdp::XdpLink,
};
use aya_obj::programs::XdpAttachType;
use classifier_common::{
    Attachment,
    counter::{INTERFACE_SLOTS, MAX_IFINDEX},
};
use serde::Serialize;

use super::{WriterLock, netns, state};
use crate::{
    Classifier, ClassifierMaps, Error, MapWriter, PinDir, capabilities,
    config_file::ConfigFile,
    load::{
        AttachMode, Hook, Pinned,
        names::{PROGRAM_CLASSIFY, PROGRAM_CLASSIFY_TC},
        netns::{current_if_not_host, link_pin_name},
        pinned_link, restrict,
    },
};

/// What the operator asked for (`--hook`, `--mode`): a hook, or a rule for picking one. What
/// an attach ends up as is an `AttachMode` (native, skb, tcx): the choice names the hook,
/// `tc`; the mode names how that hook is attached, `tcx`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HookChoice {
    /// Native XDP where the driver has it, else tc: never generic XDP, the slow path.
    Auto,
    /// Native XDP, falling back to skb (generic) XDP.
    XdpAuto,
    /// Native XDP (in the driver) or nothing.
    XdpNative,
    /// Generic XDP, after the kernel built an skb: works everywhere, costs more.
    XdpSkb,
    /// The tc hook (attached at TCX ingress).
    Tc,
}

/// The programs an attach uses, by hook: the pinned one, or this binary's, freshly loaded,
/// where the pinned one is to be replaced or is missing.
struct Programs {
    loaded: Option<Classifier<Pinned>>,
    pinned_xdp: Option<Xdp>,
    pinned_tc: Option<SchedClassifier>,
}

impl Programs {
    fn xdp(&mut self) -> Result<&mut Xdp, Error> {
        match (&mut self.pinned_xdp, &mut self.loaded) {
            (Some(xdp), _) => Ok(xdp),
            (None, Some(loaded)) => loaded.xdp_mut(),
            (None, None) => Err(Error::MissingProgram(PROGRAM_CLASSIFY)),
        }
    }

    fn tc(&mut self) -> Result<&mut SchedClassifier, Error> {
        match (&mut self.pinned_tc, &mut self.loaded) {
            (Some(tc), _) => Ok(tc),
            (None, Some(loaded)) => loaded.tc_mut(),
            (None, None) => Err(Error::MissingProgram(PROGRAM_CLASSIFY_TC)),
        }
    }

    /// Pins the programs this attach loaded (0600), in place of the pins of earlier ones.
    fn pin_loaded(&mut self, pin_dir: &PinDir) -> Result<(), Error> {
        for hook in Hook::ALL {
            let loaded_here = match hook {
                Hook::Xdp => self.pinned_xdp.is_none(),
                Hook::Tc => self.pinned_tc.is_none(),
            };
            if !loaded_here {
                continue;
            }
            let path = pin_dir.program_of(hook);
            let _ = fs::remove_file(&path);
            match hook {
                Hook::Xdp => self.xdp()?.pin(&path),
                Hook::Tc => self.tc()?.pin(&path),
            }
            .map_err(Error::pin(format!("pinning {}", path.display())))?;
            restrict(&path, 0o600)?;
        }
        Ok(())
    }
}

/// What attach did on one interface (`attach -j` prints these).
#[derive(Clone, Debug, Serialize)]
pub struct Attached {
    pub interface: String,
    /// Which ingress hook runs the program: the mode's (`AttachMode::hook`).
    pub hook: Hook,
    pub mode: AttachMode,
    pub replaced: bool,
    /// Why native mode was not used, when `Auto` fell back to skb.
    pub fell_back: Option<String>,
    /// An earlier link of this name was left defunct by the interface's deletion, and was
    /// removed first.
    pub was_defunct: bool,
}

/// Attaches to every interface in `interfaces`, or to none of them: an interface that fails
/// undoes the attachments this call made before it.
pub fn attach(
    pin_dir: &PinDir,
    interfaces: &[String],
    mode: HookChoice,
    replace: bool,
    config_file: &ConfigFile,
) -> Result<Vec<Attached>, Error> {
    // Checked before anything is created: the first attach, and every --replace, loads.
    capabilities::require("attaching (it loads the program)", capabilities::LOAD)?;
    let mut seen = Vec::new();
    for name in interfaces {
        netns::ifindex(name)?;
        if !seen.contains(name) {
            seen.push(name.clone());
        }
    }
    let initial = state::InitialState::read(config_file)?;
    pin_dir.prepare()?;
    let lock = WriterLock::acquire(pin_dir)?;
    // Links left behind by interfaces deleted while attached are attached to nothing: they
    // give way to the new attachment.
    let defunct: Vec<String> = seen
        .iter()
        .map(|name| link_pin_name(name))
        .filter(|pin| {
            let path = pin_dir.link(pin);
            path.exists() && matches!(pinned_link::attached_ifindex(&path), Ok(None))
        })
        .collect();
    for name in &seen {
        let pin = link_pin_name(name);
        if !replace && pin_dir.link(&pin).exists() && !defunct.contains(&pin) {
            return Err(Error::AlreadyAttached { name: name.clone() });
        }
    }

    // One program per hook for every interface: the pinned one, unless this is a replace (or
    // there is none yet), when this binary's programs are loaded with the pinned maps.
    let pinned = |hook: Hook| !replace && pin_dir.program_of(hook).exists();
    let mut programs = Programs {
        loaded: None,
        pinned_xdp: if pinned(Hook::Xdp) {
            Some(
                Xdp::from_pin(pin_dir.program(), XdpAttachType::Interface)
                    .map_err(Error::program(PROGRAM_CLASSIFY))?,
            )
        } else {
            None
        },
        pinned_tc: if pinned(Hook::Tc) {
            Some(
                SchedClassifier::from_pin(pin_dir.program_of(Hook::Tc))
                    .map_err(Error::program(PROGRAM_CLASSIFY_TC))?,
            )
        } else {
            None
        },
    };
    let mut pinned = if programs.pinned_xdp.is_none() || programs.pinned_tc.is_none() {
        programs.loaded = Some(Classifier::load_pinned(pin_dir)?);
        state::ensure(pin_dir, &initial, &lock)?
    } else {
        ClassifierMaps::open_pinned(pin_dir)?
    };
    let mut maps = MapWriter::under(&lock, &mut pinned);
    for pin in &defunct {
        detach_pin(pin_dir, &mut maps, pin)?;
    }

    let mut done: Vec<(String, Attached)> = Vec::new();
    for name in &seen {
        let pin_name = link_pin_name(name);
        let result = attach_one(
            &mut programs,
            &mut maps,
            pin_dir,
            name,
            &pin_name,
            mode,
            replace,
        );
        match result {
            Ok(mut attached) => {
                attached.was_defunct = defunct.contains(&pin_name);
                done.push((pin_name, attached));
            }
            Err(error) => {
                for (pin_name, attached) in done {
                    if !attached.replaced {
                        let _ = detach_pin(pin_dir, &mut maps, &pin_name);
                    }
                }
                return Err(error);
            }
        }
    }
    programs.pin_loaded(pin_dir)?;
    Ok(done.into_iter().map(|(_, attached)| attached).collect())
}

/// The hook `mode` asks for, when it names one.
fn asked_hook(mode: HookChoice) -> Option<Hook> {
    match mode {
        HookChoice::Auto => None,
        HookChoice::XdpAuto | HookChoice::XdpNative | HookChoice::XdpSkb => Some(Hook::Xdp),
        HookChoice::Tc => Some(Hook::Tc),
    }
}

fn attach_one(
    programs: &mut Programs,
    maps: &mut MapWriter<'_>,
    pin_dir: &PinDir,
    name: &str,
    pin_name: &str,
    mode: HookChoice,
    replace: bool,
) -> Result<Attached, Error> {
    let link_path = pin_dir.link(pin_name);
    if replace && link_path.exists() {
        // The link must still be this interface's: one renamed or moved away keeps its pin,
        // and a swap through it would change another interface's program.
        let here = netns::ifindex(name)?;
        if let Ok(Some(ifindex)) = pinned_link::attached_ifindex(&link_path)
            && ifindex != here
        {
            return Err(Error::LinkElsewhere {
                name: name.to_owned(),
                ifindex,
            });
        }
        let link = FdLink::from(PinnedLink::from_pin(&link_path).map_err(link_error(name))?);
        let kind = link
            .info()
            .and_then(|info| info.link_type())
            .map_err(link_error(name))?;
        let hook = if kind == LinkType::Tcx {
            Hook::Tc
        } else {
            Hook::Xdp
        };
        if let Some(asked) = asked_hook(mode)
            && asked != hook
        {
            return Err(Error::OtherHook {
                name: name.to_owned(),
                attached: hook.name(),
                asked: asked.name(),
            });
        }
        match hook {
            Hook::Xdp => {
                let xdp = programs.xdp()?;
                let link = XdpLink::try_from(link).map_err(link_error(name))?;
                let id = xdp
                    .attach_to_link(link)
                    .map_err(Error::program(PROGRAM_CLASSIFY))?;
                // The pin keeps the link; this handle may go.
                drop(
                    xdp.take_link(id)
                        .map_err(Error::program(PROGRAM_CLASSIFY))?,
                );
            }
            Hook::Tc => {
                let tc = programs.tc()?;
                let link = SchedClassifierLink::try_from(link).map_err(link_error(name))?;
                let id = tc
                    .attach_to_link(link)
                    .map_err(Error::program(PROGRAM_CLASSIFY_TC))?;
                drop(
                    tc.take_link(id)
                        .map_err(Error::program(PROGRAM_CLASSIFY_TC))?,
                );
            }
        }
        let mode = attachment_of(maps, &link_path).map_or(
            match hook {
                Hook::Xdp => AttachMode::Native,
                Hook::Tc => AttachMode::Tcx,
            },
            |a| AttachMode::from_code(a.mode),
        );
        return Ok(Attached {
            interface: name.to_owned(),
            hook: mode.hook(),
            mode,
            replaced: true,
            fell_back: None,
            was_defunct: false,
        });
    }
    let (link, mode, fell_back) = match mode {
        HookChoice::XdpNative => (
            attach_xdp(programs, name, AttachMode::Native)?,
            AttachMode::Native,
            None,
        ),
        HookChoice::XdpSkb => (
            attach_xdp(programs, name, AttachMode::Skb)?,
            AttachMode::Skb,
            None,
        ),
        HookChoice::Tc => (attach_tc(programs, name)?, AttachMode::Tcx, None),
        HookChoice::XdpAuto => match attach_xdp(programs, name, AttachMode::Native) {
            Ok(link) => (link, AttachMode::Native, None),
            Err(native) => (
                attach_xdp(programs, name, AttachMode::Skb)?,
                AttachMode::Skb,
                Some(native.to_string()),
            ),
        },
        HookChoice::Auto => match attach_xdp(programs, name, AttachMode::Native) {
            Ok(link) => (link, AttachMode::Native, None),
            Err(native) => (
                attach_tc(programs, name)?,
                AttachMode::Tcx,
                Some(native.to_string()),
            ),
        },
    };
    let link_id = link.info().map_err(link_error(name))?.id();
    link.pin(&link_path)
        .map_err(Error::pin(format!("pinning {}", link_path.display())))?;
    restrict(&link_path, 0o600)?;
    let index = netns::ifindex(name)?;
    let counter_slot = take_counter_slot(maps, index)?;
    let mut attachment = Attachment {
        mode: mode.code(),
        counter_slot,
        ifindex: index,
        netns_inode: current_if_not_host().unwrap_or(0) as u32,
        attached_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        ..Attachment::default()
    };
    attachment.name[..name.len()].copy_from_slice(name.as_bytes());
    maps.insert_attachment(link_id, attachment)?;
    Ok(Attached {
        interface: name.to_owned(),
        hook: mode.hook(),
        mode,
        replaced: false,
        fell_back,
        was_defunct: false,
    })
}

/// Attaches the XDP program to `name` in `mode` (native or skb): a new link, for the caller
/// to pin.
fn attach_xdp(programs: &mut Programs, name: &str, mode: AttachMode) -> Result<FdLink, Error> {
    let xdp = programs.xdp()?;
    let flags = if mode == AttachMode::Skb {
        XdpMode::Skb
    } else {
        XdpMode::Driver
    };
    let id = xdp.attach(name, flags).map_err(|source| Error::Attach {
        interface: name.to_owned(),
        mode: mode.name(),
        source,
    })?;
    let link = xdp
        .take_link(id)
        .map_err(Error::program(PROGRAM_CLASSIFY))?;
    FdLink::try_from(link).map_err(link_error(name))
}

/// Attaches the tc program at `name`'s TCX ingress, after the programs already there (no
/// qdisc is created, none is touched): a new link, for the caller to pin.
fn attach_tc(programs: &mut Programs, name: &str) -> Result<FdLink, Error> {
    let tc = programs.tc()?;
    let id = tc
        .attach_with_options(
            name,
            TcAttachType::Ingress,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        )
        .map_err(|source| Error::Attach {
            interface: name.to_owned(),
            mode: AttachMode::Tcx.name(),
            source,
        })?;
    let link = tc
        .take_link(id)
        .map_err(Error::program(PROGRAM_CLASSIFY_TC))?;
    FdLink::try_from(link).map_err(link_error(name))
}

fn link_error(name: &str) -> impl FnOnce(LinkError) -> Error + '_ {
    Error::link(format!("the link of {name}"))
}

/// The bookkeeping entry of the link pinned at `path`.
pub(crate) fn attachment_of(maps: &ClassifierMaps, path: &std::path::Path) -> Option<Attachment> {
    let link = PinnedLink::from_pin(path).ok()?;
    let id = FdLink::from(link).info().ok()?.id();
    maps.attachment(id).ok().flatten()
}

/// A counter block of its own for the interface `index` (slot 0, shared, when all are
/// taken), zeroed and pointed to by `IFACE_SLOTS`.
fn take_counter_slot(maps: &mut MapWriter<'_>, index: u32) -> Result<u32, Error> {
    let taken: Vec<u32> = maps
        .attachments()?
        .into_iter()
        .map(|(_, attachment)| attachment.counter_slot)
        .collect();
    let slot = (1..INTERFACE_SLOTS)
        .find(|slot| !taken.contains(slot))
        .unwrap_or(0);
    if slot != 0 {
        maps.clear_counter_block(slot)?;
    }
    if index < MAX_IFINDEX {
        maps.set_iface_slot(index, slot)?;
    }
    Ok(slot)
}

/// Removes one interface's link pin (detaching the program) and its bookkeeping.
fn detach_pin(pin_dir: &PinDir, maps: &mut MapWriter<'_>, pin_name: &str) -> Result<(), Error> {
    let path = pin_dir.link(pin_name);
    if let Ok(link) = PinnedLink::from_pin(&path)
        && let Ok(info) = FdLink::from(link).info()
    {
        if let Ok(Some(attachment)) = maps.attachment(info.id()) {
            let index = attachment.ifindex;
            // Another namespace's interface may have the same index and its own slot.
            if maps.iface_slot(index).ok() == Some(attachment.counter_slot) {
                let _ = maps.set_iface_slot(index, 0);
            }
        }
        let _ = maps.remove_attachment(info.id());
    }
    fs::remove_file(&path).map_err(Error::io(format!("removing {}", path.display())))
}

/// Detaches from `interfaces` (in the current network namespace), or from every interface;
/// `purge` then removes the maps and the pin directory too.
pub fn detach(
    pin_dir: &PinDir,
    interfaces: &[String],
    all: bool,
    purge: bool,
) -> Result<Vec<String>, Error> {
    capabilities::require("detaching", capabilities::STATE)?;
    pin_dir.check_trusted()?;
    // Nothing to lock without a pin directory: there is nothing to detach either.
    let lock = if pin_dir.path().exists() {
        Some(WriterLock::acquire(pin_dir)?)
    } else {
        None
    };
    let pins = if all {
        pin_dir.link_pins()?
    } else {
        let mut pins = Vec::new();
        for name in interfaces {
            let pin_name = link_pin_name(name);
            if !pin_dir.link(&pin_name).exists() {
                return Err(Error::NotAttached { name: name.clone() });
            }
            pins.push(pin_name);
        }
        pins
    };
    if purge && !all {
        let remaining: Vec<String> = pin_dir
            .link_pins()?
            .into_iter()
            .filter(|pin| !pins.contains(pin))
            .collect();
        if !remaining.is_empty() {
            return Err(Error::PurgeWhileAttached {
                attached: remaining.join(", "),
            });
        }
    }
    let mut pinned = ClassifierMaps::open_pinned(pin_dir).ok();
    let mut maps = lock
        .as_ref()
        .zip(pinned.as_mut())
        .map(|(lock, pinned)| MapWriter::under(lock, pinned));
    for pin in &pins {
        match maps.as_mut() {
            Some(maps) => detach_pin(pin_dir, maps, pin)?,
            None => {
                let path = pin_dir.link(pin);
                fs::remove_file(&path)
                    .map_err(Error::io(format!("removing {}", path.display())))?;
            }
        }
    }
    if purge {
        drop(pinned);
        let path = pin_dir.path();
        if path.exists() {
            fs::remove_dir_all(path).map_err(Error::io(format!("removing {}", path.display())))?;
        }
    }
    Ok(pins)
}
