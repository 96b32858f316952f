//! Packet policy for the XDP/TC sample: a deny list of (network, protocol, port) rules.
//!
//! `main` loads the default rules into the instance at load (every CPU's instance gets
//! them): TCP port 23 anywhere, everything from 10.66.0.0/16, UDP to 192.0.2.1 port 53.
//! `verdict` is called by the eBPF program for each IPv4 packet.
#![no_std]

use core::cell::UnsafeCell;

#[derive(Clone, Copy)]
struct Rule {
    /// Source network and mask (host byte order); mask 0 matches any source.
    net: u32,
    mask: u32,
    /// Destination address to match, 0 for any.
    daddr: u32,
    /// IP protocol, 0 for any.
    proto: u32,
    /// Destination port, 0 for any.
    port: u32,
}

const MAX_RULES: usize = 32;

struct Rules {
    rules: [Rule; MAX_RULES],
    len: usize,
    dropped: u64,
}

/// Per-instance state. Wasm instances are single-threaded.
struct State(UnsafeCell<Rules>);

// SAFETY: a Wasm instance runs one call at a time; nothing is shared between threads.
unsafe impl Sync for State {}

static STATE: State = State(UnsafeCell::new(Rules {
    rules: [Rule {
        net: 0,
        mask: 0,
        daddr: 0,
        proto: 0,
        port: 0,
    }; MAX_RULES],
    len: 0,
    dropped: 0,
}));

fn state() -> &'static mut Rules {
    // SAFETY: single-threaded instance, and no other reference to the state is live across
    // exported calls.
    unsafe { &mut *STATE.0.get() }
}

fn add(rule: Rule) -> i32 {
    let s = state();
    if s.len == MAX_RULES {
        return -1;
    }
    s.rules[s.len] = rule;
    s.len += 1;
    s.len as i32
}

fn mask(prefix: u32) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    }
}

/// Adds a rule to this instance: source `net`/`prefix`, destination `daddr` (0: any),
/// protocol (0: any), destination port (0: any). Returns the number of rules, or -1 if full.
#[no_mangle]
pub extern "C" fn deny(net: i32, prefix: i32, daddr: i32, proto: i32, port: i32) -> i32 {
    let mask = mask(prefix as u32);
    add(Rule {
        net: net as u32 & mask,
        mask,
        daddr: daddr as u32,
        proto: proto as u32,
        port: port as u32,
    })
}

/// Loads the default rules.
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: i32) -> i32 {
    const TCP: i32 = 6;
    const UDP: i32 = 17;
    deny(0, 0, 0, TCP, 23);
    deny(0x0a42_0000, 16, 0, 0, 0);
    deny(0, 0, 0xc000_0201u32 as i32, UDP, 53);
    0
}

/// 1 to drop the packet, 0 to pass it. Addresses in host byte order.
#[no_mangle]
pub extern "C" fn verdict(saddr: i32, daddr: i32, proto: i32, _sport: i32, dport: i32) -> i32 {
    let s = state();
    let (saddr, daddr, proto, dport) = (saddr as u32, daddr as u32, proto as u32, dport as u32);
    let hit = s.rules[..s.len].iter().any(|r| {
        saddr & r.mask == r.net
            && (r.daddr == 0 || r.daddr == daddr)
            && (r.proto == 0 || r.proto == proto)
            && (r.port == 0 || r.port == dport)
    });
    if hit {
        s.dropped += 1;
    }
    hit as i32
}

/// Packets this instance dropped.
#[no_mangle]
pub extern "C" fn dropped() -> i64 {
    state().dropped as i64
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
