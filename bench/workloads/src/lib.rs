//! The benchmark workloads, written once and compiled twice: to WebAssembly (the
//! `samples/bench` guest, run by every engine) and natively (the baseline). Each returns a
//! value that the benchmark checks against the native result, so an engine that computes
//! something else fails instead of looking fast.
#![no_std]

mod json;
mod nbody;
mod sha256;

pub use json::{json_generate, json_sum};
pub use nbody::nbody;
pub use sha256::sha256;

/// Recursive Fibonacci: calls and returns.
pub fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// A tight integer loop: `n` rounds of xorshift64 folded into a sum (no closed form, so the
/// compiler cannot remove it).
pub fn int_loop(n: u32) -> u64 {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut sum: u64 = 0;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum = sum.wrapping_add(x);
    }
    sum
}

/// Fills `buf` with a deterministic byte pattern (the input of [`sha256`]).
pub fn fill(buf: &mut [u8]) {
    let mut x: u32 = 0x1234_5678;
    for b in buf {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *b = (x >> 24) as u8;
    }
}

/// The first eight bytes of a digest as a little-endian number.
pub fn digest_prefix(digest: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn fib_and_loop() {
        assert_eq!(fib(20), 6765);
        assert_ne!(int_loop(1000), int_loop(1001));
    }

    #[test]
    fn sha256_known_answers() {
        let d = sha256(b"abc");
        assert_eq!(
            d[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts with ba7816bf"
        );
        let d = sha256(b"");
        assert_eq!(d[..4], [0xe3, 0xb0, 0xc4, 0x42]);
        let d = sha256(&[b'a'; 1000]);
        assert_eq!(d[..4], [0x41, 0xed, 0xec, 0xe4]);
    }

    #[test]
    fn nbody_energy() {
        // The benchmarks game's reference output: -0.169075164 initially, -0.169087605 after 1000 steps.
        let e0 = nbody(0);
        assert!((e0 + 0.169_075_164).abs() < 1e-8, "{e0}");
        let e = nbody(1000);
        assert!((e + 0.169_087_605).abs() < 1e-8, "{e}");
    }

    #[test]
    fn json_round_trip() {
        let mut buf = [0u8; 1 << 16];
        let len = json_generate(&mut buf, 100);
        let text = &buf[..len];
        assert!(text.starts_with(b"["));
        let sum = json_sum(text).expect("valid JSON");
        assert_eq!(json_sum(text), Some(sum));
        assert_eq!(
            json_sum(b"[1, 2, {\"a\": [3.5e1, true, null]}]"),
            Some(1 + 2 + 1 + 35 + 1)
        );
        assert_eq!(json_sum(b"[1, 2"), None);
        assert_eq!(json_sum(b"{\"a\" 1}"), None);
    }
}
