//! A change of the pinned prefix lists as `classifier prefixes` asks for it, whole: one
//! writer from reading the list names to the last write, and every prefix read and checked
//! before the first.

use std::path::PathBuf;

use ipnet::IpNet;
use serde::Serialize;

use super::WriterLock;
use super::{
    forget::{Forget, Forgotten, forget_learned},
    prefix_file::{parse_prefix_arg, read_prefix_file},
    prefixes::{self, Applied, Change},
};
use crate::{ClassifierMaps, Error, MapWriter, PinDir, load::ListNames};

/// Where the prefixes of an edit come from.
pub enum Prefixes {
    /// CIDRs as typed (a bare address is a host prefix).
    Args(Vec<String>),
    /// A prefix file, one per line.
    File(PathBuf),
}

impl Prefixes {
    fn read(&self) -> Result<Vec<IpNet>, Error> {
        match self {
            Self::Args(texts) => texts.iter().map(|text| parse_prefix_arg(text)).collect(),
            Self::File(path) => read_prefix_file(path),
        }
    }
}

/// What to change. A list named for `Add` or `Replace` is created if new; one named for
/// `Remove` or `Clear` must exist, and none means every list.
pub enum Edit {
    Add {
        list: String,
        prefixes: Prefixes,
    },
    Remove {
        list: Option<String>,
        prefixes: Prefixes,
    },
    Replace {
        list: String,
        prefixes: Prefixes,
    },
    Clear {
        list: Option<String>,
    },
}

/// What an edit did, and to which list (None: all of them); `prefixes add -j` prints it as
/// `{"list":"apple","inserted":3,"updated":0,"removed":1}`.
#[derive(Serialize)]
pub struct Edited {
    pub list: Option<String>,
    #[serde(flatten)]
    pub applied: Applied,
    /// `clear` only: the learned addresses it forgot, records included (so that none comes
    /// back from a leftover record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forgotten: Option<usize>,
}

/// Applies `edit` to the state in `pin_dir`.
pub fn edit(pin_dir: &PinDir, edit: Edit) -> Result<Edited, Error> {
    let lock = WriterLock::acquire(pin_dir)?;
    let mut pinned = ClassifierMaps::open_pinned(pin_dir)?;
    let mut maps = MapWriter::under(&lock, &mut pinned);
    let mut names = ListNames::read(&maps)?;
    let (change, list) = match edit {
        Edit::Add { list, prefixes } => {
            let prefixes = prefixes.read()?;
            let list_bit = names.get_or_create(&mut maps, &list)?;
            (
                Change::Add {
                    list: list_bit,
                    prefixes,
                },
                Some(list),
            )
        }
        Edit::Replace { list, prefixes } => {
            let prefixes = prefixes.read()?;
            let list_bit = names.get_or_create(&mut maps, &list)?;
            (
                Change::Replace {
                    list: list_bit,
                    prefixes,
                },
                Some(list),
            )
        }
        Edit::Remove { list, prefixes } => {
            let prefixes = prefixes.read()?;
            let list_bit = existing(&names, list.as_deref())?;
            (
                Change::Remove {
                    list: list_bit,
                    prefixes,
                },
                list,
            )
        }
        Edit::Clear { list } => {
            let list_bit = existing(&names, list.as_deref())?;
            (Change::Clear { list: list_bit }, list)
        }
    };
    // `clear` forgets the learned addresses with their records first; the plan then
    // removes what the lists held by hand.
    let forgotten = match &change {
        Change::Clear { list } => {
            let what = Forget {
                list: *list,
                prefixes: Vec::new(),
            };
            Some(forget_learned(&mut maps, &names, &what)?.total())
        }
        _ => None,
    };
    let applied = prefixes::apply(&mut maps, &change)?;
    Ok(Edited {
        list,
        applied,
        forgotten,
    })
}

/// Forgets learned addresses: those in `prefixes` (every one when empty) of `list` (every
/// list when None). Addresses are read and checked before anything is forgotten.
pub fn forget(
    pin_dir: &PinDir,
    list: Option<&str>,
    prefixes: &[String],
) -> Result<Forgotten, Error> {
    let prefixes = prefixes
        .iter()
        .map(|text| parse_prefix_arg(text))
        .collect::<Result<Vec<IpNet>, Error>>()?;
    let lock = WriterLock::acquire(pin_dir)?;
    let mut pinned = ClassifierMaps::open_pinned(pin_dir)?;
    let mut maps = MapWriter::under(&lock, &mut pinned);
    let names = ListNames::read(&maps)?;
    let what = Forget {
        list: existing(&names, list)?,
        prefixes,
    };
    forget_learned(&mut maps, &names, &what)
}

fn existing(names: &ListNames, list: Option<&str>) -> Result<Option<u32>, Error> {
    list.map(|name| names.require(name)).transpose()
}
