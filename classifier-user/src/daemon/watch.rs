//! What `classifier run` keeps an eye on, once a second: the interfaces it manages and the
//! state they use. An interface deleted under it leaves a defunct link behind: the link is
//! removed, with an error in the log naming the interface, and attached again when an
//! interface of that name comes back. A link removed by someone else (`classifier detach`) is
//! theirs to decide: the run lets it go. State that vanished (bpffs unmounted) ends the run
//! with an error, so that its supervisor starts it afresh.

use std::collections::BTreeSet;

use crate::{
    Error, PinDir,
    config_file::ConfigFile,
    control::{attach, netns},
    load::{netns::link_pin_name, pinned_link},
};

use super::RunOptions;

pub struct Watch {
    /// Interfaces this run attached or adopted and still manages.
    managed: BTreeSet<String>,
    /// Managed interfaces that were deleted, waiting to come back.
    gone: BTreeSet<String>,
}

impl Watch {
    pub fn new(interfaces: &[String]) -> Self {
        Self {
            managed: interfaces.iter().cloned().collect(),
            gone: BTreeSet::new(),
        }
    }

    /// The managed interfaces that are attached, for the detach on exit.
    pub fn attached(&self, pin_dir: &PinDir) -> Vec<String> {
        self.managed
            .iter()
            .filter(|name| !self.gone.contains(*name))
            .filter(|name| pin_dir.link(&link_pin_name(name)).exists())
            .cloned()
            .collect()
    }

    pub fn check(
        &mut self,
        pin_dir: &PinDir,
        config: &ConfigFile,
        options: &RunOptions,
    ) -> Result<(), Error> {
        if !pin_dir.has_state() {
            return Err(Error::StateGone {
                dir: pin_dir.path().to_path_buf(),
            });
        }
        for name in self.managed.clone() {
            let pin = pin_dir.link(&link_pin_name(&name));
            if self.gone.contains(&name) {
                if netns::ifindex(&name).is_ok() {
                    let again = std::slice::from_ref(&name);
                    match attach::attach(pin_dir, again, options.mode, false, config) {
                        Ok(_) => {
                            log::info!("{name} is back: attached again");
                            self.gone.remove(&name);
                        }
                        Err(error) => log::warn!("{name} is back, but attaching failed: {error}"),
                    }
                }
                continue;
            }
            match pinned_link::attached_ifindex(&pin) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    attach::detach(pin_dir, std::slice::from_ref(&name), false, false)?;
                    log::error!(
                        "{name} was deleted while attached: its link is removed, and {name} will \
                         be attached again if it comes back"
                    );
                    self.gone.insert(name);
                }
                Err(_) if !pin.exists() => {
                    log::warn!("{name} was detached by someone else: this run lets it go");
                    self.managed.remove(&name);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}
