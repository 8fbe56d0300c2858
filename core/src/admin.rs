//! Backend administration: what an operator's `disable`, `enable`, `reset`, `delete` and
//! `failover` on a [`PeerList`](crate::PeerList) report, with a WebSocket balancer's
//! numbers (its backend administrator's `ResultSuccess = 1`, `ResultNoActionReqd = 3`,
//! `ResultFailed = 4`).
//!
//! * `disable(id)`: no new requests go to the peer (requests in flight finish normally);
//!   it stays disabled across `update`s, and even if it is removed and added again, until
//!   `enable(id)` or `delete(id)`.
//! * `enable(id)`: undoes `disable`.
//! * `reset(id)`: clears an ejection and the peer's failure history (streak and ejection
//!   count, so its next ejection is again the shortest).
//! * `delete(id)`: removes the peer from the list, as `update` would, and forgets its admin
//!   state. Its open sessions are asked to move (`failover-requested`).
//! * `failover(id)`: asks every open session on the peer to move to another peer (see
//!   [`crate::session`]); the library never closes a session itself.
//! * `add_backend(json)` and `backend_config(id)` take and give JSON (see
//!   [`BackendSpec`] and [`PeerList::backend_config`](crate::PeerList::backend_config)).
//!
//! Each returns [`AdminResult::Success`] (1) when it changed something,
//! [`AdminResult::NoActionRequired`] (3) when the peer was already in that state, and an
//! [`Error`] (`peer-not-in-list`, `invalid-argument`) for *failed*, whose
//! number is [`RESULT_FAILED`] (4). [`result_json`] writes any of them as the JSON an admin
//! API answers with.
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

/// What an admin operation did. *Failed* is an `Err` of the operation instead, numbered
/// [`RESULT_FAILED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum AdminResult {
    /// The operation changed the peer's state (`ResultSuccess`).
    Success = 1,
    /// The peer was already in the requested state; nothing changed (`ResultNoActionReqd`).
    NoActionRequired = 3,
}

/// The number of a *failed* admin operation (`ResultFailed`), next to
/// [`AdminResult::Success`] (1) and [`AdminResult::NoActionRequired`] (3).
pub const RESULT_FAILED: u32 = 4;

/// The number of an admin operation's outcome: 1 success, 3 no action required, 4 failed.
///
/// ```
/// use peerlb::admin::{result_number, AdminResult};
/// use peerlb::Error;
/// assert_eq!(result_number(&Ok(AdminResult::Success)), 1);
/// assert_eq!(result_number(&Ok(AdminResult::NoActionRequired)), 3);
/// assert_eq!(result_number(&Err(Error::PeerNotInList("a".into()))), 4);
/// ```
pub fn result_number(result: &Result<AdminResult, Error>) -> u32 {
    match result {
        Ok(r) => r.as_u32(),
        Err(_) => RESULT_FAILED,
    }
}

/// An admin operation's outcome as the JSON an admin API answers with (a WebSocket
/// balancer's `{"result":"success"}`, `{"result":"success","reason":"NoActionRequired"}`,
/// `{"result":"failed","reason":...}`), plus `code`, the result number, and for a failure
/// `error`, the error's code:
///
/// ```
/// use peerlb::admin::{result_json, AdminResult};
/// use peerlb::Error;
/// assert_eq!(result_json(&Ok(AdminResult::Success)), r#"{"result":"success","code":1}"#);
/// assert_eq!(
///     result_json(&Ok(AdminResult::NoActionRequired)),
///     r#"{"result":"success","code":3,"reason":"NoActionRequired"}"#
/// );
/// assert_eq!(
///     result_json(&Err(Error::PeerNotInList("a".into()))),
///     r#"{"result":"failed","code":4,"reason":"peer \"a\" is not in the list","error":"peer-not-in-list"}"#
/// );
/// ```
pub fn result_json(result: &Result<AdminResult, Error>) -> String {
    match result {
        Ok(AdminResult::Success) => r#"{"result":"success","code":1}"#.to_owned(),
        Ok(AdminResult::NoActionRequired) => {
            r#"{"result":"success","code":3,"reason":"NoActionRequired"}"#.to_owned()
        }
        Err(e) => format!(
            r#"{{"result":"failed","code":{RESULT_FAILED},"reason":{},"error":"{}"}}"#,
            serde_json::Value::from(e.to_string()),
            e.code().as_str()
        ),
    }
}

/// What [`PeerList::add_backend`](crate::PeerList::add_backend) reads: a JSON object
/// `{"id": "host:port", "weight": 2}`. `id` is required; `weight` defaults to 1 (at least
/// 1). Other keys are ignored, as a JSON decoder into a struct ignores them, and listed as
/// `"ignored"` in the result so that a misspelt key does not go unnoticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSpec {
    /// The peer id.
    pub id: String,
    /// Its weight (default 1).
    pub weight: u32,
    /// Keys of the object that were not used.
    pub ignored: Vec<String>,
}

impl BackendSpec {
    /// Parses the JSON `data`; malformed JSON, a missing or non-string `id`, or a `weight`
    /// that is not a whole number in 1..=4294967295 is `invalid-argument`.
    ///
    /// ```
    /// use peerlb::admin::BackendSpec;
    /// let spec = BackendSpec::parse(r#"{"id":"a:1","weight":3,"url":"ws://a:1/"}"#).unwrap();
    /// assert_eq!((spec.id.as_str(), spec.weight), ("a:1", 3));
    /// assert_eq!(spec.ignored, ["url"]);
    /// assert!(BackendSpec::parse("{").is_err());
    /// ```
    pub fn parse(data: &str) -> Result<BackendSpec, Error> {
        let value: serde_json::Value = serde_json::from_str(data)
            .map_err(|e| Error::InvalidArgument(format!("backend data is not valid JSON: {e}")))?;
        let serde_json::Value::Object(object) = value else {
            return Err(Error::InvalidArgument(
                "backend data must be a JSON object like {\"id\": \"host:port\", \"weight\": 1}"
                    .into(),
            ));
        };
        let id = match object.get("id") {
            Some(serde_json::Value::String(id)) => id.clone(),
            Some(other) => {
                return Err(Error::InvalidArgument(format!(
                    "backend \"id\" must be a string, not {other}"
                )))
            }
            None => return Err(Error::InvalidArgument("backend data has no \"id\"".into())),
        };
        let weight = match object.get("weight") {
            None | Some(serde_json::Value::Null) => 1,
            Some(w) => w
                .as_u64()
                .and_then(|w| u32::try_from(w).ok())
                .filter(|w| *w >= 1)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "backend \"weight\" must be a whole number from 1 to {}, not {w}",
                        u32::MAX
                    ))
                })?,
        };
        let ignored = object
            .keys()
            .filter(|k| *k != "id" && *k != "weight")
            .cloned()
            .collect();
        Ok(BackendSpec {
            id,
            weight,
            ignored,
        })
    }
}

impl AdminResult {
    /// The result's number: 1 for `Success`, 3 for `NoActionRequired`.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

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
    /// [`PeerList::failover`](crate::PeerList::failover)
    Failover = 4,
}

impl AdminOp {
    /// Parses `"disable"`, `"enable"`, `"reset"`, `"delete"`, `"failover"`.
    pub fn from_name(name: &str) -> Option<AdminOp> {
        match name {
            "disable" => Some(AdminOp::Disable),
            "enable" => Some(AdminOp::Enable),
            "reset" => Some(AdminOp::Reset),
            "delete" => Some(AdminOp::Delete),
            "failover" => Some(AdminOp::Failover),
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
            AdminOp::Failover => "failover",
        }
    }
}

impl FromStr for AdminOp {
    type Err = Error;
    /// Parses `"disable"`, `"enable"`, `"reset"`, `"delete"`, `"failover"`; anything else
    /// is `invalid-argument`.
    fn from_str(name: &str) -> Result<AdminOp, Error> {
        AdminOp::from_name(name).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "unknown admin operation {name:?}; expected disable, enable, reset, delete or failover"
            ))
        })
    }
}

impl fmt::Display for AdminOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
