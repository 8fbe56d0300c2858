//! The pending choices of one list, as JS sees them: each is a *token*, one JS number
//! (an integer below 2^53, exact in a double):
//!
//! ```text
//! token = slot + generation * 2^20 + peerIndex * 2^37
//! ```
//!
//! * `slot` (20 bits) indexes the table of pending choices; slots are reused.
//! * `generation` (17 bits) counts the slot's reuses: finishing with a token whose
//!   generation is not the slot's current one (a stale or copied `Choice`) finds nothing,
//!   so it can never finish the request that now holds the slot.
//! * `peerIndex` (16 bits) names the chosen peer: peer ids get a small index the first
//!   time they are chosen, so JS can cache the id string by index and build a `Choice`
//!   without a string crossing the boundary. Ids are looked up by the address of their
//!   shared string (the table keeps a clone, so the address stays unique): a peer removed
//!   and added again gets a new index. Past [`MAX_INTERNED`] indexes the index is 0: "ask
//!   [`Table::peer_of`]".

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use peerlb::{Choice, PeerId};

const SLOT_BITS: u32 = 20;
const GEN_BITS: u32 = 17;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const GEN_MASK: u32 = (1 << GEN_BITS) - 1;
/// 2^37 as a double: a token's peer index is `floor(token / PEER_SPAN)`.
pub const PEER_SPAN: f64 = (1u64 << (SLOT_BITS + GEN_BITS)) as f64;
/// The most pending choices one list can hand to JS at once.
pub const MAX_PENDING: usize = 1 << SLOT_BITS;
/// Peer ids interned per list (indexes 1..=MAX_INTERNED; 0 = not interned).
pub const MAX_INTERNED: usize = (1 << 16) - 1;

/// A hash for addresses (the Fx multiply, as in rustc): one multiplication. The keys are
/// this process's own addresses, so no hash flooding concern.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_usize(b as usize);
        }
    }

    fn write_usize(&mut self, a: usize) {
        self.0 = (self.0.rotate_left(5) ^ a as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The key of a peer id: the address of its shared string.
fn address(peer: &PeerId) -> usize {
    peer.as_str().as_ptr() as usize
}

#[derive(Default)]
struct Slot {
    generation: u32,
    choice: Option<Choice>,
}

/// Pending choices by slot, plus the peer-id index.
#[derive(Default)]
pub struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Index by [`address`]; `names` keeps each id alive, so an address is never reused.
    ids: HashMap<usize, u32, BuildHasherDefault<AddressHasher>>,
    names: Vec<PeerId>,
}

/// The slot and generation of a token, if it is one.
fn decode(token: f64) -> Option<(usize, u32)> {
    if !(0.0..9_007_199_254_740_992.0).contains(&token) || token.fract() != 0.0 {
        return None;
    }
    let t = token as u64;
    Some(((t & SLOT_MASK) as usize, (t >> SLOT_BITS) as u32 & GEN_MASK))
}

impl Table {
    /// Stores a choice and returns its token; `Err(choice)` when [`MAX_PENDING`] choices
    /// are already pending (the caller drops it: cancelled).
    #[inline]
    pub fn insert(&mut self, choice: Choice) -> Result<f64, Choice> {
        let index = match self.ids.get(&address(choice.peer())) {
            Some(&i) => i,
            None => self.intern(choice.peer()),
        };
        let slot = match self.free.pop() {
            Some(s) => s,
            None if self.slots.len() < MAX_PENDING => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
            None => return Err(choice),
        };
        let entry = &mut self.slots[slot as usize];
        entry.choice = Some(choice);
        Ok(slot as f64
            + entry.generation as f64 * (1u64 << SLOT_BITS) as f64
            + index as f64 * PEER_SPAN)
    }

    #[cold]
    fn intern(&mut self, peer: &PeerId) -> u32 {
        if self.names.len() >= MAX_INTERNED {
            return 0;
        }
        self.names.push(peer.clone());
        let i = self.names.len() as u32; // 1-based; 0 = not interned
        self.ids.insert(address(peer), i);
        i
    }

    /// Takes the pending choice of `token` out, if the token is current; the slot's
    /// generation moves on, so the token (and any copy of it) is spent.
    #[inline]
    pub fn take(&mut self, token: f64) -> Option<Choice> {
        let (slot, generation) = decode(token)?;
        let entry = self.slots.get_mut(slot)?;
        if entry.generation != generation {
            return None;
        }
        let choice = entry.choice.take()?;
        entry.generation = (entry.generation + 1) & GEN_MASK;
        self.free.push(slot as u32);
        Some(choice)
    }

    /// The peer of the pending choice of `token`, if the token is current.
    pub fn peer_of(&self, token: f64) -> Option<&PeerId> {
        let (slot, generation) = decode(token)?;
        let entry = self.slots.get(slot)?;
        if entry.generation != generation {
            return None;
        }
        entry.choice.as_ref().map(Choice::peer)
    }

    /// The peer id with index `index` (1-based, from a token).
    pub fn peer_name(&self, index: u32) -> Option<&PeerId> {
        self.names.get((index as usize).checked_sub(1)?)
    }
}
