//! Admin state outlives a removal: a disabled peer that is removed and added again comes
//! back disabled, unless `delete` or `enable` forgot it.

use peerlb::{ListOptions, PeerList};

/// Disable, then remove (update): the id is remembered as disabled, and delete (or enable)
/// of it forgets it, so it comes back enabled.
#[test]
fn disabled_then_removed_peer_can_be_forgotten() {
    let list = PeerList::new(ListOptions::default()).unwrap();
    list.update(["a:1"], None::<&str>).unwrap();
    list.disable("a:1").unwrap();
    list.update(None::<&str>, ["a:1"]).unwrap();
    let del = list.delete("a:1");
    let en = list.enable("a:1");
    println!("delete -> {del:?}; enable -> {en:?}");
    list.update(["a:1"], None::<&str>).unwrap();
    let admin = list.list_backends()[0].admin.clone();
    assert_eq!(del, Ok(peerlb::AdminResult::Success));
    assert_eq!(
        en.unwrap_err().code(),
        peerlb::ErrorCode::PeerNotInList,
        "already forgotten"
    );
    assert_eq!(admin, "enabled");
    // Without the delete, the re-added peer comes back disabled; enable forgets it too.
    list.disable("a:1").unwrap();
    list.update(None::<&str>, ["a:1"]).unwrap();
    assert_eq!(list.enable("a:1"), Ok(peerlb::AdminResult::Success));
    list.update(["a:1"], None::<&str>).unwrap();
    assert_eq!(list.list_backends()[0].admin, "enabled");
}
