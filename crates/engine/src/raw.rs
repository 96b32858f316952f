//! Calls from any context (eBPF programs): no waiting, no rescheduling, no strings.
//!
//! A raw call runs on exactly the given CPU's instance, takes it with a try-lock (a nested or
//! concurrent call on the same instance fails with [`RawError::Busy`]), runs in one piece with
//! the module's eBPF fuel budget, and reports failures as a small `Copy` error. Steady-state
//! calls do not allocate: each instance's engine caches its execution stack from the warm-up
//! call at load. Allocation remains possible when a call goes deeper than any call before it
//! and when wasmi builds a trap error; the kernel's allocator serves those without sleeping.

use crate::counters::{CallRecord, Caller, Ending};
use crate::module::{Instance, Slot};
use crate::{Host, LoadedModule, TryGuard};
use wasm_proto::{errno, FuncSig, ValType, MAX_VALUES};
use wasmi::{AsContext, Func, TypedFunc, Val};

/// One raw value of [`LoadedModule::call_raw`]: a native-endian 64-bit lane, as eBPF programs
/// pass `__u64` arrays (possibly unaligned, hence bytes).
pub type Lane = [u8; 8];

/// A typed handle of an export with one of the signatures eBPF programs use most, made at
/// load: calling through it skips the dynamic signature check and the conversions to and
/// from [`Val`] of a generic call.
#[derive(Clone, Copy)]
pub(crate) enum Fast {
    /// `() -> i32`
    ToI32(TypedFunc<(), i32>),
    /// `() -> i64`
    ToI64(TypedFunc<(), i64>),
    /// `(i32) -> i32`
    I32ToI32(TypedFunc<i32, i32>),
    /// `(i64) -> i64`
    I64ToI64(TypedFunc<i64, i64>),
    /// `(i32, i32) -> i32`
    I32I32ToI32(TypedFunc<(i32, i32), i32>),
    /// `(i64, i64) -> i64`
    I64I64ToI64(TypedFunc<(i64, i64), i64>),
}

impl Fast {
    /// The typed handle of `func`, whose signature is `sig`, if it is one of the above.
    pub(crate) fn new(store: impl AsContext, func: Func, sig: &FuncSig) -> Option<Fast> {
        use ValType::{I32, I64};
        Some(match (&sig.params[..], &sig.results[..]) {
            ([], [I32]) => Fast::ToI32(func.typed(store).ok()?),
            ([], [I64]) => Fast::ToI64(func.typed(store).ok()?),
            ([I32], [I32]) => Fast::I32ToI32(func.typed(store).ok()?),
            ([I64], [I64]) => Fast::I64ToI64(func.typed(store).ok()?),
            ([I32, I32], [I32]) => Fast::I32I32ToI32(func.typed(store).ok()?),
            ([I64, I64], [I64]) => Fast::I64I64ToI64(func.typed(store).ok()?),
            _ => return None,
        })
    }

    /// Calls it with raw arguments (`i32` from the low half); the result as `call_raw` gives it.
    fn call(self, inst: &mut Instance, args: &[Lane]) -> Result<u64, wasmi::Error> {
        let store = &mut inst.store;
        let a = |i: usize| args.get(i).map_or(0, |l| u64::from_ne_bytes(*l));
        Ok(match self {
            Fast::ToI32(f) => f.call(store, ())? as i64 as u64,
            Fast::ToI64(f) => f.call(store, ())? as u64,
            Fast::I32ToI32(f) => f.call(store, a(0) as u32 as i32)? as i64 as u64,
            Fast::I64ToI64(f) => f.call(store, a(0) as i64)? as u64,
            Fast::I32I32ToI32(f) => {
                f.call(store, (a(0) as u32 as i32, a(1) as u32 as i32))? as i64 as u64
            }
            Fast::I64I64ToI64(f) => f.call(store, (a(0) as i64, a(1) as i64))? as u64,
        })
    }
}

/// Why a raw call failed. Every variant maps to a distinct errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawError {
    /// No export with that index, or it is not a function.
    NoFunction,
    /// Argument count or types do not fit the function, or its results do not fit the buffer.
    Arguments,
    /// The instance is running another call (a nested call on the same CPU).
    Busy,
    /// The guest trapped.
    Trap,
    /// The call used up its eBPF fuel budget.
    OutOfFuel,
    /// The buffer is larger than the guest's buffer, or the guest has none.
    TooBig,
    /// Memory ran out (a deeper call than any before needed more stack).
    NoMemory,
}

impl RawError {
    /// The positive errno of this error (the kfuncs return it negated).
    pub fn errno(self) -> i32 {
        match self {
            RawError::NoFunction => errno::ENOENT,
            RawError::Arguments => errno::EINVAL,
            RawError::Busy => errno::EBUSY,
            RawError::Trap => errno::EFAULT,
            RawError::OutOfFuel => errno::ETIME,
            RawError::TooBig => errno::E2BIG,
            RawError::NoMemory => errno::ENOMEM,
        }
    }
}

fn raw_to_val(ty: ValType, raw: u64) -> Option<Val> {
    Some(match ty {
        ValType::I32 => Val::I32(raw as u32 as i32),
        ValType::I64 => Val::I64(raw as i64),
        ValType::F32 => Val::F32(wasmi::F32::from_bits(raw as u32)),
        ValType::F64 => Val::F64(wasmi::F64::from_bits(raw)),
        ValType::Other => return None,
    })
}

/// `i32` results are sign-extended, floats are returned as their bits.
fn val_to_raw(v: &Val) -> u64 {
    match v {
        Val::I32(x) => *x as i64 as u64,
        Val::I64(x) => *x as u64,
        Val::F32(x) => u64::from(x.to_bits()),
        Val::F64(x) => x.to_bits(),
        _ => 0,
    }
}

/// The raw error of a failed guest call.
fn call_error(e: &wasmi::Error) -> RawError {
    match e.as_trap_code() {
        Some(wasmi::TrapCode::OutOfFuel) => RawError::OutOfFuel,
        Some(wasmi::TrapCode::OutOfSystemMemory) => RawError::NoMemory,
        _ => RawError::Trap,
    }
}

/// The record of an eBPF call that used `fuel` and took `ns`, failed with `error` or not.
pub fn raw_record(error: Option<&RawError>, fuel: u64, ns: u64) -> CallRecord {
    CallRecord {
        caller: Caller::Bpf,
        ending: match error {
            None => Ending::Returned,
            Some(RawError::OutOfFuel) => Ending::OutOfFuel,
            Some(_) => Ending::Trapped,
        },
        fuel,
        ns,
    }
}

impl Slot {
    /// Runs `fast` once with `fuel`, counting the call like [`Self::run_raw`].
    fn run_fast<H: Host>(
        &self,
        inst: &mut Instance,
        fast: Fast,
        args: &[Lane],
        fuel: u64,
    ) -> Result<u64, RawError> {
        inst.store.set_fuel(fuel).map_err(|_| RawError::Trap)?;
        let started = H::timer_ns();
        let result = fast.call(inst, args).map_err(|e| call_error(&e));
        self.count::<H>(inst, fuel, started, result.as_ref().err());
        result
    }

    /// Runs `func` once with `fuel`, counting the call.
    fn run_raw<H: Host>(
        &self,
        inst: &mut Instance,
        func: Func,
        args: &[Val],
        out: &mut [Val],
        fuel: u64,
    ) -> Result<(), RawError> {
        inst.store.set_fuel(fuel).map_err(|_| RawError::Trap)?;
        let started = H::timer_ns();
        let result = func
            .call(&mut inst.store, args, out)
            .map_err(|e| call_error(&e));
        self.count::<H>(inst, fuel, started, result.as_ref().err());
        result
    }

    /// Records an eBPF call that was given `fuel` and started at `started`.
    fn count<H: Host>(&self, inst: &Instance, fuel: u64, started: u64, error: Option<&RawError>) {
        let ns = H::timer_ns().saturating_sub(started);
        let left = inst.store.get_fuel().unwrap_or(0);
        self.counters
            .record(&raw_record(error, fuel.saturating_sub(left), ns));
    }
}

/// A taken instance, its slot, and the function to call on it.
type Taken<'a> = (&'a Slot, TryGuard<'a, Instance>, Func);

impl<H: Host> LoadedModule<H> {
    /// Takes the instance of `cpu` (never waiting) and export `index`'s function on it.
    fn take(&self, cpu: usize, index: usize) -> Result<Taken<'_>, RawError> {
        let slot = self.slot(cpu).ok_or(RawError::Busy)?;
        let inst = slot.state.try_lock().ok_or(RawError::Busy)?;
        let func = inst
            .funcs
            .get(index)
            .copied()
            .flatten()
            .ok_or(RawError::NoFunction)?;
        Ok((slot, inst, func))
    }

    /// The index of export `name` for [`Self::call_raw`] and [`Self::call_buffer`].
    pub fn export_index(&self, name: &[u8]) -> Option<usize> {
        self.exports()
            .iter()
            .position(|e| e.name.as_bytes() == name)
    }

    /// Calls export `index` on the instance of `cpu` with raw 64-bit arguments, interpreted
    /// by the function's parameter types (`i32` from the low half, floats as bits). Writes the
    /// results to `results` (`i32` sign-extended) and returns how many there are.
    ///
    /// Exports of a common signature (`i32`/`i64` parameters and result, see `Fast`) take a
    /// typed path prepared at load: no signature check or value conversion per call.
    ///
    /// # Errors
    ///
    /// See [`RawError`].
    pub fn call_raw(
        &self,
        cpu: usize,
        index: usize,
        args: &[Lane],
        results: &mut [Lane],
    ) -> Result<usize, RawError> {
        let sig = self.exports().get(index).ok_or(RawError::NoFunction)?;
        if args.len() != sig.params.len()
            || args.len() > MAX_VALUES
            || sig.results.len() > results.len().min(MAX_VALUES)
        {
            return Err(RawError::Arguments);
        }
        let (slot, mut inst, func) = self.take(cpu, index)?;
        if let Some(fast) = inst.fast.get(index).copied().flatten() {
            let out = results.first_mut().ok_or(RawError::Arguments)?;
            *out = slot
                .run_fast::<H>(&mut inst, fast, args, self.limits().bpf_fuel)?
                .to_ne_bytes();
            return Ok(1);
        }
        let mut inputs: [Val; MAX_VALUES] = core::array::from_fn(|_| Val::I32(0));
        for ((slot, ty), raw) in inputs.iter_mut().zip(&sig.params).zip(args) {
            *slot = raw_to_val(*ty, u64::from_ne_bytes(*raw)).ok_or(RawError::Arguments)?;
        }
        let mut outputs: [Val; MAX_VALUES] = core::array::from_fn(|_| Val::I32(0));
        for (slot, ty) in outputs.iter_mut().zip(&sig.results) {
            *slot = raw_to_val(*ty, 0).ok_or(RawError::Arguments)?;
        }
        let (n_in, n_out) = (sig.params.len(), sig.results.len());
        slot.run_raw::<H>(
            &mut inst,
            func,
            &inputs[..n_in],
            &mut outputs[..n_out],
            self.limits().bpf_fuel,
        )?;
        for (r, v) in results.iter_mut().zip(&outputs[..n_out]) {
            *r = val_to_raw(v).to_ne_bytes();
        }
        Ok(n_out)
    }

    /// Buffer call: copies `buf` into the guest's buffer (see the `bpf_buffer` exports), calls
    /// export `index` as `f(len: i32) -> i32 | i64` on the instance of `cpu`, copies the
    /// guest's buffer back into `buf`, and returns the function's result (sign-extended).
    ///
    /// # Errors
    ///
    /// See [`RawError`]; [`RawError::TooBig`] if `buf` does not fit the guest's buffer.
    pub fn call_buffer(&self, cpu: usize, index: usize, buf: &mut [u8]) -> Result<i64, RawError> {
        let sig = self.exports().get(index).ok_or(RawError::NoFunction)?;
        match (&sig.params[..], &sig.results[..]) {
            ([ValType::I32], [ValType::I32 | ValType::I64]) => {}
            _ => return Err(RawError::Arguments),
        }
        let (slot, mut inst, func) = self.take(cpu, index)?;
        let (addr, size) = inst.buffer.ok_or(RawError::TooBig)?;
        let memory = inst.memory().ok_or(RawError::TooBig)?;
        if buf.len() > size {
            return Err(RawError::TooBig);
        }
        let region = addr..addr + buf.len();
        memory
            .data_mut(&mut inst.store)
            .get_mut(region.clone())
            .ok_or(RawError::TooBig)?
            .copy_from_slice(buf);
        let args = [Val::I32(buf.len() as i32)];
        let mut out = [raw_to_val(sig.results[0], 0).ok_or(RawError::Arguments)?];
        slot.run_raw::<H>(&mut inst, func, &args, &mut out, self.limits().bpf_fuel)?;
        // The guest may have grown (moved) its memory: look the region up again.
        let data = memory.data(&inst.store).get(region).ok_or(RawError::Trap)?;
        buf.copy_from_slice(data);
        Ok(val_to_raw(&out[0]) as i64)
    }
}
