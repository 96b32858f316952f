//! A try-lock: exclusive access to a value without ever waiting.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// A value that one caller at a time may use; others are turned away instead of waiting.
///
/// Taking it never sleeps, spins or allocates, so it is usable from any context.
///
/// # Invariants
///
/// `busy` is `true` exactly while one [`TryGuard`] exists; only that guard touches `value`.
pub struct TryLock<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by `busy` (see the invariant), so sharing the lock
// between threads only ever hands the value to one thread at a time, which needs `T: Send`.
unsafe impl<T: Send> Sync for TryLock<T> {}

impl<T> TryLock<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        TryLock {
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<TryGuard<'_, T>> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| TryGuard { lock: self })
    }
}

/// Exclusive access to a [`TryLock`]'s value; released on drop.
pub struct TryGuard<'a, T> {
    lock: &'a TryLock<T>,
}

impl<T> Deref for TryGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists, so by the invariant no one else accesses the value.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for TryGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow through the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for TryGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.busy.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::TryLock;

    #[test]
    fn second_taker_is_refused_until_release() {
        let lock = TryLock::new(5);
        let mut g = lock.try_lock().unwrap();
        *g += 1;
        assert!(lock.try_lock().is_none());
        drop(g);
        assert_eq!(*lock.try_lock().unwrap(), 6);
    }
}
