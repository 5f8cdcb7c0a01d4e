//! What `source` and `hash` share: a hash designates a server through the weighted map or the
//! consistent ring, per `hash-type`; without a key, round robin over the same structure.
use std::sync::Arc;

use super::chash::Ring;
use super::hashfn::{HashMethod, HashType};
use super::map::WeightMap;
use super::{candidates, LoadBound};
use crate::runtime::state::ServerState;

#[derive(Debug)]
pub struct HashTable {
    pub kind: HashType,
    /// `hash-balance-factor` (consistent hashing only).
    factor: Option<u32>,
    allbackups: bool,
    cands: Vec<usize>,
    map: WeightMap,
    ring: Ring,
}

impl HashTable {
    pub fn new(kind: HashType, factor: Option<u32>, allbackups: bool) -> HashTable {
        HashTable { kind, factor, allbackups, cands: Vec::new(), map: WeightMap::default(), ring: Ring::default() }
    }

    /// The server for `hash`, or the next one in round robin when the key was missing.
    /// O(servers) plus the map or ring lookup; rebuilds happen only when the tier changes.
    pub fn pick(&mut self, servers: &[Arc<ServerState>], hash: Option<u32>, avoid: Option<usize>) -> Option<usize> {
        candidates(servers, self.allbackups, &mut self.cands);
        match self.kind.method {
            HashMethod::MapBased => {
                self.map.refresh(servers, &self.cands);
                match hash {
                    Some(h) => self.map.by_hash(servers, h, avoid),
                    None => self.map.next_rr(servers, avoid),
                }
            }
            HashMethod::Consistent => {
                self.ring.refresh(servers, &self.cands);
                match hash {
                    Some(h) => {
                        let bound = self.factor.map(|f| LoadBound::new(servers, &self.cands, f));
                        self.ring.by_hash(servers, h, avoid, bound.as_ref())
                    }
                    None => self.ring.next_rr(servers, avoid),
                }
            }
        }
    }
}
