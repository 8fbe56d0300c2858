//! Backend administration: what an operator's `disable`, `enable`, `reset` and `delete`
//! on a [`PeerList`](crate::PeerList) report (a WebSocket balancer's backend admin calls
//! them `ResultSuccess`, `ResultNoActionReqd`, `ResultFailed`).
//!
//! * `disable(id)`: no new requests go to the peer (requests in flight finish normally);
//!   it stays disabled across `update`s, and even if it is removed and added again, until
//!   `enable(id)` or `delete(id)`.
//! * `enable(id)`: undoes `disable`.
//! * `reset(id)`: clears an ejection and the peer's failure history (streak and ejection
//!   count, so its next ejection is again the shortest).
//! * `delete(id)`: removes the peer from the list, as `update` would, and forgets its admin
//!   state.
//!
//! Each returns [`AdminResult::Success`] when it changed something,
//! [`AdminResult::NoActionRequired`] when the peer was already in that state, and an
//! [`Error`](crate::Error) (`peer-not-in-list`, `invalid-argument`) for *failed*.
//!
//! ```
//! use peerlb::{admin::AdminResult, ErrorCode, ListOptions, PeerList};
//! let list = PeerList::new(ListOptions::default()).unwrap();
//! list.update(["a:1", "b:1"], None::<&str>).unwrap();
//! assert_eq!(list.disable("a:1").unwrap(), AdminResult::Success);
//! assert_eq!(list.disable("a:1").unwrap(), AdminResult::NoActionRequired);
//! assert_eq!(list.enable("a:1").unwrap(), AdminResult::Success);
//! assert_eq!(list.reset("a:1").unwrap(), AdminResult::NoActionRequired);
//! assert_eq!(list.disable("zzz").unwrap_err().code(), ErrorCode::PeerNotInList);
//! assert_eq!(list.delete("b:1").unwrap(), AdminResult::Success);
//! assert_eq!(list.len(), 1);
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// What an admin operation did. *Failed* is an `Err` of the operation instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum AdminResult {
    /// The operation changed the peer's state.
    Success = 0,
    /// The peer was already in the requested state; nothing changed.
    NoActionRequired = 1,
}

impl AdminResult {
    /// `"success"` or `"no-action-required"` (a failed operation is `"failed"` on the
    /// surfaces that return a status string).
    pub fn as_str(self) -> &'static str {
        match self {
            AdminResult::Success => "success",
            AdminResult::NoActionRequired => "no-action-required",
        }
    }
}

impl fmt::Display for AdminResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which admin operation, for the surfaces that take its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum AdminOp {
    /// [`PeerList::disable`](crate::PeerList::disable)
    Disable = 0,
    /// [`PeerList::enable`](crate::PeerList::enable)
    Enable = 1,
    /// [`PeerList::reset`](crate::PeerList::reset)
    Reset = 2,
    /// [`PeerList::delete`](crate::PeerList::delete)
    Delete = 3,
}

impl AdminOp {
    /// Parses `"disable"`, `"enable"`, `"reset"`, `"delete"`.
    pub fn from_name(name: &str) -> Option<AdminOp> {
        match name {
            "disable" => Some(AdminOp::Disable),
            "enable" => Some(AdminOp::Enable),
            "reset" => Some(AdminOp::Reset),
            "delete" => Some(AdminOp::Delete),
            _ => None,
        }
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminOp::Disable => "disable",
            AdminOp::Enable => "enable",
            AdminOp::Reset => "reset",
            AdminOp::Delete => "delete",
        }
    }
}

impl FromStr for AdminOp {
    type Err = Error;
    /// Parses `"disable"`, `"enable"`, `"reset"`, `"delete"`; anything else is
    /// `invalid-argument`.
    fn from_str(name: &str) -> Result<AdminOp, Error> {
        AdminOp::from_name(name).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "unknown admin operation {name:?}; expected disable, enable, reset or delete"
            ))
        })
    }
}

impl fmt::Display for AdminOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
