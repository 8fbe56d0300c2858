//! Deterministic subsetting: which `size` backends one client of many connects to, so that
//! every backend gets the same number of clients and a change of membership moves few.
//!
//! This is the algorithm of Google's *Site Reliability Engineering*, chapter "Load
//! Balancing in the Datacenter": clients are grouped in *rounds*; every round orders the
//! backends with a seed derived from the round, cuts the order into `subset_count`
//! windows of `size` backends, and each client of the round takes one window. Over a whole
//! round every backend is in exactly one window, so with `clients` a multiple of
//! `subset_count` (and `backends` a multiple of `size`) each backend has exactly
//! `clients × size / backends` clients.
//!
//! # Where it differs from the book, and why
//!
//! * **The order of a round is by hash, not by shuffling an index array.** The book
//!   shuffles the backend list with the round's seed, so adding or removing one backend
//!   reorders every round and moves almost every client. Here a backend's place in round
//!   `r` is `xxh3(id, seed(r))`: the relative order of two backends does not depend on the
//!   others, so one more backend shifts each window by at most one place: a client loses at
//!   most one backend and gains at most one.
//! * **`subset_count` is `round(backends / size)`** (at least 1), not the floor, and window
//!   `k` starts at `⌊k × (backends − size) / (subset_count − 1)⌋`: the windows spread evenly
//!   from the first place to the last without wrapping around (a wrapped window would move
//!   at both ends when one backend goes), and they overlap or leave gaps of at most a
//!   quarter window when `backends` is not a multiple of `size`. `subset_count` (hence
//!   every client's round) stays the same for `backends` within half a window of a
//!   multiple of `size` (e.g. 300 ± 14 backends with `size` 30). Crossing that boundary
//!   re-deals every client, as the book's algorithm does on every change.
//!
//! ```
//! use peerlb::subset::deterministic_subset;
//! let backends: Vec<String> = (0..300).map(|i| format!("10.0.{}.{}:80", i / 256, i % 256)).collect();
//! let mine = deterministic_subset(&backends, 17, 30);
//! assert_eq!(mine.len(), 30);
//! assert_eq!(mine, deterministic_subset(&backends, 17, 30)); // deterministic
//! ```

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::strategy::stripes::splitmix64;

/// The backends client `client` connects to: `size` of `backends` (every one when `size`
/// is 0 or at least their number), in the round's order. `backends` may be in any order
/// (duplicates count once); the answer depends only on the set, `client` and `size`.
pub fn deterministic_subset<S: AsRef<str>>(
    backends: &[S],
    client: u64,
    size: usize,
) -> Vec<String> {
    let mut ids: Vec<&str> = backends.iter().map(AsRef::as_ref).collect();
    ids.sort_unstable();
    ids.dedup();
    select(ids, client, size)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// [`deterministic_subset`] of distinct ids in any order, without copying them: O(n)
/// hashing plus an O(n) selection of the window and a sort of the `size` chosen (a list
/// recomputes its subset with this on every update). Every id when `size` is 0 or at
/// least their number (then in sorted order, as [`deterministic_subset`] gives them).
pub(crate) fn select(mut ids: Vec<&str>, client: u64, size: usize) -> Vec<&str> {
    let n = ids.len();
    if size == 0 || size >= n {
        ids.sort_unstable();
        return ids;
    }
    let subset_count = ((n + size / 2) / size).max(1) as u64;
    let round = client / subset_count;
    let window = client % subset_count;
    let seed = splitmix64(round ^ 0x7375_6273_6574_2d72); // "subset-r"
    let mut order: Vec<(u64, &str)> = ids
        .into_iter()
        .map(|id| (xxh3_64_with_seed(id.as_bytes(), seed), id))
        .collect();
    let start = if subset_count == 1 {
        0
    } else {
        (window as u128 * (n - size) as u128 / (subset_count - 1) as u128) as usize
    };
    // Places start..start + size of the round's order (hash, then id: a total order, so
    // the selection is the same as sorting everything).
    if start > 0 {
        order.select_nth_unstable(start);
    }
    let rest = &mut order[start..];
    if size < rest.len() {
        rest.select_nth_unstable(size);
    }
    let window = &mut rest[..size];
    window.sort_unstable();
    window.iter().map(|(_, id)| *id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window of the fully sorted order, the way the function was first written.
    fn by_sorting(ids: &[&str], client: u64, size: usize) -> Vec<String> {
        let n = ids.len();
        let subset_count = ((n + size / 2) / size).max(1) as u64;
        let seed = splitmix64((client / subset_count) ^ 0x7375_6273_6574_2d72);
        let mut order: Vec<(u64, &str)> = ids
            .iter()
            .map(|id| (xxh3_64_with_seed(id.as_bytes(), seed), *id))
            .collect();
        order.sort_unstable();
        let window = client % subset_count;
        let start = if subset_count == 1 {
            0
        } else {
            (window as u128 * (n - size) as u128 / (subset_count - 1) as u128) as usize
        };
        order[start..start + size]
            .iter()
            .map(|(_, id)| (*id).to_owned())
            .collect()
    }

    #[test]
    fn selecting_the_window_equals_sorting_everything() {
        let owned: Vec<String> = (0..97).map(|i| format!("10.0.0.{i}:80")).collect();
        let ids: Vec<&str> = owned.iter().map(String::as_str).collect();
        for size in [1, 2, 5, 13, 48, 96] {
            for client in 0..40 {
                assert_eq!(
                    deterministic_subset(&ids, client, size),
                    by_sorting(&ids, client, size),
                    "size {size}, client {client}"
                );
            }
        }
    }
}
