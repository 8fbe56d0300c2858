//! The `hash-ring` strategy's options: hash mode, vnodes, bounded load, and their spec
//! strings.

use std::fmt;

use crate::error::{Error, Result};
use crate::spec::{parse_float, parse_int, unknown_key, SpecOptions};

/// How the ring hashes peers and keys (see the [module docs](super)).
///
/// ```
/// use peerlb::strategy::hash_ring::HashMode;
/// assert_eq!(HashMode::default(), HashMode::Ketama);
/// assert_eq!(HashMode::Fast.as_str(), "fast");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashMode {
    /// MD5 ketama continuum, compatible with `uhashring` and npm `hashring`.
    #[default]
    Ketama,
    /// xxh3, 64-bit ring, not compatible with anything else.
    Fast,
}

impl HashMode {
    /// `"ketama"` or `"fast"`.
    ///
    /// ```
    /// assert_eq!(peerlb::strategy::hash_ring::HashMode::Ketama.as_str(), "ketama");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            HashMode::Ketama => "ketama",
            HashMode::Fast => "fast",
        }
    }

    /// The default vnodes per peer: 40 digests (160 points) for ketama, 160 points for fast.
    ///
    /// ```
    /// use peerlb::strategy::hash_ring::HashMode;
    /// assert_eq!(HashMode::Ketama.default_vnodes(), 40);
    /// assert_eq!(HashMode::Fast.default_vnodes(), 160);
    /// ```
    pub fn default_vnodes(self) -> u32 {
        match self {
            HashMode::Ketama => 40,
            HashMode::Fast => 160,
        }
    }

    /// The key's position on the ring (ketama hashes sit in the top 32 bits).
    ///
    /// ```
    /// use peerlb::strategy::hash_ring::HashMode;
    /// // MD5("foo") starts ac bd 18 db; uhashring's ketama hashi("foo") == 0xdb18bdac
    /// assert_eq!(HashMode::Ketama.key_hash(b"foo") >> 32, 0xdb18bdac);
    /// ```
    #[inline]
    pub fn key_hash(self, key: &[u8]) -> u64 {
        match self {
            HashMode::Ketama => {
                let d = md5::compute(key).0;
                (u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as u64) << 32
            }
            HashMode::Fast => xxhash_rust::xxh3::xxh3_64(key),
        }
    }

    /// Appends the ring points of vnodes `0..count` of the peer `id`.
    pub(super) fn points(self, id: &str, count: u32, owner: u32, out: &mut Vec<(u64, u32)>) {
        match self {
            HashMode::Ketama => {
                let mut name = String::with_capacity(id.len() + 11);
                for i in 0..count {
                    name.clear();
                    name.push_str(id);
                    name.push('-');
                    name.push_str(&i.to_string());
                    let d = md5::compute(name.as_bytes()).0;
                    for r in 0..4 {
                        let b = &d[4 * r..4 * r + 4];
                        let h = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        out.push(((h as u64) << 32, owner));
                    }
                }
            }
            HashMode::Fast => {
                for i in 0..count {
                    let h = xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), i as u64);
                    out.push((h, owner));
                }
            }
        }
    }
}

/// Largest accepted `vnodes`.
pub const MAX_VNODES: u32 = 10_000;
/// Largest accepted bounded-load factor.
pub const MAX_BOUNDED_LOAD: f64 = 100.0;

/// Options of the `hash-ring` strategy.
///
/// ```
/// use peerlb::strategy::hash_ring::{HashMode, HashRingOptions};
/// let o = HashRingOptions::fast().vnodes(200).unwrap().bounded_load(1.25).unwrap();
/// assert_eq!(o.mode(), HashMode::Fast);
/// assert_eq!(o.to_string(), "hash-ring:fast?vnodes=200&bounded=1.25");
/// assert_eq!(o.to_string().parse::<HashRingOptions>().unwrap(), o);
/// assert_eq!(HashRingOptions::default().to_string(), "hash-ring");
/// assert!(HashRingOptions::default().bounded_load(0.5).is_err());
/// ```
///
/// Spec keys (see [`SpecOptions`]): `hash-ring[:ketama|:fast]?vnodes=1..=10000&bounded=1..=100`.
/// One value has one spelling: `vnodes` equal to the mode's default is the default.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HashRingOptions {
    pub(super) mode: HashMode,
    /// `None`: the mode's default (a value equal to it is stored as `None`).
    vnodes: Option<u32>,
    pub(super) bounded_load: Option<f64>,
}

impl HashRingOptions {
    /// Ketama mode with its defaults (the same as `HashRingOptions::default()`).
    ///
    /// ```
    /// use peerlb::strategy::hash_ring::HashRingOptions;
    /// assert_eq!(HashRingOptions::ketama(), HashRingOptions::default());
    /// ```
    pub fn ketama() -> HashRingOptions {
        HashRingOptions::default()
    }

    /// Fast (xxh3) mode with its defaults.
    ///
    /// ```
    /// use peerlb::strategy::hash_ring::{HashMode, HashRingOptions};
    /// assert_eq!(HashRingOptions::fast().mode(), HashMode::Fast);
    /// ```
    pub fn fast() -> HashRingOptions {
        HashRingOptions {
            mode: HashMode::Fast,
            ..HashRingOptions::default()
        }
    }

    /// Vnodes per peer of average weight (ketama: digests of 4 points each, like
    /// `uhashring`'s `vnodes`; fast: points). `1..=10000`, else `invalid-argument`.
    ///
    /// ```
    /// use peerlb::strategy::hash_ring::HashRingOptions;
    /// assert_eq!(HashRingOptions::ketama().vnodes(160).unwrap().vnodes_per_peer(), 160);
    /// assert!(HashRingOptions::ketama().vnodes(0).is_err());
    /// ```
    pub fn vnodes(mut self, vnodes: u32) -> Result<HashRingOptions> {
        if !(1..=MAX_VNODES).contains(&vnodes) {
            return Err(Error::InvalidArgument(format!(
                "hash-ring vnodes must be 1..={MAX_VNODES}, got {vnodes}"
            )));
        }
        self.vnodes = (vnodes != self.mode.default_vnodes()).then_some(vnodes);
        Ok(self)
    }

    /// Turns on bounded loads with factor `c` (`1.0..=100.0`; 1.25 is usual), else
    /// `invalid-argument`.
    ///
    /// ```
    /// use peerlb::strategy::hash_ring::HashRingOptions;
    /// assert_eq!(HashRingOptions::ketama().bounded_load(1.25).unwrap().bounded(), Some(1.25));
    /// assert!(HashRingOptions::ketama().bounded_load(f64::NAN).is_err());
    /// ```
    pub fn bounded_load(mut self, c: f64) -> Result<HashRingOptions> {
        if !(1.0..=MAX_BOUNDED_LOAD).contains(&c) {
            return Err(Error::InvalidArgument(format!(
                "hash-ring bounded load factor must be 1..={MAX_BOUNDED_LOAD}, got {c}"
            )));
        }
        self.bounded_load = Some(c);
        Ok(self)
    }

    /// The hash mode.
    ///
    /// ```
    /// use peerlb::strategy::hash_ring::{HashMode, HashRingOptions};
    /// assert_eq!(HashRingOptions::default().mode(), HashMode::Ketama);
    /// ```
    pub fn mode(&self) -> HashMode {
        self.mode
    }

    /// Vnodes per peer of average weight (the mode's default unless set).
    ///
    /// ```
    /// use peerlb::strategy::hash_ring::HashRingOptions;
    /// assert_eq!(HashRingOptions::default().vnodes_per_peer(), 40);
    /// ```
    pub fn vnodes_per_peer(&self) -> u32 {
        self.vnodes.unwrap_or(self.mode.default_vnodes())
    }

    /// The bounded-load factor, if bounded loads are on.
    ///
    /// ```
    /// use peerlb::strategy::hash_ring::HashRingOptions;
    /// assert_eq!(HashRingOptions::default().bounded(), None);
    /// ```
    pub fn bounded(&self) -> Option<f64> {
        self.bounded_load
    }
}

impl SpecOptions for HashRingOptions {
    const KIND: &'static str = "strategy";
    const NAME: &'static str = "hash-ring";

    /// `ketama` (the default) or `fast`.
    fn for_mode(mode: Option<&str>) -> Result<Self> {
        match mode {
            None | Some("ketama") => Ok(HashRingOptions::ketama()),
            Some("fast") => Ok(HashRingOptions::fast()),
            Some(m) => Err(Error::InvalidArgument(format!(
                "hash-ring has no mode {m:?}; expected ketama or fast"
            ))),
        }
    }

    /// `vnodes` (1..=10000) or `bounded` (1..=100).
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        *self = match key {
            "vnodes" => self.vnodes(parse_int(key, value, 1..=MAX_VNODES)?)?,
            "bounded" => self.bounded_load(parse_float(key, value, 1.0..=MAX_BOUNDED_LOAD)?)?,
            _ => return Err(unknown_key(Self::NAME, key, &["vnodes", "bounded"])),
        };
        Ok(())
    }

    fn mode(&self) -> Option<&'static str> {
        (self.mode != HashMode::Ketama).then(|| self.mode.as_str())
    }

    fn changed(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(v) = self.vnodes {
            pairs.push(("vnodes", v.to_string()));
        }
        if let Some(c) = self.bounded_load {
            pairs.push(("bounded", c.to_string()));
        }
        pairs
    }
}

impl fmt::Display for HashRingOptions {
    /// The canonical spec, e.g. `hash-ring:fast?bounded=1.25` (see [`SpecOptions::to_spec`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_spec())
    }
}

impl std::str::FromStr for HashRingOptions {
    type Err = Error;
    /// Parses `hash-ring[:mode][?key=value&...]` (see [`SpecOptions::from_spec`]).
    fn from_str(s: &str) -> Result<HashRingOptions> {
        HashRingOptions::from_spec(s)
    }
}
