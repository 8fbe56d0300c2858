//! The compact `name?key=value&key=value` syntax that strategy and transport specs share
//! (so C, Python and Node can pass options as one string).

use crate::error::{Error, Result};

/// Splits `spec` into the part before `?` and its `key=value` pairs, which must be
/// non-empty and distinct. `what` names the kind of spec in error messages (`"strategy"`,
/// `"transport"`); every malformation is `invalid-argument`.
pub(crate) fn split_spec<'a>(
    what: &str,
    spec: &'a str,
) -> Result<(&'a str, Vec<(&'a str, &'a str)>)> {
    let bad = |why: String| Error::InvalidArgument(format!("{what} {spec:?}: {why}"));
    let (head, query) = match spec.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (spec, None),
    };
    let mut params: Vec<(&str, &str)> = Vec::new();
    if let Some(q) = query {
        for pair in q.split('&') {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("expected key=value, got {pair:?}")))?;
            if k.is_empty() || v.is_empty() {
                return Err(bad(format!("expected key=value, got {pair:?}")));
            }
            if params.iter().any(|(seen, _)| *seen == k) {
                return Err(bad(format!("option {k} given twice")));
            }
            params.push((k, v));
        }
    }
    Ok((head, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_rejects() {
        let (head, params) = split_spec("strategy", "hash-ring:fast?vnodes=7&bounded=2").unwrap();
        assert_eq!(head, "hash-ring:fast");
        assert_eq!(params, [("vnodes", "7"), ("bounded", "2")]);
        assert_eq!(
            split_spec("transport", "tcp-probe").unwrap(),
            ("tcp-probe", vec![])
        );
        for bad in ["x?", "x?a", "x?a=", "x?=1", "x?a=1&a=2", "x?a=1&"] {
            let err = split_spec("transport", bad).unwrap_err();
            assert!(err.to_string().contains("transport"), "{bad}: {err}");
        }
    }
}
