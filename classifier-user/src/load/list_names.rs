//! Prefix-list names. A list is a bit in the prefixes' values; its name lives in the pinned
//! `LIST_NAMES` map at the bit's index. Here, beside the maps, because every layer names lists:
//! `control` creates them (`get_or_create`, through a `MapWriter`), `report`, `dns` and
//! `analyze` read them, and the config file checks its names with `validate_name`.

use classifier_common::{control::LIST_NAME_LEN, limits::MAX_LISTS};

use super::{ClassifierMaps, MapWriter};
use crate::Error;

/// The default list, which ships with Apple's address allocations.
pub const DEFAULT_LIST: &str = "apple";

/// The names of all lists in use, by bit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListNames {
    names: Vec<Option<String>>,
}

/// Whether `name` may name a list: 1 to LIST_NAME_LEN bytes of `a-z`, `0-9`, `-` and `_`.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name.len() <= LIST_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidListName {
            name: name.to_owned(),
        })
    }
}

impl ListNames {
    pub fn read(maps: &ClassifierMaps) -> Result<Self, Error> {
        let names = (0..MAX_LISTS)
            .map(|bit| maps.list_name(bit))
            .collect::<Result<_, Error>>()?;
        Ok(Self { names })
    }

    /// The bit of list `name`, if it exists.
    pub fn bit(&self, name: &str) -> Option<u32> {
        self.names
            .iter()
            .position(|n| n.as_deref() == Some(name))
            .map(|index| index as u32)
    }

    /// The bit of list `name`, or an error naming the lists there are.
    pub fn require(&self, name: &str) -> Result<u32, Error> {
        self.bit(name).ok_or_else(|| Error::UnknownList {
            name: name.to_owned(),
            known: self.known(),
        })
    }

    pub fn name(&self, bit: u32) -> Option<&str> {
        self.names.get(bit as usize).and_then(|n| n.as_deref())
    }

    /// Names of the lists in `mask`, in bit order.
    pub fn names_in(&self, mask: u32) -> Vec<String> {
        (0..MAX_LISTS)
            .filter(|bit| mask & (1 << bit) != 0)
            .map(|bit| {
                self.name(bit)
                    .map_or_else(|| format!("list{bit}"), str::to_owned)
            })
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.names
            .iter()
            .enumerate()
            .filter_map(|(bit, name)| name.as_deref().map(|name| (bit as u32, name)))
    }

    fn known(&self) -> String {
        let known: Vec<&str> = self.iter().map(|(_, name)| name).collect();
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    }

    /// The bit of list `name`, creating the list in the first free slot when it is new.
    pub fn get_or_create(&mut self, maps: &mut MapWriter<'_>, name: &str) -> Result<u32, Error> {
        validate_name(name)?;
        if let Some(bit) = self.bit(name) {
            return Ok(bit);
        }
        let bit = self
            .names
            .iter()
            .position(Option::is_none)
            .ok_or(Error::ListsFull { max: MAX_LISTS })? as u32;
        maps.set_list_name(bit, name)?;
        self.names[bit as usize] = Some(name.to_owned());
        Ok(bit)
    }
}
