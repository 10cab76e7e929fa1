//! Random streams: one independent, reproducible stream per practice and purpose.
//!
//! Owns how the run's seed becomes random generators. Every practice draws from its own
//! generator, seeded from (seed, practice code, purpose), so its patients do not depend on which
//! other practices are generated, in which order, or on how many threads run: the same seed and
//! arguments give byte-identical files. The hash is FNV-1a (64-bit) and the mixer SplitMix64's
//! finaliser, written out here because `std`'s `DefaultHasher` is not stable across Rust
//! releases. The generator is xoshiro256++ (`rand::rngs::Xoshiro256PlusPlus`), whose output for
//! a seed is fixed by its published algorithm.

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// The generator every stream uses.
pub type Stream = Xoshiro256PlusPlus;

/// What a stream is used for; each purpose of a practice gets an independent stream, so adding
/// draws to one purpose (e.g. a new outcome) leaves the others unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The practice's catchment (its anchor LSOA).
    Catchment = 1,
    /// The practice's patients: residence, age, sex, ethnicity, flags, conditions, outcomes.
    Patients = 2,
}

/// FNV-1a, 64-bit: a fixed, portable hash of a text key.
pub fn fnv1a(text: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    text.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// SplitMix64's finaliser: a bijection of `u64` that scatters nearby inputs.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stream of one practice for one purpose.
pub fn stream(seed: u64, practice_code: &str, purpose: Purpose) -> Stream {
    let key = mix(seed ^ mix(fnv1a(practice_code) ^ mix(purpose as u64)));
    Stream::seed_from_u64(key)
}

/// A pseudonymised patient identifier: 16 hexadecimal digits, unique within a run because
/// `mix` is a bijection of the patient's sequence number (keyed by the seed), and carrying
/// nothing about the practice or the order of generation.
pub fn patient_id(seed: u64, sequence: u64) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let value = mix(sequence ^ mix(seed.wrapping_add(0x5eed)));
    let mut out = [b'0'; 16];
    for (i, digit) in out.iter_mut().enumerate() {
        let nibble = (value >> (60 - 4 * i)) & 0xf;
        // nibble < 16 by the mask.
        *digit = HEX[nibble as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn fnv1a_known_values() {
        // Published FNV-1a 64-bit test vectors.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let first: u64 = stream(7, "A81001", Purpose::Patients).random();
        let again: u64 = stream(7, "A81001", Purpose::Patients).random();
        let other_practice: u64 = stream(7, "A81002", Purpose::Patients).random();
        let other_purpose: u64 = stream(7, "A81001", Purpose::Catchment).random();
        let other_seed: u64 = stream(8, "A81001", Purpose::Patients).random();
        assert_eq!(first, again);
        assert_ne!(first, other_practice);
        assert_ne!(first, other_purpose);
        assert_ne!(first, other_seed);
    }

    #[test]
    fn patient_ids_are_unique_hex() {
        let mut ids: Vec<[u8; 16]> = (0..100_000).map(|i| patient_id(3, i)).collect();
        assert!(ids.iter().all(|id| id.iter().all(u8::is_ascii_hexdigit)));
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 100_000);
        assert_ne!(patient_id(3, 0), patient_id(4, 0));
    }
}
