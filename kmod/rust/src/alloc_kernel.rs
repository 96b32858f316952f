//! The global allocator: `kvmalloc`/`kvfree` through the shim, with live-allocation counters,
//! per-request tracking ([`crate::guard`]) and allocation-failure injection.
//!
//! Every block carries a [`Header`] just before the memory handed out. While a request runs
//! under a guard, its new blocks are linked into the guard's list through that header, so a
//! request abandoned half-way (an allocation failed where the code cannot handle it) can give
//! back everything it still held. Blocks outside a guard, or of a guard that finished, are not
//! linked.

use crate::{ffi, guard};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
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

/// The links of a block in its guard's list, stored just before the block's memory.
///
/// # Invariants
///
/// Both links are null, or both point to live headers of the same list (a guard's list head
/// is a `Header` too); only the task running the guard touches a linked header.
#[repr(C)]
pub struct Header {
    prev: *mut Header,
    next: *mut Header,
}

impl Header {
    /// An unlinked header.
    pub const fn new() -> Self {
        Header {
            prev: ptr::null_mut(),
            next: ptr::null_mut(),
        }
    }

    /// Makes `head` an empty circular list.
    ///
    /// # Safety
    ///
    /// `head` is valid and stays at this address while the list is in use.
    pub unsafe fn init_list(head: *mut Header) {
        // SAFETY: guaranteed by the caller.
        unsafe {
            (*head).prev = head;
            (*head).next = head;
        }
    }

    /// Links `h` after `head`.
    ///
    /// # Safety
    ///
    /// `head` is an initialised list head and `h` a valid, unlinked header; both belong to
    /// the current task's guard.
    pub unsafe fn push(head: *mut Header, h: *mut Header) {
        // SAFETY: guaranteed by the caller; the list is circular so `next` is valid.
        unsafe {
            let next = (*head).next;
            (*h).prev = head;
            (*h).next = next;
            (*next).prev = h;
            (*head).next = h;
        }
    }

    /// Unlinks `h` if it is linked.
    ///
    /// # Safety
    ///
    /// `h` is a valid header whose list, if any, belongs to the current task.
    unsafe fn unlink(h: *mut Header) {
        // SAFETY: guaranteed by the caller; linked neighbours are valid (invariant).
        unsafe {
            if (*h).next.is_null() {
                return;
            }
            (*(*h).prev).next = (*h).next;
            (*(*h).next).prev = (*h).prev;
            (*h).prev = ptr::null_mut();
            (*h).next = ptr::null_mut();
        }
    }

    /// The first header of the list at `head`, or `None` if it is empty.
    ///
    /// # Safety
    ///
    /// `head` is an initialised list head of the current task.
    pub unsafe fn first(head: *mut Header) -> Option<*mut Header> {
        // SAFETY: guaranteed by the caller.
        let next = unsafe { (*head).next };
        (next != head).then_some(next)
    }

    /// Unlinks every header of the list at `head`, leaving the blocks allocated.
    ///
    /// # Safety
    ///
    /// As [`Header::first`].
    pub unsafe fn detach_all(head: *mut Header) -> usize {
        let mut n = 0;
        // SAFETY: guaranteed by the caller.
        while let Some(h) = unsafe { Header::first(head) } {
            // SAFETY: `h` is linked in the current task's list.
            unsafe { Header::unlink(h) };
            n += 1;
        }
        n
    }

    /// Frees the block of the linked header `h` (and unlinks it).
    ///
    /// # Safety
    ///
    /// `h` is linked in the current task's guard list and nothing uses its block any more.
    pub unsafe fn free_block(h: *mut Header) {
        // SAFETY: `h` heads a block from `alloc`; its layout was recorded there.
        unsafe {
            let layout = h
                .cast::<u8>()
                .sub(size_of::<Layout>())
                .cast::<Layout>()
                .read_unaligned();
            KernelAllocator.dealloc(h.cast::<u8>().add(size_of::<Header>()), layout);
        }
    }
}

/// Bytes before the block: the layout (for [`Header::free_block`]) and the header, rounded up
/// to the block's alignment.
fn prefix(layout: Layout) -> usize {
    (size_of::<Layout>() + size_of::<Header>()).next_multiple_of(layout.align().max(16))
}

/// The size actually requested from the kernel, chosen so alignment holds.
fn kernel_size(layout: Layout) -> Option<usize> {
    let size = layout.size().checked_add(prefix(layout))?;
    let size = if layout.align() > 8 {
        size.checked_next_power_of_two()?
    } else {
        size
    };
    (layout.align() <= MAX_ALIGN && size <= MAX_SIZE).then_some(size)
}

/// `Box::new` that returns `None` instead of panicking when out of memory.
pub fn try_box<T>(value: T) -> Option<Box<T>> {
    let mut one = Vec::new();
    one.try_reserve_exact(1).ok()?;
    one.push(value);
    // Length and capacity are both 1: no reallocation.
    let slice = Box::into_raw(one.into_boxed_slice());
    // SAFETY: a one-element slice has the layout of its element, so the allocation is that of
    // a `Box<T>`, and the element is initialised.
    Some(unsafe { Box::from_raw(slice.cast::<T>()) })
}

struct KernelAllocator;

// SAFETY: `alloc` returns null or a fresh block of at least `layout.size()` bytes aligned to
// `layout.align()` (`kernel_size` and `prefix` keep the kernel's alignment for it); `dealloc`
// frees exactly such blocks.
unsafe impl GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(size) = kernel_size(layout) else {
            return ptr::null_mut();
        };
        if ffi::inject_alloc_failure() {
            return ptr::null_mut();
        }
        let base = ffi::alloc(size);
        if base.is_null() {
            return base;
        }
        LIVE_COUNT.fetch_add(1, Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as u64, Relaxed);
        let pre = prefix(layout);
        // SAFETY: `base` has `size >= pre + layout.size()` bytes; the layout and the header
        // fit in the `pre` bytes before the block, header last (8-aligned: `pre` is a multiple
        // of 16 and the kernel's block is at least 8-aligned).
        unsafe {
            let block = base.add(pre);
            let header = block.sub(size_of::<Header>()).cast::<Header>();
            block
                .sub(size_of::<Header>() + size_of::<Layout>())
                .cast::<Layout>()
                .write_unaligned(layout);
            header.write(Header::new());
            guard::track(header);
            block
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        LIVE_COUNT.fetch_sub(1, Relaxed);
        LIVE_BYTES.fetch_sub(layout.size() as u64, Relaxed);
        // SAFETY: `block` came from `alloc` with this layout (GlobalAlloc contract), so its
        // header and the kernel's block start sit `prefix` bytes before it; a linked header
        // belongs to the current task's guard (blocks of a running request never reach
        // another task).
        unsafe {
            Header::unlink(block.sub(size_of::<Header>()).cast::<Header>());
            ffi::free(block.sub(prefix(layout)));
        }
    }
}

#[global_allocator]
static ALLOCATOR: KernelAllocator = KernelAllocator;
