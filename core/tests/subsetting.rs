//! Deterministic subsetting's properties: balance across clients and bounded churn when a
//! backend comes or goes, against random subsetting as the baseline (printed with
//! `--nocapture`).

use std::collections::{BTreeSet, HashMap};

use peerlb::subset::deterministic_subset;
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;

const BACKENDS: usize = 300;
const SIZE: usize = 30;
const CLIENTS: u64 = 1000;

fn backends(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.1.{}.{}:8080", i / 250, i % 250))
        .collect()
}

/// The baseline: each client draws `size` backends at random (seeded by its id).
fn random_subset(backends: &[String], client: u64, size: usize) -> Vec<String> {
    let mut sorted = backends.to_vec();
    sorted.sort();
    let mut rng = rand::rngs::StdRng::seed_from_u64(client);
    sorted.shuffle(&mut rng);
    sorted.truncate(size);
    sorted
}

fn counts(subsets: &[Vec<String>]) -> HashMap<&str, usize> {
    let mut c = HashMap::new();
    for s in subsets {
        for b in s {
            *c.entry(b.as_str()).or_default() += 1;
        }
    }
    c
}

fn churn(a: &[String], b: &[String]) -> usize {
    let a: BTreeSet<&String> = a.iter().collect();
    let b: BTreeSet<&String> = b.iter().collect();
    a.symmetric_difference(&b).count()
}

type Subsetter = fn(&[String], u64, usize) -> Vec<String>;

/// (min, max, mean) clients per backend.
fn spread(all: &[String], f: Subsetter) -> (usize, usize, f64) {
    let subsets: Vec<Vec<String>> = (0..CLIENTS).map(|c| f(all, c, SIZE)).collect();
    let c = counts(&subsets);
    let per: Vec<usize> = all
        .iter()
        .map(|b| c.get(b.as_str()).copied().unwrap_or(0))
        .collect();
    let mean = (CLIENTS as usize * SIZE) as f64 / all.len() as f64;
    (*per.iter().min().unwrap(), *per.iter().max().unwrap(), mean)
}

/// (max, mean) backends changed per client (added + removed) when `before` becomes `after`.
fn movement(before: &[String], after: &[String], f: Subsetter) -> (usize, f64) {
    let changes: Vec<usize> = (0..CLIENTS)
        .map(|c| churn(&f(before, c, SIZE), &f(after, c, SIZE)))
        .collect();
    (
        *changes.iter().max().unwrap(),
        changes.iter().sum::<usize>() as f64 / CLIENTS as f64,
    )
}

#[test]
fn every_backend_has_the_mean_number_of_clients_within_one() {
    let all = backends(BACKENDS);
    let (min, max, mean) = spread(&all, deterministic_subset);
    let (rmin, rmax, _) = spread(&all, random_subset);
    eprintln!(
        "clients per backend ({CLIENTS} clients, {BACKENDS} backends, subset {SIZE}, mean {mean}): \
         deterministic min {min} max {max}; random min {rmin} max {rmax}"
    );
    let ceil = (CLIENTS as usize * SIZE).div_ceil(BACKENDS);
    assert!(min + 1 >= ceil && max <= ceil + 1, "{min}..{max} vs {ceil}");
    for c in 0..CLIENTS {
        let s = deterministic_subset(&all, c, SIZE);
        assert_eq!(s.iter().collect::<BTreeSet<_>>().len(), SIZE, "client {c}");
    }
}

#[test]
fn one_backend_more_or_less_moves_at_most_one_in_and_one_out_per_client() {
    let all = backends(BACKENDS);
    let mut more = all.clone();
    more.push("10.9.9.9:8080".into());
    let mut less = all.clone();
    less.remove(137);
    for (what, after) in [("added", &more), ("removed", &less)] {
        let (max, mean) = movement(&all, after, deterministic_subset);
        let (rmax, rmean) = movement(&all, after, random_subset);
        eprintln!(
            "one backend {what}: backends changed per client: deterministic max {max} mean {mean:.2}; \
             random max {rmax} mean {rmean:.2}"
        );
        assert!(max <= 2, "{what}: {max}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn subsets_are_deterministic_distinct_and_move_little(
        n in 20usize..400,
        size in 1usize..40,
        client in 0u64..10_000,
        drop in 0usize..400,
        order_seed in any::<u64>(),
    ) {
        let all = backends(n);
        let mine = deterministic_subset(&all, client, size);
        prop_assert_eq!(mine.len(), size.min(n));
        prop_assert_eq!(mine.iter().collect::<BTreeSet<_>>().len(), size.min(n));
        // The order the backends are given in does not matter.
        let mut shuffled = all.clone();
        shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(order_seed));
        prop_assert_eq!(&deterministic_subset(&shuffled, client, size), &mine);
        // One backend fewer: while the number of subsets per round stays, at most one in
        // and one out.
        let mut less = all.clone();
        less.remove(drop % n);
        let same_count = |m: usize| ((m + size / 2) / size).max(1);
        if size < n - 1 && same_count(n) == same_count(n - 1) {
            prop_assert!(churn(&mine, &deterministic_subset(&less, client, size)) <= 2);
        }
    }
}
