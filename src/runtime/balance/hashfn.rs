//! Hash functions and the `hash-type` directive. The functions reproduce HAProxy's outputs
//! (same algorithms), so a key lands on the same server under hapx and HAProxy.

pub use crate::model::balance::{HashFunc, HashMethod, HashType};

impl HashType {
    /// Hashes a key: the function, then avalanche if asked. O(key length).
    pub fn hash(&self, key: &[u8]) -> u32 {
        let h = match self.func {
            HashFunc::Sdbm => sdbm(key),
            HashFunc::Djb2 => djb2(key),
            HashFunc::Wt6 => wt6(key),
            HashFunc::Crc32 => crc32(key),
            HashFunc::None => leading_integer(key),
        };
        self.finish(h)
    }

    /// Applies the avalanche modifier to an already computed hash.
    pub fn finish(&self, h: u32) -> u32 {
        if self.avalanche {
            full_hash(h)
        } else {
            h
        }
    }
}

/// sdbm: h = c + h·65599, written with shifts as the original.
pub fn sdbm(key: &[u8]) -> u32 {
    key.iter().fold(0u32, |h, &c| u32::from(c).wrapping_add(h << 6).wrapping_add(h << 16).wrapping_sub(h))
}

/// djb2: h = h·33 + c from 5381.
pub fn djb2(key: &[u8]) -> u32 {
    key.iter().fold(5381u32, |h, &c| (h << 5).wrapping_add(h).wrapping_add(u32::from(c)))
}

/// wt6: two 32-bit lanes rotated by amounts that depend on the data.
pub fn wt6(key: &[u8]) -> u32 {
    let (mut h0, mut h1) = (0xa53c_965a_u32, 0x5ca6_953a_u32);
    let (mut step0, mut step1) = (6u32, 18u32);
    for &c in key {
        let c = u32::from(c);
        h0 = !(h0 ^ c);
        h1 = !(h1.wrapping_add(c));
        let t = h1.rotate_left(step0);
        h1 = h0.rotate_left(step1);
        h0 = t;
        let mix = ((h0 >> 16) ^ h1) & 0xffff;
        step0 = mix & 0x1f;
        step1 = mix >> 11;
    }
    h0 ^ h1
}

/// CRC-32 (IEEE 802.3, reflected, as in Ethernet and gzip), bit by bit.
pub fn crc32(key: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &c in key {
        crc ^= u32::from(c);
        for _ in 0..8 {
            crc = (crc >> 1) ^ if crc & 1 != 0 { 0xedb8_8320 } else { 0 };
        }
    }
    !crc
}

/// Bob Jenkins' 32-bit full-avalanche integer hash, then a multiply by a large prime so
/// results spread over the whole 32-bit ring.
pub fn full_hash(a: u32) -> u32 {
    let mut a = a;
    a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    a = (a ^ 0xc761_c23c) ^ (a >> 19);
    a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    a = (a ^ 0xb55a_4f09) ^ (a >> 16);
    a.wrapping_mul(3_221_225_473)
}

/// `hash-type ... none`: the key's leading decimal digits as an integer, truncated to 32 bits.
fn leading_integer(key: &[u8]) -> u32 {
    let mut v = 0u64;
    for &c in key.iter().take_while(|c| c.is_ascii_digit()) {
        v = v.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
    }
    v as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed value the model makes of these `hash-type` words.
    fn parse(w: &[&str]) -> Result<HashType, String> {
        super::super::tests::typed(&[], w).map(|b| b.hash_type)
    }

    #[test]
    fn known_vectors() {
        // CRC-32 check value of "123456789".
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(djb2(b""), 5381);
        assert_eq!(djb2(b"a"), 5381 * 33 + 97);
        assert_eq!(sdbm(b"a"), 97);
        assert_eq!(sdbm(b"ab"), 98u32.wrapping_add(97u32.wrapping_mul(65599)));
    }

    #[test]
    fn wt6_and_full_hash_mix_their_input() {
        assert_ne!(wt6(b"a"), wt6(b"b"));
        assert_ne!(full_hash(1), full_hash(2));
        assert_ne!(full_hash(0), 0);
    }

    #[test]
    fn consistent_without_function_uses_sdbm_with_avalanche() {
        let t = parse(&["consistent"]).unwrap();
        assert_eq!(t, HashType { method: HashMethod::Consistent, func: HashFunc::Sdbm, avalanche: true });
        let t = parse(&["consistent", "sdbm"]).unwrap();
        assert!(!t.avalanche);
    }

    #[test]
    fn map_based_is_the_default() {
        let t = parse(&[]).unwrap();
        assert_eq!(t, HashType { method: HashMethod::MapBased, func: HashFunc::Sdbm, avalanche: false });
        let t = parse(&["map-based"]).unwrap();
        assert!(!t.avalanche);
    }

    #[test]
    fn function_and_modifier_are_read() {
        let t = parse(&["map-based", "wt6", "avalanche"]).unwrap();
        assert_eq!(t, HashType { method: HashMethod::MapBased, func: HashFunc::Wt6, avalanche: true });
        assert!(parse(&["map-based", "wt6", "slow"]).is_err());
    }

    #[test]
    fn none_reads_the_key_as_an_integer() {
        let t = parse(&["map-based", "none"]).unwrap();
        assert_eq!(t.hash(b"1234"), 1234);
        assert_eq!(t.hash(b"10.0.0.1"), 10);
    }
}
