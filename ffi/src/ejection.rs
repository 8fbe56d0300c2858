//! Outlier ejection settings on list options, as a spec string (like strategies and
//! transports), parsed by the core (`peerlb::ejection::parse`).

use std::ffi::c_char;

use peerlb::EjectionPolicy;

use crate::error::peerlb_status;
use crate::handle;
use crate::options::{peerlb_list_options, with_options};

/// Parses an ejection spec with the core's parser ([`peerlb::ejection::parse`]): `"off"`,
/// `"default"`, or `key=value` pairs joined by `&` (optionally after `"default?"`).
fn parse_ejection(spec: &str) -> Result<Option<EjectionPolicy>, peerlb::Error> {
    peerlb::ejection::parse(spec)
}

/// Sets outlier ejection (on by default, with the default policy) by a spec string:
///
/// * `"off"`: no ejection;
/// * `"default"`: 5 consecutive failures eject a peer for 30 s × the number of its
///   ejections (at most 300 s); at most 10 % of the peers (at least one) are ejected at
///   once; below 50 % healthy peers the list ignores ejections (panic mode);
/// * `key=value` pairs joined by `&` (also accepted after `"default?"`) changing the
///   default policy: `failures` (≥ 1), `base_ms`, `max_ms` (≥ `base_ms`), `max_percent`
///   (0..=100), `panic_percent` (0..=100; 0 = never panic), e.g.
///   `"failures=3&base_ms=200&max_ms=1000"`.
///
/// A peer counts a failure when a choice to it is finished with `PEERLB_OUTCOME_FAILURE`
/// (`peerlb_choice_finish` or `peerlb_retry_failed`); `PEERLB_OUTCOME_OK` ends a streak,
/// declined and cancelled outcomes neither count nor end it. The spec is NUL-terminated
/// and copied.
///
/// Ownership: borrows both arguments for the call.
/// Errors: `PEERLB_INVALID_ARGUMENT` for NULL arguments, non-UTF-8, a malformed pair, an
/// unknown key or an out-of-range value (the options are then unchanged).
///
/// # Safety
/// `opts` live options or NULL; `spec` a NUL-terminated string or NULL.
#[no_mangle]
pub unsafe extern "C" fn peerlb_list_options_set_ejection(
    opts: *mut peerlb_list_options,
    spec: *const c_char,
) -> peerlb_status {
    // SAFETY: forwarded contract.
    unsafe {
        with_options(opts, |o| {
            let spec = handle::c_str(spec, "ejection spec")?;
            Ok(o.ejection(parse_ejection(spec)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn specs() {
        assert_eq!(parse_ejection("off").unwrap(), None);
        assert_eq!(
            parse_ejection("default").unwrap(),
            Some(EjectionPolicy::default())
        );
        let p = parse_ejection("failures=3&base_ms=200&max_ms=1000")
            .unwrap()
            .unwrap();
        assert_eq!(p.consecutive_failures, 3);
        assert_eq!(p.base_time, Duration::from_millis(200));
        assert_eq!(p.max_time, Duration::from_secs(1));
        assert_eq!(
            parse_ejection("default?failures=2")
                .unwrap()
                .unwrap()
                .consecutive_failures,
            2
        );
        for bad in [
            "",
            "on",
            "failures",
            "failures=",
            "=3",
            "failures=3&",
            "failures=3&failures=4",
            "nope=1",
            "failures=0",
            "max_percent=101",
            "base_ms=5000&max_ms=10",
            "failures=-1",
        ] {
            assert!(parse_ejection(bad).is_err(), "{bad:?}");
        }
    }
}
