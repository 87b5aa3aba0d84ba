//! Changing the live state: prefix lists, policy, attachments. Every change is validated in
//! full before the first map write, so a bad input changes nothing.

pub mod attach;
pub mod forget;
pub mod learning;
pub mod netns;
pub mod policy;
pub mod prefix_edit;
pub mod prefix_file;
pub mod prefixes;
pub mod restore;
pub mod shape;
pub mod state;
mod writer_lock;

pub use writer_lock::WriterLock;
