//! The classifier's user side as a library: load the kernel program and reach its maps with
//! their real types. The `classifier` binary and the tests are built on it.

pub mod analyze;
pub mod capabilities;
pub mod config_file;
pub mod control;
pub mod daemon;
pub mod dns;
pub mod error;
#[cfg(test)]
mod layers;
pub mod load;
pub mod report;
mod tc;
pub mod trust;

pub use error::Error;
pub use load::{
    Classifier, ClassifierMaps, CounterSnapshot, Hook, MapWriter, PinDir, Steer, TestRunOutput,
    padded_name,
};
