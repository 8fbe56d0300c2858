//! The backend administrator's data calls: `add_backend` (JSON in, JSON out) and
//! `backend_config` (one backend as JSON), beside the admin actions of `eligibility.rs`,
//! `membership.rs` and `sessions.rs`.

use super::PeerList;
use crate::admin::{result_json, AdminResult, BackendSpec};
use crate::error::{Error, Result};
use crate::peer::{PeerId, PeerSpec};

impl PeerList {
    /// Admin: adds a backend described by JSON `data`, `{"id": "host:port", "weight": 2}`
    /// (see [`BackendSpec`]), as `update` would add it, and answers with JSON: the
    /// [`result_json`] of the operation plus `"id"` (when the data had one) and
    /// `"ignored"` (the keys it did not use, when there were any). Never panics and never
    /// fails: malformed data, an invalid id or weight, and an id already in the list are a
    /// `"failed"` result (number 4) naming the error. On a list with
    /// [`ListOptions::subset`](crate::ListOptions::subset) the backend joins the offered
    /// membership and is retained only if it falls in the subset.
    ///
    /// ```
    /// use peerlb::{ListOptions, PeerList};
    /// let list = PeerList::new(ListOptions::default()).unwrap();
    /// assert_eq!(
    ///     list.add_backend(r#"{"id":"a:1","weight":2}"#),
    ///     r#"{"result":"success","code":1,"id":"a:1"}"#
    /// );
    /// let again: serde_json::Value = serde_json::from_str(&list.add_backend(r#"{"id":"a:1"}"#)).unwrap();
    /// assert_eq!(again["code"], 4);
    /// assert_eq!(again["error"], "peer-already-in-list");
    /// assert_eq!(list.list_backends()[0].weight, 2);
    /// ```
    pub fn add_backend(&self, data: &str) -> String {
        self.add_backend_result(data).1
    }

    /// [`PeerList::add_backend`], giving the operation's result too (for surfaces that
    /// report a failure in their own way as well, such as C's status).
    pub fn add_backend_result(&self, data: &str) -> (Result<AdminResult>, String) {
        let spec = BackendSpec::parse(data);
        let result = match &spec {
            Ok(spec) => self
                .update(
                    [PeerSpec::weighted(spec.id.as_str(), spec.weight)],
                    None::<&str>,
                )
                .map(|()| AdminResult::Success),
            Err(e) => Err(e.clone()),
        };
        let mut answer = result_json(&result);
        if let Ok(spec) = &spec {
            // Appended inside the object, after the result's own keys.
            answer.pop();
            answer.push_str(&format!(
                ",\"id\":{}",
                serde_json::Value::from(spec.id.as_str())
            ));
            if !spec.ignored.is_empty() {
                answer.push_str(&format!(
                    ",\"ignored\":{}",
                    serde_json::Value::from(spec.ignored.clone())
                ));
            }
            answer.push('}');
        }
        (result, answer)
    }

    /// Admin: one backend's configuration and state as JSON: the element of
    /// [`PeerList::list_backends`] for `id` (weight, status, pending, admin state, ejection
    /// state, counters and open sessions). `peer-not-in-list` for an id not in the list,
    /// `invalid-argument` for an invalid id.
    ///
    /// ```
    /// use peerlb::{ListOptions, PeerList};
    /// let list = PeerList::new(ListOptions::default()).unwrap();
    /// list.update([peerlb::PeerSpec::weighted("a:1", 3)], None::<&str>).unwrap();
    /// let config: serde_json::Value = serde_json::from_str(&list.backend_config("a:1").unwrap()).unwrap();
    /// assert_eq!(config["weight"], 3);
    /// assert_eq!(config["admin"], "enabled");
    /// assert_eq!(config["sessions"], 0);
    /// assert!(list.backend_config("zzz").is_err());
    /// ```
    pub fn backend_config(&self, id: &str) -> Result<String> {
        let peer_id = PeerId::new(id)?;
        let shared = &self.shared;
        let state = shared.lock();
        let Some(slot) = state.peers.get(&peer_id) else {
            return Err(Error::PeerNotInList(peer_id.to_string()));
        };
        let snapshot = shared
            .peer_snapshots_of(&state, vec![(&peer_id, slot)])
            .pop()
            .expect("one slot, one snapshot");
        drop(state);
        Ok(serde_json::to_string(&snapshot).expect("introspection always serializes"))
    }
}
