//! The global allocator: `kvmalloc`/`kvfree` through the shim, with live-allocation counters.

use crate::ffi;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Largest alignment served: `kvmalloc` memory is aligned to its size rounded up to a power
/// of two, up to a page.
const MAX_ALIGN: usize = 4096;
/// Largest single allocation: `kvmalloc` warns above `INT_MAX`.
const MAX_SIZE: usize = i32::MAX as usize;

static LIVE_COUNT: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);

/// Allocations still live, and their bytes.
pub fn live() -> (u64, u64) {
    (LIVE_COUNT.load(Relaxed), LIVE_BYTES.load(Relaxed))
}

/// The size actually requested from the kernel, chosen so alignment holds.
fn kernel_size(layout: Layout) -> Option<usize> {
    let size = layout.size().max(1);
    let size = if layout.align() > 8 {
        size.max(layout.align()).checked_next_power_of_two()?
    } else {
        size
    };
    (layout.align() <= MAX_ALIGN && size <= MAX_SIZE).then_some(size)
}

struct KernelAllocator;

// SAFETY: `alloc` returns null or a fresh block of at least `layout.size()` bytes aligned to
// `layout.align()` (see `kernel_size`); `dealloc` frees exactly such blocks.
unsafe impl GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(size) = kernel_size(layout) else {
            return core::ptr::null_mut();
        };
        let ptr = ffi::alloc(size);
        if !ptr.is_null() {
            LIVE_COUNT.fetch_add(1, Relaxed);
            LIVE_BYTES.fetch_add(layout.size() as u64, Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_COUNT.fetch_sub(1, Relaxed);
        LIVE_BYTES.fetch_sub(layout.size() as u64, Relaxed);
        // SAFETY: `ptr` was returned by `alloc` above (GlobalAlloc contract).
        unsafe { ffi::free(ptr) }
    }
}

#[global_allocator]
static ALLOCATOR: KernelAllocator = KernelAllocator;
