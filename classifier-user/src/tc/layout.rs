//! classifier's HTB tree, by the numbers `tc` shows: the root's handle and mark, the minor
//! numbers of the normal and bulk classes and of their leaves. `control::shape` builds the
//! tree with them and tells the egress program the class ids; `report::shaping` finds the
//! leaves by them.

/// HTB handle of the root qdisc and the minor numbers of its classes.
pub const ROOT: &str = "1:";
pub const ROOT_MAJOR: u32 = 1;
/// The root's r2q, which marks the tree as classifier's (`RootQdisc::Ours` in
/// `control::shape`). r2q only derives the quantum of a class given none, and every class
/// here is given one, so it has no other effect. 0xc1a5: "class".
pub const R2Q_MARK: u32 = 0xc1a5;
pub const CLASS_NORMAL: u32 = 0x10;
pub const CLASS_BULK: u32 = 0x20;
/// The minor number of the bulk class's first fair leaf; leaf n is FIRST_LEAF + n, so 256
/// leaves read 1:100 to 1:1ff in `tc class show`, clear of the classes above.
pub const FIRST_LEAF: u32 = 0x100;
/// The minor number of the normal class's first flow leaf: 1:2000 to 1:2fff with 4,096 leaves,
/// clear of the fair leaves (at most 1:100 to 1:10ff).
pub const FIRST_FLOW_LEAF: u32 = 0x2000;
