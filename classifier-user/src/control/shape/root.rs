//! Whose root qdisc an interface has: the kernel's default, classifier's own tree, or
//! someone else's. On a router the interface may carry someone's traffic control: `shape`
//! replaces only the first two (the third with `--force`), `--off` removes only the second.

use crate::{
    Error,
    tc::{
        self,
        layout::{CLASS_NORMAL, R2Q_MARK, ROOT},
    },
};

/// Who owns the root of an interface's egress queue.
#[derive(Clone, Debug)]
pub(super) enum RootQdisc {
    /// The kernel's own: every egress qdisc has handle 0:, which only the kernel gives (when
    /// it activates a device it attaches, as root, `noqueue` to queueless virtual devices such
    /// as veth, `mq` with one default qdisc per queue to multi-queue devices, and otherwise
    /// net.core.default_qdisc: pfifo_fast, fq_codel, fq, ...). Whatever the kind, nobody has
    /// configured anything there, so replacing it loses nothing. A qdisc made with `tc`, even a
    /// `noqueue`, always has a handle other than 0: (8001: and up when none is given).
    KernelDefault,
    /// classifier's tree: an HTB root with classifier's handle, default class and `r2q`
    /// mark, all three in what `tc -j` shows of the qdisc. The mark is what tells: `1:` with
    /// default class 10 is the textbook HTB layout, so someone's own tree may well look the
    /// same, but no one picks r2q R2Q_MARK. It travels with the qdisc, so it stays true when
    /// the pinned state does not: a `detach --purge`, a bpffs remounted, another pin
    /// directory. (A steering entry in the pinned SHAPING map would not: it outlives someone
    /// replacing the tree, and is gone when the state is purged while the tree stays.)
    Ours,
    /// Anything else: someone's traffic control, described as "kind handle".
    Foreign(String),
}

impl RootQdisc {
    /// Who owns `interface`'s root now, as `tc` shows it.
    pub(super) fn of(interface: &str) -> Result<Self, Error> {
        let qdiscs: Vec<tc::Qdisc> = tc::egress_qdiscs(interface, None)?;
        let Some(root) = qdiscs.iter().find(|q| q.root) else {
            return Ok(Self::KernelDefault);
        };
        let option = |name: &str| root.options.get(name);
        if root.kind == "htb"
            && root.handle == ROOT
            && option("default").and_then(|d| d.as_str())
                == Some(format!("{CLASS_NORMAL:#x}").as_str())
            && option("r2q").and_then(|r| r.as_u64()) == Some(u64::from(R2Q_MARK))
        {
            return Ok(Self::Ours);
        }
        if root.handle != tc::HANDLE_KERNEL {
            return Ok(Self::Foreign(root.describe()));
        }
        // A default root (mq) whose queues someone gave qdiscs of their own.
        Ok(
            match qdiscs.iter().find(|q| q.handle != tc::HANDLE_KERNEL) {
                None => Self::KernelDefault,
                Some(child) => Self::Foreign(format!(
                    "{} with {} under {}",
                    root.describe(),
                    child.describe(),
                    child.parent.as_deref().unwrap_or("?")
                )),
            },
        )
    }
}
