//! `wasm-frame-fuzz SECONDS GUEST.wasm`: writes request frames to `/dev/wasm` for SECONDS
//! seconds, each a valid request (version, list, stats, load, call, unload with random names,
//! arguments and limits) that is then mutated or not (bytes flipped, inserted, removed, the
//! frame cut or its length field changed), and reads every answer. Prints what the kernel
//! answered. Modules it managed to load are named `fz-*`; the caller unloads them.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use wasm_proto::{encode, Limits, Request, Value};

/// xorshift64*: deterministic from the seed, so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const NAMES: [&str; 6] = [
    "fz-a",
    "fz-b",
    "fz-c",
    "fz-",
    "",
    "fz-a-very-long-name-with-dots.and_underscores-0123456789-abcdefghijklmn",
];
const FUNCTIONS: [&str; 6] = ["add", "main", "spin", "boom", "nope", ""];

fn value(rng: &mut Rng) -> Value {
    match rng.below(4) {
        0 => Value::I32(rng.next() as i32),
        1 => Value::I64(rng.next() as i64),
        2 => Value::F32(rng.next() as u32),
        _ => Value::F64(rng.next()),
    }
}

/// A valid request with random contents.
fn request(rng: &mut Rng, guest: &[u8]) -> Vec<u8> {
    let name = NAMES[rng.below(NAMES.len())];
    let limits = Limits {
        fuel: [0, 1, 1000, 10_000_000][rng.below(4)],
        bpf_fuel: [0, 1, 1000][rng.below(3)],
        memory: [0, 1, 65536, 1 << 30, u64::MAX][rng.below(5)],
        instances: [0, 1, 2, 1000][rng.below(4)],
    };
    let args: Vec<Value> = (0..rng.below(4)).map(|_| value(rng)).collect();
    let req = match rng.below(7) {
        0 => Request::Version,
        1 => Request::List,
        2 => Request::Stats,
        3 => Request::Unload { name },
        4 | 5 => Request::Call {
            module: name,
            function: FUNCTIONS[rng.below(FUNCTIONS.len())],
            args,
        },
        _ => Request::Load {
            name,
            // One load in four gets a truncated module.
            wasm: &guest[..match rng.below(4) {
                0 => rng.below(guest.len() + 1),
                _ => guest.len(),
            }],
            entrypoint: [None, Some(""), Some("main"), Some("add")][rng.below(4)],
            limits,
            args: vec!["x"; rng.below(3)],
            env: vec!["A=1"; rng.below(3)],
            // Now and then a replace (of loaded and missing modules), capabilities, a bad
            // signature or descriptors that are no maps: most loads still reach the engine.
            replace: rng.below(4) == 0,
            allow: match rng.below(8) {
                0 => Some(vec!["debug"]),
                1 => Some(vec!["wasi:clocks", "nope"]),
                _ => None,
            },
            signature: match rng.below(16) {
                0 => Some(&[7u8; 64][..]),
                1 => Some(&[1u8; 3][..]),
                _ => None,
            },
            maps: match rng.below(16) {
                0 => vec![0],
                1 => vec![1000],
                _ => vec![],
            },
        },
    };
    encode(&req).expect("requests encode")
}

/// Mutates a frame in place, or leaves it valid.
fn mutate(rng: &mut Rng, frame: &mut Vec<u8>) {
    for _ in 0..rng.below(4) {
        let at = rng.below(frame.len());
        match rng.below(6) {
            0 => frame[at] ^= 1 << rng.below(8),
            1 => frame[at] = rng.next() as u8,
            2 => frame.insert(at, rng.next() as u8),
            3 if frame.len() > 1 => {
                frame.remove(at);
            }
            4 => frame.truncate(at),
            _ if frame.len() >= 12 => {
                let len = (rng.next() as u32).to_le_bytes();
                frame[8..12].copy_from_slice(&len);
            }
            _ => {}
        }
        if frame.is_empty() {
            frame.push(0);
        }
    }
}

fn main() {
    let mut argv = std::env::args().skip(1);
    let seconds: u64 = argv.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let guest = argv
        .next()
        .map(std::fs::read)
        .transpose()
        .unwrap_or_else(|e| {
            eprintln!("wasm-frame-fuzz: cannot read the guest: {e}");
            std::process::exit(2)
        });
    let guest = guest.unwrap_or_else(|| b"\0asm\x01\0\0\0".to_vec());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut frames, mut accepted, mut refused) = (0u64, 0u64, 0u64);
    let mut errnos = std::collections::BTreeMap::<i32, u64>::new();
    while Instant::now() < deadline {
        let mut dev = match OpenOptions::new().read(true).write(true).open("/dev/wasm") {
            Ok(f) => f,
            Err(e) => {
                eprintln!("wasm-frame-fuzz: cannot open /dev/wasm: {e}");
                std::process::exit(1)
            }
        };
        for _ in 0..64 {
            let mut frame = request(&mut rng, &guest);
            if rng.below(4) != 0 {
                mutate(&mut rng, &mut frame);
            }
            frames += 1;
            match dev.write(&frame) {
                Ok(_) => accepted += 1,
                Err(e) => {
                    refused += 1;
                    *errnos.entry(e.raw_os_error().unwrap_or(0)).or_default() += 1;
                }
            }
            let mut answer = [0u8; 4096];
            while matches!(dev.read(&mut answer), Ok(n) if n > 0) {}
        }
    }
    let errnos: Vec<String> = errnos
        .iter()
        .map(|(e, n)| format!("{n}x errno {e}"))
        .collect();
    println!(
        "frames {frames}, accepted {accepted}, refused {refused} ({})",
        errnos.join(", ")
    );
}
