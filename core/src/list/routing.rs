//! Routing: priority levels and zones, before the strategy picks a peer.
//!
//! A peer may carry a `zone` (a locality) and a `priority` (0 = highest) besides its
//! weight ([`PeerSpec::with_zone`](crate::PeerSpec::with_zone),
//! [`PeerSpec::with_priority`](crate::PeerSpec::with_priority)). The list groups its peers
//! into *localities*: one per priority level, or, on a list with a
//! [`local_zone`](ListOptions::local_zone), one per priority level and zone. Each locality
//! has its own instance of the list's strategy; a `choose` first picks a priority level,
//! then a locality inside it, and that locality's strategy picks the peer, so every
//! strategy works unchanged inside a locality.
//!
//! # Priority load (Envoy's)
//!
//! Each level's health is `min(100, overprovisioning × 100 × healthy / enabled)` percent
//! (integer arithmetic, as Envoy; overprovisioning factor 1.4 by default, so a level with
//! at least 5/7 of its peers healthy counts as fully healthy). Traffic goes to the highest
//! level whose health covers 100 %; the rest spills to the next levels in proportion to
//! their health, normalised when the levels' health adds up to less than 100 %. Loads are
//! whole percents and the rounding remainder goes to the first level with any health, as
//! Envoy's `distributeLoad`. *Healthy* is a peer the list would offer outside panic
//! (retained, available, enabled, not ejected); *enabled* is every retained peer an admin
//! did not disable.
//!
//! # The panic floor per level
//!
//! A level is in panic when its healthy share is below the ejection policy's
//! `panic_percent`; a panicking level also offers its ejected (available) peers, as the
//! list-wide floor does on a list with one level. When the levels' health adds up to
//! 100 % no level panics (the others can take the load, as Envoy); when every level
//! panics, load goes to each level in proportion to its enabled peers. A list with one
//! level behaves exactly as the list-wide floor always did.
//!
//! # Zone-aware routing (Envoy's, inside every level)
//!
//! With [`ListOptions::local_zone`] set and a level that has peers in at least two zones,
//! at least [`ListOptions::min_cluster_size`] healthy peers (default 6) and a healthy peer
//! in the local zone, and that is not in panic:
//!
//! * when the local zone's share of the level's healthy peers is at least its share of the
//!   level's enabled peers, every request of the level stays in the local zone;
//! * otherwise the local zone gets `healthy share / enabled share` of the level's requests
//!   (what it can take) and the residual goes to the other zones in proportion to their
//!   spare capacity (healthy share minus enabled share, where positive).
//!
//! Shares are in 1/10 000, as Envoy's. Otherwise (no local zone, one zone, too few healthy
//! peers, no healthy local peer, panic) the level's zones get requests in proportion to
//! the peers they offer, which is what one strategy over the whole level would give.
//!
//! # Where this differs from Envoy
//!
//! * Envoy takes each zone's share of *clients* from the membership of its own (local)
//!   cluster; a peerlb list knows no other clients, so the local zone's expected share is
//!   its share of the level's enabled peers (clients deployed like their backends).
//! * Envoy routes by zone in priority 0 only; peerlb in every level (a level without
//!   peers in the local zone is spread as above, as Envoy spreads it).
//! * Levels and zones are picked by smooth weighted round-robin per thread (nginx's), not
//!   by a random draw, so shares are exact over every cycle (a 70/30 split sends exactly
//!   70 of every 100 requests to the first level) and reproducible without a seed.
//! * Panic offers only peers the transport reports available (ejected ones): peerlb never
//!   offers a peer it knows to be unreachable.
//! * Health counts peers, not weights (Envoy's default); degraded hosts do not exist.
//! * Custom strategies (an `Arc<dyn Strategy>`) cannot be copied per locality: a list with
//!   one routes nothing and its strategy sees every peer.
//!
//! # Cost
//!
//! A list whose peers form one locality (no zones or no `local_zone`, one priority) never
//! routes: its strategy holds every offered peer and `choose` is exactly the strategy's
//! pick. Routing is in force while the list's records form two localities or more; the
//! switch moves the offered peers between the list's strategy and the localities' (O(n),
//! once per switch). Counts per locality and level change with each record, as the class
//! tally does; the route table (loads and zone weights, O(levels + localities)) is rebuilt
//! at the end of a commit that changed a count, and published for `choose` without a lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use foldhash::fast::RandomState;

use super::eligibility::Class;
use super::options::ListOptions;
use crate::clock::Clock;
use crate::ejection::EjectionPolicy;
use crate::error::{Error, Result};
use crate::peer::{InFlight, PeerRef, MAX_ZONE_LEN};
use crate::request::Request;
use crate::strategy::stripes::{splitmix64, Striped};
use crate::strategy::{Strategy, StrategyConfig};

/// Envoy's default overprovisioning factor.
pub const DEFAULT_OVERPROVISIONING_FACTOR: f64 = 1.4;

/// Envoy's default minimum cluster size for zone-aware routing.
pub const DEFAULT_MIN_CLUSTER_SIZE: usize = 6;

/// Routing options of a list (set through [`ListOptions`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct FleetOptions {
    pub(crate) local_zone: Option<String>,
    pub(crate) min_cluster_size: Option<usize>,
    pub(crate) overprovisioning_factor: Option<f64>,
}

impl FleetOptions {
    /// The overprovisioning factor as Envoy keeps it: a whole percent (1.4 → 140).
    fn overprovisioning_percent(&self) -> Result<u32> {
        let f = self
            .overprovisioning_factor
            .unwrap_or(DEFAULT_OVERPROVISIONING_FACTOR);
        if !f.is_finite() || !(1.0..=100.0).contains(&f) {
            return Err(Error::InvalidArgument(format!(
                "overprovisioning_factor must be a number in 1..=100, got {f}"
            )));
        }
        Ok((f * 100.0).round() as u32)
    }

    fn validate_zone(&self) -> Result<Option<Arc<str>>> {
        match self.local_zone.as_deref() {
            None | Some("") => Ok(None),
            Some(z) => {
                validate_zone(z)?;
                Ok(Some(Arc::from(z)))
            }
        }
    }
}

/// Checks a zone name: at most [`MAX_ZONE_LEN`] bytes, no NUL.
pub(crate) fn validate_zone(zone: &str) -> Result<()> {
    if zone.len() > MAX_ZONE_LEN {
        return Err(Error::InvalidArgument(format!(
            "zone is {} bytes long; the limit is {MAX_ZONE_LEN}",
            zone.len()
        )));
    }
    if zone.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "zone {zone:?} contains a NUL byte"
        )));
    }
    Ok(())
}

impl ListOptions {
    /// The zone this client runs in: turns on zone-aware routing inside each priority
    /// level (see [`crate::list::routing`]). An empty string is the same as none (the
    /// default: zones are recorded but do not route).
    ///
    /// ```
    /// use peerlb::{ListOptions, PeerList, PeerSpec, Request};
    /// let list = PeerList::new(ListOptions::default().local_zone("a").shuffle(false)).unwrap();
    /// let peers = (0..9).map(|i| PeerSpec::new(format!("10.0.0.{i}:80"))
    ///     .with_zone(["a", "b", "c"][i % 3]));
    /// list.update(peers, None::<&str>).unwrap();
    /// list.start().unwrap();
    /// // Every zone is healthy: the local zone takes every request.
    /// for _ in 0..6 {
    ///     let c = list.choose(&Request::new()).unwrap();
    ///     assert!(["10.0.0.0:80", "10.0.0.3:80", "10.0.0.6:80"].contains(&c.peer().as_str()));
    /// }
    /// ```
    pub fn local_zone(mut self, zone: impl Into<String>) -> Self {
        self.fleet.local_zone = Some(zone.into());
        self
    }

    /// Below this many healthy peers in a priority level, zone-aware routing is off for
    /// that level (Envoy's `min_cluster_size`; default 6).
    pub fn min_cluster_size(mut self, peers: usize) -> Self {
        self.fleet.min_cluster_size = Some(peers);
        self
    }

    /// Envoy's overprovisioning factor for priority load (default 1.4): a level counts as
    /// fully healthy while `factor × healthy share >= 100 %`. A number in 1..=100; anything
    /// else is `invalid-argument` when the list is made.
    pub fn overprovisioning_factor(mut self, factor: f64) -> Self {
        self.fleet.overprovisioning_factor = Some(factor);
        self
    }
}

/// A locality's id: its index in the routing state's table.
pub(super) type LocalityId = u32;

/// What a locality is: a priority level, and a zone when the list routes by zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct LocalityKey {
    priority: u32,
    zone: Option<Arc<str>>,
}

const CLASSES: usize = super::eligibility::CLASSES;

/// Records per class.
#[derive(Debug, Default, Clone, Copy)]
struct Counts([usize; CLASSES]);

impl Counts {
    fn get(&self, class: Class) -> usize {
        self.0[class as usize]
    }

    fn enabled(&self) -> usize {
        self.get(Class::Unavailable)
            + self.get(Class::Connecting)
            + self.get(Class::Ejected)
            + self.get(Class::Healthy)
    }

    fn healthy(&self) -> usize {
        self.get(Class::Healthy)
    }
}

struct Locality {
    key: LocalityKey,
    /// Records in the list (any phase).
    records: usize,
    counts: Counts,
    /// Its strategy, made the first time the list routes while it has records.
    strategy: Option<Arc<dyn Strategy>>,
}

#[derive(Default)]
struct Level {
    counts: Counts,
    /// Its localities with records, by zone.
    localities: BTreeMap<Option<Arc<str>>, LocalityId>,
    panic: bool,
}

/// The routing state under the list's lock: localities, their counts, the levels.
#[derive(Default)]
pub(super) struct RoutingState {
    ids: HashMap<LocalityKey, LocalityId, RandomState>,
    localities: Vec<Locality>,
    free: Vec<LocalityId>,
    levels: BTreeMap<u32, Level>,
    /// Localities with at least one record.
    nonempty: usize,
    /// Localities whose last record left in this commit.
    emptied: Vec<LocalityId>,
    /// A count changed since the route table was last published.
    dirty: bool,
}

impl RoutingState {
    /// The locality of a new record (made when it is the first of its kind).
    pub(super) fn locality_for(
        &mut self,
        routing: &Routing,
        priority: u32,
        zone: Option<&Arc<str>>,
    ) -> LocalityId {
        let key = LocalityKey {
            priority,
            zone: if routing.local_zone.is_some() {
                zone.cloned()
            } else {
                None
            },
        };
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let locality = Locality {
            key: key.clone(),
            records: 0,
            counts: Counts::default(),
            strategy: None,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.localities[id as usize] = locality;
                id
            }
            None => {
                self.localities.push(locality);
                (self.localities.len() - 1) as LocalityId
            }
        };
        self.ids.insert(key, id);
        id
    }

    /// A record of `locality` was added to the list.
    pub(super) fn record_added(&mut self, locality: LocalityId) {
        let loc = &mut self.localities[locality as usize];
        loc.records += 1;
        if loc.records == 1 {
            self.nonempty += 1;
            let key = loc.key.clone();
            self.levels
                .entry(key.priority)
                .or_default()
                .localities
                .insert(key.zone, locality);
        }
        self.dirty = true;
    }

    /// Drops every locality's strategy (the list stopped routing; its strategy has them).
    fn drop_strategies(&mut self) {
        for loc in &mut self.localities {
            loc.strategy = None;
        }
        self.dirty = true;
    }

    /// A record of `locality` left the list (its class was already taken out). An emptied
    /// locality is reclaimed at the end of the commit ([`RoutingState::reclaim`]), after its
    /// strategy heard its last withdrawals.
    pub(super) fn record_removed(&mut self, locality: LocalityId) {
        let loc = &mut self.localities[locality as usize];
        loc.records -= 1;
        if loc.records == 0 {
            self.nonempty -= 1;
            self.emptied.push(locality);
        }
        self.dirty = true;
    }

    /// Frees the localities that have no records left (their ids may be given out again).
    fn reclaim(&mut self) {
        for locality in std::mem::take(&mut self.emptied) {
            let loc = &mut self.localities[locality as usize];
            if loc.records != 0 || !self.ids.contains_key(&loc.key) {
                continue; // refilled in the same commit, or reclaimed already
            }
            let key = loc.key.clone();
            loc.strategy = None;
            if let Some(level) = self.levels.get_mut(&key.priority) {
                level.localities.remove(&key.zone);
                if level.localities.is_empty() {
                    self.levels.remove(&key.priority);
                }
            }
            self.ids.remove(&key);
            self.free.push(locality);
            self.dirty = true;
        }
    }

    /// A record of `locality` moved between classes (as the class tally counts it).
    pub(super) fn moved(&mut self, locality: LocalityId, from: Option<Class>, to: Option<Class>) {
        if from == to {
            return;
        }
        let loc = &mut self.localities[locality as usize];
        let level = self
            .levels
            .get_mut(&loc.key.priority)
            .expect("a locality with records has its level");
        if let Some(c) = from {
            loc.counts.0[c as usize] -= 1;
            level.counts.0[c as usize] -= 1;
        }
        if let Some(c) = to {
            loc.counts.0[c as usize] += 1;
            level.counts.0[c as usize] += 1;
        }
        self.dirty = true;
    }

    /// Whether `locality`'s level is in panic (its ejected peers are offered).
    pub(super) fn panics(&self, locality: LocalityId) -> bool {
        let priority = self.localities[locality as usize].key.priority;
        self.levels.get(&priority).is_some_and(|l| l.panic)
    }

    /// The priority level of `locality`.
    pub(super) fn priority_of(&self, locality: LocalityId) -> u32 {
        self.localities[locality as usize].key.priority
    }

    /// Recomputes every level's panic flag; returns the levels whose flag flipped, and
    /// whether any level panics now. O(levels).
    pub(super) fn settle_panic(
        &mut self,
        policy: Option<&EjectionPolicy>,
        running: bool,
        overprovisioning: u32,
    ) -> (Vec<u32>, bool) {
        let several = self.levels.len() > 1;
        let total_health = if several {
            self.levels
                .values()
                .map(|l| health(&l.counts, overprovisioning))
                .sum::<u32>()
                .min(100)
        } else {
            0
        };
        let mut flipped = Vec::new();
        let mut any = false;
        for (&priority, level) in &mut self.levels {
            let panic = match policy {
                Some(p) if running => {
                    // With several levels, none panics while the others can take the load.
                    !(several && total_health == 100)
                        && p.panics(level.counts.healthy(), level.counts.enabled())
                }
                _ => false,
            };
            if panic != level.panic {
                level.panic = panic;
                flipped.push(priority);
                self.dirty = true;
            }
            any |= panic;
        }
        (flipped, any)
    }

    /// Whether the records form two localities or more (the list routes).
    pub(super) fn wants_routing(&self) -> bool {
        self.nonempty > 1
    }

    /// The strategy of `locality`, made from `routing`'s config when missing.
    pub(super) fn strategy(
        &mut self,
        routing: &Routing,
        locality: LocalityId,
    ) -> Arc<dyn Strategy> {
        let loc = &mut self.localities[locality as usize];
        if loc.strategy.is_none() {
            self.dirty = true;
        }
        loc.strategy
            .get_or_insert_with(|| routing.make_strategy(&loc.key))
            .clone()
    }

    /// Each level's introspection: its load now, its counts, its panic flag.
    pub(super) fn priorities(
        &self,
        routing: &Routing,
        policy: Option<&EjectionPolicy>,
    ) -> Vec<crate::introspect::PriorityIntrospection> {
        let loads = self.loads(routing.overprovisioning, policy);
        self.levels
            .iter()
            .zip(loads)
            .map(
                |((&priority, level), load)| crate::introspect::PriorityIntrospection {
                    priority,
                    load,
                    healthy: level.counts.healthy(),
                    enabled: level.counts.enabled(),
                    panic: level.panic,
                },
            )
            .collect()
    }

    /// Every level's priority load (see [`priority_loads`]).
    fn loads(&self, overprovisioning: u32, policy: Option<&EjectionPolicy>) -> Vec<u32> {
        let healths: Vec<u32> = self
            .levels
            .values()
            .map(|l| health(&l.counts, overprovisioning))
            .collect();
        priority_loads(
            &healths,
            &self
                .levels
                .values()
                .map(|l| l.counts.enabled())
                .collect::<Vec<_>>(),
            &self.levels.values().map(|l| l.panic).collect::<Vec<_>>(),
            policy.is_some(),
        )
    }

    /// Builds the route table `choose` reads (see the module docs).
    fn table(&mut self, routing: &Routing, policy: Option<&EjectionPolicy>) -> RouteTable {
        let mut levels: Vec<LevelRoute> = Vec::with_capacity(self.levels.len());
        let mut entries: Vec<Entry> = Vec::new();
        let mut strategies: Vec<Option<Arc<dyn Strategy>>> =
            self.localities.iter().map(|l| l.strategy.clone()).collect();
        let loads = self.loads(routing.overprovisioning, policy);
        for ((_, level), load) in self.levels.iter().zip(loads) {
            let start = entries.len();
            let weights = zone_weights(routing, level, &self.localities);
            for (locality, weight) in weights {
                let l = locality as usize;
                if strategies[l].is_none() {
                    let s = routing.make_strategy(&self.localities[l].key);
                    self.localities[l].strategy = Some(s.clone());
                    strategies[l] = Some(s);
                }
                entries.push(Entry { locality, weight });
            }
            levels.push(LevelRoute {
                load,
                entries: start..entries.len(),
            });
        }
        self.dirty = false;
        RouteTable {
            generation: 0,
            levels,
            entries,
            strategies,
        }
    }
}

/// A level's health in percent: `min(100, overprovisioning% × healthy / enabled)`.
fn health(counts: &Counts, overprovisioning: u32) -> u32 {
    let enabled = counts.enabled() as u64;
    if enabled == 0 {
        return 0;
    }
    (overprovisioning as u64 * counts.healthy() as u64 / enabled).min(100) as u32
}

/// Envoy's priority load, in whole percents per level (levels in priority order):
/// `healths` from [`health`], `enabled` peers per level, each level's panic flag, and
/// whether the list has a panic threshold at all (an ejection policy).
pub(crate) fn priority_loads(
    healths: &[u32],
    enabled: &[usize],
    panics: &[bool],
    has_threshold: bool,
) -> Vec<u32> {
    let n = healths.len();
    let mut loads = vec![0u32; n];
    if n == 0 {
        return loads;
    }
    let total: u32 = healths.iter().sum::<u32>().min(100);
    // Every level panics (an empty level counts as panicking): load by enabled peers.
    let all_panic =
        has_threshold && total < 100 && panics.iter().zip(enabled).all(|(&p, &e)| p || e == 0);
    if all_panic || total == 0 {
        let hosts: usize = enabled.iter().sum();
        if hosts == 0 || !has_threshold && total == 0 {
            loads[0] = 100;
            return loads;
        }
        let mut left = 100u32;
        for (load, &e) in loads.iter_mut().zip(enabled) {
            *load = (100 * e / hosts) as u32;
            left -= *load;
        }
        let first = enabled.iter().position(|&e| e > 0).unwrap_or(0);
        loads[first] += left;
        return loads;
    }
    let mut left = 100u32;
    for (load, &h) in loads.iter_mut().zip(healths) {
        *load = left.min(h * 100 / total);
        left -= *load;
    }
    if left > 0 {
        let first = healths.iter().position(|&h| h > 0).unwrap_or(0);
        loads[first] += left;
    }
    loads
}

/// The weights of a level's localities for one request (see the module docs).
fn zone_weights(
    routing: &Routing,
    level: &Level,
    localities: &[Locality],
) -> Vec<(LocalityId, u64)> {
    let offered = |id: LocalityId| {
        let c = &localities[id as usize].counts;
        c.healthy()
            + if level.panic {
                c.get(Class::Ejected)
            } else {
                0
            }
    };
    let by_offer = || {
        level
            .localities
            .values()
            .map(|&id| (id, offered(id) as u64))
            .collect::<Vec<_>>()
    };
    let Some(local) = &routing.local_zone else {
        return by_offer();
    };
    let present: Vec<LocalityId> = level
        .localities
        .values()
        .copied()
        .filter(|&id| localities[id as usize].counts.enabled() > 0)
        .collect();
    let local_id = level.localities.get(&Some(local.clone())).copied();
    let healthy = level.counts.healthy();
    let enabled = level.counts.enabled();
    let usable = present.len() >= 2
        && !level.panic
        && healthy >= routing.min_cluster_size
        && local_id.is_some_and(|id| localities[id as usize].counts.healthy() > 0);
    let Some(local_id) = local_id.filter(|_| usable) else {
        return by_offer();
    };
    // Shares in 1/10 000, as Envoy's calculateLocalityPercentages.
    let share = |id: LocalityId| {
        let c = &localities[id as usize].counts;
        (
            (c.enabled() * 10_000 / enabled) as u64,
            (c.healthy() * 10_000 / healthy) as u64,
        )
    };
    let (local_expected, local_healthy) = share(local_id);
    if local_healthy > 0 && local_healthy >= local_expected {
        return vec![(local_id, 1)];
    }
    let local_percent = local_healthy * 10_000 / local_expected;
    let residual: Vec<(LocalityId, u64)> = present
        .iter()
        .filter(|&&id| id != local_id)
        .map(|&id| {
            let (expected, healthy) = share(id);
            (id, healthy.saturating_sub(expected))
        })
        .collect();
    let total_residual: u64 = residual.iter().map(|(_, r)| r).sum();
    if total_residual == 0 {
        // Rounding left no spare capacity anywhere (Envoy picks at random then).
        return by_offer();
    }
    let mut weights = vec![(local_id, local_percent * total_residual)];
    weights.extend(
        residual
            .into_iter()
            .map(|(id, r)| (id, (10_000 - local_percent) * r)),
    );
    weights
}

/// What `choose` reads: per level its load and its localities' weights.
struct RouteTable {
    /// Tells a thread's cursor that the table changed.
    generation: u64,
    levels: Vec<LevelRoute>,
    entries: Vec<Entry>,
    /// Every locality's strategy, by id (for picks and for pending counts).
    strategies: Vec<Option<Arc<dyn Strategy>>>,
}

struct LevelRoute {
    /// Percent of requests (0..=100).
    load: u32,
    entries: std::ops::Range<usize>,
}

struct Entry {
    locality: LocalityId,
    weight: u64,
}

/// A thread's smooth weighted round-robin state over one route table.
struct Cursor {
    /// The generation of the table `levels` and `entries` belong to.
    generation: u64,
    levels: Vec<i64>,
    entries: Vec<i64>,
}

/// nginx's smooth weighted round-robin step: the index picked among `weights` (all > 0
/// skipped when zero), or `None` when every weight is zero.
fn smooth_pick(current: &mut [i64], weights: impl Iterator<Item = u64> + Clone) -> Option<usize> {
    let total: i64 = weights.clone().map(|w| w as i64).sum();
    if total == 0 {
        return None;
    }
    let mut best: Option<usize> = None;
    for (i, w) in weights.enumerate() {
        if w == 0 {
            continue;
        }
        current[i] += w as i64;
        if best.map_or(true, |b| current[i] > current[b]) {
            best = Some(i);
        }
    }
    let b = best?;
    current[b] -= total;
    Some(b)
}

/// The lock-free side of routing, owned by the list.
pub(crate) struct Routing {
    /// Builds the localities' strategies; `None` for a custom strategy (no routing).
    config: Option<StrategyConfig>,
    seed: Option<u64>,
    clock: Clock,
    pub(super) local_zone: Option<Arc<str>>,
    min_cluster_size: usize,
    pub(super) overprovisioning: u32,
    /// Whether the list routes now (written under the list's lock).
    routed: AtomicBool,
    table: ArcSwap<RouteTable>,
    /// The last table generation handed out (tables start at 1).
    generations: std::sync::atomic::AtomicU64,
    cursors: Striped<Cursor>,
}

impl Routing {
    pub(super) fn new(
        options: &FleetOptions,
        config: Option<StrategyConfig>,
        seed: Option<u64>,
        clock: Clock,
    ) -> Result<Routing> {
        let overprovisioning = options.overprovisioning_percent()?;
        let local_zone = options.validate_zone()?;
        let empty = Arc::new(RouteTable {
            generation: 0,
            levels: Vec::new(),
            entries: Vec::new(),
            strategies: Vec::new(),
        });
        Ok(Routing {
            config,
            seed,
            clock,
            local_zone,
            min_cluster_size: options.min_cluster_size.unwrap_or(DEFAULT_MIN_CLUSTER_SIZE),
            overprovisioning,
            routed: AtomicBool::new(false),
            table: ArcSwap::new(empty),
            generations: std::sync::atomic::AtomicU64::new(0),
            cursors: Striped::new(|_| Cursor {
                generation: 0,
                levels: Vec::new(),
                entries: Vec::new(),
            }),
        })
    }

    /// Whether routing can ever be in force (not with a custom strategy).
    pub(super) fn can_route(&self) -> bool {
        self.config.is_some()
    }

    /// Whether the list routes now.
    #[inline]
    pub(super) fn is_routed(&self) -> bool {
        self.routed.load(Ordering::Acquire)
    }

    pub(super) fn set_routed(&self, routed: bool) {
        self.routed.store(routed, Ordering::Release);
    }

    fn make_strategy(&self, key: &LocalityKey) -> Arc<dyn Strategy> {
        let config = self.config.expect("routing only with a built-in strategy");
        // Seeded lists stay reproducible: each locality's stream is derived from the seed.
        let seed = self.seed.map(|s| {
            let mut h = splitmix64(s ^ u64::from(key.priority).wrapping_mul(0x9e37_79b9));
            if let Some(z) = &key.zone {
                for b in z.bytes() {
                    h = splitmix64(h ^ u64::from(b));
                }
            }
            h
        });
        config.build(seed, &self.clock)
    }

    /// Publishes a new route table from `state` (under the list's lock).
    pub(super) fn publish(&self, state: &mut RoutingState, policy: Option<&EjectionPolicy>) {
        let mut table = state.table(self, policy);
        table.generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        self.table.store(Arc::new(table));
    }

    /// Every locality strategy (for `batch_end`, with no lock held).
    pub(super) fn strategies(&self) -> Vec<Arc<dyn Strategy>> {
        self.table
            .load()
            .strategies
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// The strategy that holds `peer` while the list routes.
    pub(super) fn strategy_of(&self, peer: &PeerRef) -> Option<Arc<dyn Strategy>> {
        self.table
            .load()
            .strategies
            .get(peer.locality() as usize)
            .cloned()
            .flatten()
    }

    /// Picks a level, a locality in it, and lets that locality's strategy pick a peer;
    /// when it has none (a change in flight), any locality that has one, in priority
    /// order.
    #[cold]
    #[inline(never)]
    pub(super) fn choose(&self, request: &Request<'_>) -> Option<InFlight> {
        if !self.is_routed() {
            return None;
        }
        let table = self.table.load_full();
        let picked = self.cursors.with_current(|cursor| {
            if cursor.generation != table.generation {
                cursor.generation = table.generation;
                cursor.levels = vec![0; table.levels.len()];
                cursor.entries = vec![0; table.entries.len()];
            }
            let level = smooth_pick(
                &mut cursor.levels,
                table.levels.iter().map(|l| l.load as u64),
            )?;
            let range = table.levels[level].entries.clone();
            let entry = smooth_pick(
                &mut cursor.entries[range.clone()],
                table.entries[range.clone()].iter().map(|e| e.weight),
            )?;
            Some(table.entries[range.start + entry].locality)
        });
        if let Some(locality) = picked {
            if let Some(Some(s)) = table.strategies.get(locality as usize) {
                if let Some(chosen) = s.choose(request) {
                    return Some(chosen);
                }
            }
        }
        table
            .entries
            .iter()
            .filter_map(|e| table.strategies.get(e.locality as usize).cloned().flatten())
            .find_map(|s| s.choose(request))
    }
}

/// `peers` grouped by their locality (in the order each locality first appears).
fn by_locality(peers: &[PeerRef]) -> Vec<(LocalityId, Vec<PeerRef>)> {
    let mut groups: Vec<(LocalityId, Vec<PeerRef>)> = Vec::new();
    for p in peers {
        let l = p.locality();
        match groups.iter_mut().find(|(g, _)| *g == l) {
            Some((_, v)) => v.push(p.clone()),
            None => groups.push((l, vec![p.clone()])),
        }
    }
    groups
}

/// Runs a strategy call; a custom strategy that panics loses that batch only (as the
/// list's own strategy does).
fn guarded(f: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
}

impl super::ListShared {
    /// Hands a commit's net batch to the strategies (under the list's lock): the list's
    /// own strategy while the list does not route, else each peer's locality strategy;
    /// switches routing on or off when the records' localities ask for it (moving the
    /// offered peers, O(n)), and publishes the route table when a count changed. Returns
    /// whether any strategy changed and whether routing switched.
    pub(super) fn hand_over(
        &self,
        state: &mut super::membership::State,
        added: &[PeerRef],
        removed: &[PeerRef],
    ) -> (bool, bool) {
        let routing = &self.routing;
        let was = routing.is_routed();
        let want = routing.can_route() && state.routing.wants_routing();
        let mut changed = !added.is_empty() || !removed.is_empty();
        if was {
            for (locality, group) in by_locality(removed) {
                let s = state.routing.strategy(routing, locality);
                guarded(|| s.update(&[], &group));
            }
            for (locality, group) in by_locality(added) {
                let s = state.routing.strategy(routing, locality);
                guarded(|| s.update(&group, &[]));
            }
        } else if changed {
            guarded(|| self.strategy.update(added, removed));
        }
        state.routing.reclaim();
        if want != was {
            let offered: Vec<PeerRef> = state
                .peers
                .values()
                .filter(|s| s.offered)
                .filter_map(|s| s.peer.clone())
                .collect();
            if want {
                guarded(|| self.strategy.update(&[], &offered));
                for (locality, group) in by_locality(&offered) {
                    let s = state.routing.strategy(routing, locality);
                    guarded(|| s.update(&group, &[]));
                }
            } else {
                for (locality, group) in by_locality(&offered) {
                    let s = state.routing.strategy(routing, locality);
                    guarded(|| s.update(&[], &group));
                }
                guarded(|| self.strategy.update(&offered, &[]));
                state.routing.drop_strategies();
            }
            routing.set_routed(want);
            changed = true;
        }
        if want && state.routing.dirty || want != was {
            routing.publish(&mut state.routing, self.ejection.as_ref());
        }
        (changed, want != was)
    }

    /// The strategies' `batch_end`, with no lock held: while the list routes, its own
    /// strategy first (a peer moving into a locality leaves the list's strategy before
    /// the locality's strategy takes it: they share its strategy slot), else the
    /// localities' first.
    pub(super) fn end_batches(&self) {
        let locals = self.routing.strategies();
        let routed = self.routing.is_routed();
        if !routed {
            for s in &locals {
                guarded(|| s.batch_end());
            }
        }
        guarded(|| self.strategy.batch_end());
        if routed {
            for s in &locals {
                guarded(|| s.batch_end());
            }
        }
    }

    /// A routed peer's pending count changed: its locality's strategy hears it.
    #[cold]
    pub(super) fn routed_pending_changed(&self, peer: &PeerRef) {
        if let Some(s) = self.routing.strategy_of(peer) {
            s.pending_changed(peer);
        }
    }

    /// A request to a routed peer ended: its locality's strategy hears it.
    #[cold]
    pub(super) fn routed_request_ended(&self, end: &crate::strategy::RequestEnd<'_>) {
        if let Some(s) = self.routing.strategy_of(end.peer) {
            s.request_ended(end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_load_spills_in_proportion() {
        // P0 fully healthy: everything stays.
        assert_eq!(
            priority_loads(&[100, 100], &[10, 10], &[false, false], true),
            [100, 0]
        );
        // P0 50 % healthy: 70 % health, 30 % spills to P1.
        assert_eq!(
            priority_loads(&[70, 100], &[10, 10], &[false, false], true),
            [70, 30]
        );
        // Envoy's doc example: 20 % / 20 % / 10 % health, normalised to 40 / 40 / 20.
        assert_eq!(
            priority_loads(&[20, 20, 10], &[10, 10, 10], &[true, true, true], false),
            [40, 40, 20]
        );
        // Rounding goes to the first level with health.
        assert_eq!(
            priority_loads(&[33, 33, 33], &[3, 3, 3], &[false; 3], false),
            [34, 33, 33]
        );
        // Every level panics: load by enabled peers.
        assert_eq!(
            priority_loads(&[14, 28], &[10, 30], &[true, true], true),
            [25, 75]
        );
        // Nothing healthy, no threshold: P0 gets everything.
        assert_eq!(
            priority_loads(&[0, 0], &[3, 3], &[false, false], false),
            [100, 0]
        );
    }

    #[test]
    fn smooth_pick_is_exact_over_a_cycle() {
        let mut current = vec![0i64; 3];
        let weights = [5u64, 1, 1];
        let picks: Vec<usize> = (0..7)
            .map(|_| smooth_pick(&mut current, weights.iter().copied()).unwrap())
            .collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
        let mut current = vec![0i64; 2];
        let mut counts = [0; 2];
        for _ in 0..100 {
            counts[smooth_pick(&mut current, [70u64, 30].into_iter()).unwrap()] += 1;
        }
        assert_eq!(counts, [70, 30]);
        assert_eq!(smooth_pick(&mut [0, 0], [0u64, 0].into_iter()), None);
    }
}
