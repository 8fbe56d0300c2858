//! The panic boundary every entry point runs behind: nothing unwinds into C and nothing
//! aborts. A caught panic becomes the core's `internal` error (`Error::from_panic`, with
//! the panic's message), recorded as the thread's last error like any other failure.

use std::panic::{catch_unwind, AssertUnwindSafe};

use peerlb::Error;

use crate::error::{peerlb_status, record_error};

/// Runs `f`, turning a panic into [`Error::from_panic`]. The one `catch_unwind` of the
/// crate.
#[inline]
fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Error> {
    // AssertUnwindSafe: after a panic nothing of `f`'s state is used again, and the core
    // keeps its lists consistent at every unlock (poisoned locks are recovered).
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| Error::from_panic(panic.as_ref()))
}

/// The boundary of a function returning a status: runs `f`; an error (or a caught panic)
/// is recorded as the thread's last error and returned as its status.
///
/// The error becomes a status inside the unwind boundary, so what crosses it on the
/// success path is one small status, not a `Result` carrying the core's (large) `Error`:
/// choose and finish pay for no copies of it.
#[inline]
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Error>) -> peerlb_status {
    let status = catch(|| match f() {
        Ok(()) => peerlb_status::PEERLB_OK,
        Err(error) => record_error(&error),
    });
    match status {
        Ok(status) => status,
        Err(panic) => record_error(&panic),
    }
}

/// The boundary of a function that returns no status (a `*_free`, a name lookup): a
/// caught panic is recorded as the thread's last error and `fallback` returned.
#[inline]
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch(f).unwrap_or_else(|error| {
        record_error(&error);
        fallback
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;
    use crate::error::peerlb_last_error_message;

    fn last_message() -> String {
        // SAFETY: peerlb_last_error_message never returns NULL.
        unsafe { CStr::from_ptr(peerlb_last_error_message()) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_panic_is_internal_with_its_message() {
        assert_eq!(guard(|| panic!("boom")), peerlb_status::PEERLB_INTERNAL);
        assert!(last_message().ends_with("boom"), "{}", last_message());
        assert_eq!(guard_value(7, || panic!("again")), 7);
        assert!(last_message().ends_with("again"), "{}", last_message());
    }

    #[test]
    fn errors_keep_their_status() {
        let status = guard(|| Err(Error::PeerNotInList("a".into())));
        assert_eq!(status, peerlb_status::PEERLB_PEER_NOT_IN_LIST);
        assert_eq!(guard(|| Ok(())), peerlb_status::PEERLB_OK);
    }
}
