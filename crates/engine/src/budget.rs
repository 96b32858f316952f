//! Memory accounting: a per-instance cap on linear memory and tables, and a budget shared by
//! every instance of a registry (the global memory cap).

use core::sync::atomic::{AtomicU64, Ordering};
use wasmi::errors::{MemoryError, TableError};
use wasmi_core::LimiterError;

/// The budget registries use unless given another ([`crate::Registry::with_budget`]).
pub static GLOBAL: MemoryBudget = MemoryBudget::new(crate::DEFAULT_MEMORY_CAP);

/// Linear memory all instances may hold together, in bytes.
#[derive(Debug)]
pub struct MemoryBudget {
    cap: AtomicU64,
    used: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `cap` bytes.
    pub const fn new(cap: u64) -> Self {
        MemoryBudget {
            cap: AtomicU64::new(cap),
            used: AtomicU64::new(0),
        }
    }

    /// The cap, in bytes.
    pub fn cap(&self) -> u64 {
        self.cap.load(Ordering::Relaxed)
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Changes the cap (existing memory is kept even above a lower cap).
    pub fn set_cap(&self, cap: u64) {
        self.cap.store(cap, Ordering::Relaxed);
    }

    /// Charges `bytes` if the total stays within the cap; returns whether it did.
    pub fn try_charge(&self, bytes: u64) -> bool {
        let cap = self.cap();
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= cap)
            })
            .is_ok()
    }

    /// Gives back `bytes` charged before.
    pub fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// The resource limiter of one instance.
pub(crate) struct Limiter {
    /// Largest linear memory, in bytes.
    pub(crate) memory: usize,
    /// Most table elements.
    pub(crate) table_elements: usize,
    budget: &'static MemoryBudget,
    /// Bytes charged to the budget by this instance.
    charged: u64,
    /// The last growth charged, refunded if the growth then fails.
    pending: u64,
}

impl Limiter {
    pub(crate) fn new(memory: usize, table_elements: usize, budget: &'static MemoryBudget) -> Self {
        Limiter {
            memory,
            table_elements,
            budget,
            charged: 0,
            pending: 0,
        }
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.budget.release(self.charged);
    }
}

impl wasmi::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        if desired > self.memory || maximum.is_some_and(|m| desired > m) {
            return Ok(false);
        }
        let delta = desired.saturating_sub(current) as u64;
        if !self.budget.try_charge(delta) {
            return Ok(false);
        }
        self.charged += delta;
        self.pending = delta;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: &MemoryError) -> Result<(), LimiterError> {
        self.budget.release(self.pending);
        self.charged -= self.pending;
        self.pending = 0;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        Ok(desired <= self.table_elements && maximum.is_none_or(|m| desired <= m))
    }

    fn table_grow_failed(&mut self, _error: &TableError) -> Result<(), LimiterError> {
        Ok(())
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}
