//! The native tier: Wasm modules compiled ahead of time into kernel modules of their own
//! (`wasmctl compile`), which register here through `wasm_native_register`
//! (`kmod/wasm_native.h`, `wasm_native.c`).
//!
//! A registered module is a [`NativeModule`] in the registry, beside interpreted ones: one
//! instance per CPU, the same limits, counters, entrypoint and buffer convention, the same
//! errors. Its code runs through the shim, which unwinds traps and ends the code's section
//! between fuel slices; the code calls back here for host functions and for memory.
//!
//! The module's kernel module stays pinned (a module reference) while it is registered and
//! while any call may still run in it: `wasmctl unload` drops it from the registry and, with
//! the last reference, frees the instances and unpins, after which `rmmod` works.

use crate::ffi::{self, NativeDesc, NativeInstance, NativeOutcome};
use crate::guard::{self, Failure};
use crate::host::{log_fmt, KernelHost};
use crate::module::Module;
use crate::session;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use wasm_engine::wasi::{self, WasiCtx, WasiFn};
use wasm_engine::{
    choose_entrypoint, raw_record, resolve_limits, CallOutcome, CallRecord, Caller, Counters,
    Ending, Error, FuncSig, Grants, Host, Lane, Limits, MemoryBudget, ModuleInfo, RawError, Tier,
    TryLock, ValType, Value, FUEL_SLICE,
};
use wasm_proto::MAX_VALUES;

/// Fuel allowed to instantiation (data, elements, start function), as the interpreter's.
const START_FUEL: u64 = 10 * FUEL_SLICE;

/// `wasm_rt_trap_t` and `WASM_NATIVE_TRAP_*` codes.
const TRAP_OOB: i32 = 1;
const TRAP_NOMEM: i32 = 0x100;
const TRAP_FUEL: i32 = 0x101;
const TRAP_KILLED: i32 = 0x102;
const TRAP_EXIT: i32 = 0x103;

/// The host functions native modules may import.
#[derive(Clone, Copy)]
enum HostFn {
    /// `env._debug(ptr, len) -> len`
    Debug,
    /// `env.now_ns() -> i64`
    NowNs,
    /// `env.cpu_id() -> i32`
    CpuId,
    /// A function of the WASI subset.
    Wasi(WasiFn),
    /// Another WASI function: returns `ENOSYS` (or nothing), as for interpreted modules.
    WasiStub,
}

/// `(module, name, params, results, function)` of each host function, in the ABI's letters.
const HOST: &[(&str, &str, &str, &str, HostFn)] = &[
    ("env", "_debug", "ii", "i", HostFn::Debug),
    ("env", "now_ns", "", "I", HostFn::NowNs),
    ("env", "cpu_id", "", "i", HostFn::CpuId),
];

/// The ABI letters of `types`.
fn letters(types: &[ValType]) -> Vec<u8> {
    types
        .iter()
        .map(|t| match t {
            ValType::I64 => b'I',
            ValType::F32 => b'f',
            ValType::F64 => b'F',
            _ => b'i',
        })
        .collect()
}

/// The host function a native module's import `module.name(params) -> results` links to.
fn host_fn(module: &[u8], name: &[u8], params: &[u8], results: &[u8]) -> Option<HostFn> {
    if module == wasi::MODULE.as_bytes() {
        let name = core::str::from_utf8(name).ok()?;
        return match WasiFn::named(name) {
            Some(f) => {
                let (p, r) = f.signature();
                (letters(p) == params && letters(r) == results).then_some(HostFn::Wasi(f))
            }
            None => matches!(results, b"" | b"i").then_some(HostFn::WasiStub),
        };
    }
    HOST.iter()
        .find(|(m, n, p, r, _)| {
            m.as_bytes() == module
                && n.as_bytes() == name
                && p.as_bytes() == params
                && r.as_bytes() == results
        })
        .map(|h| h.4)
}

/// The engine's type of an ABI letter.
fn val_type(letter: u8) -> Option<ValType> {
    Some(match letter {
        b'i' => ValType::I32,
        b'I' => ValType::I64,
        b'f' => ValType::F32,
        b'F' => ValType::F64,
        _ => return None,
    })
}

/// A signature from the description, checked.
fn signature(name: String, params: &[u8], results: &[u8]) -> Result<FuncSig, Error> {
    let types = |letters: &[u8]| -> Result<Vec<ValType>, Error> {
        letters
            .iter()
            .map(|&l| val_type(l))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::Invalid(format!("{name}: bad signature")))
    };
    let sig = FuncSig {
        params: types(params)?,
        results: types(results)?,
        name: name.clone(),
    };
    if sig.params.len() > MAX_VALUES || sig.results.len() > MAX_VALUES {
        return Err(Error::Invalid(format!(
            "{name} has more than {MAX_VALUES} parameters or results"
        )));
    }
    Ok(sig)
}

/// The message of a trap code.
fn trap_error(code: i32, fuel: u64) -> Error {
    let what = match code {
        TRAP_FUEL => return Error::OutOfFuel(fuel),
        TRAP_KILLED => return Error::Interrupted,
        TRAP_NOMEM => return Error::Memory("a memory or table could not be allocated".to_string()),
        TRAP_OOB => "out of bounds memory access",
        2 => "integer overflow",
        3 => "integer divide by zero",
        4 => "invalid conversion to integer",
        5 => "wasm `unreachable` instruction executed",
        6 => "indirect call to a null, out-of-bounds or mismatched element",
        8 => "call stack exhausted",
        _ => "unknown trap",
    };
    Error::Trap(what.to_string())
}

fn raw_trap(code: i32) -> RawError {
    match code {
        TRAP_FUEL => RawError::OutOfFuel,
        TRAP_NOMEM => RawError::NoMemory,
        _ => RawError::Trap,
    }
}

/// A value as a lane (`i32` sign-extended, floats as bits).
fn lane_of(v: &Value) -> u64 {
    match *v {
        Value::I32(x) => x as i64 as u64,
        Value::I64(x) => x as u64,
        Value::F32(bits) => u64::from(bits),
        Value::F64(bits) => bits,
    }
}

/// A lane as a value of type `ty`.
fn value_of(ty: ValType, lane: u64) -> Value {
    match ty {
        ValType::I32 => Value::I32(lane as i32),
        ValType::I64 => Value::I64(lane as i64),
        ValType::F32 => Value::F32(lane as u32),
        ValType::F64 | ValType::Other => Value::F64(lane),
    }
}

/// One instance and its counters.
struct Slot {
    state: TryLock<Option<Instance>>,
    /// The instance's WASI state, for modules that import WASI: taken by the host functions
    /// of the call that holds `state`, and after it.
    wasi: TryLock<Option<Wasi>>,
    counters: Counters,
}

/// An instance's WASI state and the code its program exited with, if it did in this call.
struct Wasi {
    ctx: WasiCtx,
    exit: Option<i32>,
}

/// An instance and where its buffer for buffer calls is.
struct Instance {
    code: NativeInstance,
    buffer: Option<(usize, usize)>,
}

/// A registered native module.
///
/// # Invariants
///
/// `desc` is valid while this value lives: during registration (in the module's init
/// function), then because `pinned`; every instance in `slots` belongs to `desc`.
pub struct NativeModule {
    desc: NativeDesc,
    /// Whether this value holds a reference on `desc`'s kernel module.
    pinned: bool,
    name: String,
    entrypoint: String,
    entry_args: Vec<Value>,
    limits: Limits,
    exports: Vec<FuncSig>,
    imports: Vec<FuncSig>,
    host: Vec<HostFn>,
    slots: Box<[Slot]>,
    budget: &'static MemoryBudget,
    /// Bytes of linear memory charged to `budget`.
    charged: AtomicU64,
}

impl NativeModule {
    /// Checks `desc` and describes it; no instance yet ([`Self::instantiate`]), not pinned.
    fn new(desc: NativeDesc, budget: &'static MemoryBudget) -> Result<Self, Error> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let name = text(desc.name());
        let (instances, fuel, bpf_fuel, memory) = desc.limits();
        let limits = resolve_limits(&Limits {
            fuel,
            bpf_fuel,
            memory,
            instances,
        })?;
        let exports = desc
            .exports()
            .map(|f| signature(text(f.name), f.params, f.results))
            .collect::<Result<Vec<_>, _>>()?;
        let mut imports = Vec::new();
        let mut host = Vec::new();
        for f in desc.imports() {
            let full = format!("{}.{}", text(f.module), text(f.name));
            let Some(func) = host_fn(f.module, f.name, f.params, f.results) else {
                return Err(Error::Link(format!(
                    "the module imports {full}, which native modules are not given \
                     (they may import env._debug(i32, i32) -> i32, env.now_ns() -> i64, \
                     env.cpu_id() -> i32 and the WASI subset of interpreted modules)"
                )));
            };
            imports.push(signature(full, f.params, f.results)?);
            host.push(func);
        }
        let (entrypoint, entry_args) = choose_entrypoint(&exports, None)?;
        let cpus = match limits.instances as usize {
            0 => ffi::possible_cpus().max(1),
            n => n.min(ffi::possible_cpus().max(1)),
        };
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(cpus)
            .map_err(|_| Error::OutOfMemory)?;
        let uses_wasi = host
            .iter()
            .any(|h| matches!(h, HostFn::Wasi(_) | HostFn::WasiStub));
        for _ in 0..cpus {
            slots.push(Slot {
                state: TryLock::new(None),
                wasi: TryLock::new(uses_wasi.then(|| Wasi {
                    ctx: WasiCtx::new(&name, &[], &[]),
                    exit: None,
                })),
                counters: Counters::new(0),
            });
        }
        Ok(NativeModule {
            desc,
            pinned: false,
            name,
            entrypoint,
            entry_args,
            limits,
            exports,
            imports,
            host,
            slots: slots.into_boxed_slice(),
            budget,
            charged: AtomicU64::new(0),
        })
    }

    /// The pointer the shim hands back to [`wasm_rs_native_import`] and
    /// [`wasm_rs_native_resize`].
    fn owner(&self) -> *const c_void {
        (self as *const Self).cast()
    }

    /// Creates every instance, finds each one's buffer and runs the entrypoint on each.
    /// Done at its address for good (in its `Arc`), before it is shared.
    fn instantiate(&self) -> Result<Option<i32>, Error> {
        let mut entry_result = None;
        for (cpu, slot) in self.slots.iter().enumerate() {
            let code = NativeInstance::new(&self.desc, cpu as u32, START_FUEL, self.owner())
                .map_err(|trap| trap.map_or(Error::OutOfMemory, |t| trap_error(t, START_FUEL)))?;
            let mut inst = slot.state.try_lock().ok_or(Error::Busy)?;
            *inst = Some(Instance { code, buffer: None });
            drop(inst);
            let buffer = self.find_buffer(cpu)?;
            if let Some(inst) = slot.state.try_lock().ok_or(Error::Busy)?.as_mut() {
                inst.buffer = buffer;
            }
            if !self.entrypoint.is_empty() {
                if cpu == 0 {
                    log_fmt(format_args!(
                        "wasm: calling module entrypoint: {}",
                        self.entrypoint
                    ));
                }
                let out = self.call_on(cpu, &self.entrypoint, &self.entry_args)?;
                if cpu == 0 {
                    entry_result = match (out.exit, &out.results[..]) {
                        (Some(code), _) => Some(code),
                        (None, [Value::I32(v)]) => Some(*v),
                        _ => None,
                    };
                }
            }
        }
        Ok(entry_result)
    }

    /// The buffer of instance `cpu`: `bpf_buffer() -> i32` and `bpf_buffer_size() -> i32`, as
    /// for interpreted modules.
    fn find_buffer(&self, cpu: usize) -> Result<Option<(usize, usize)>, Error> {
        let get = |name: &str| -> Result<Option<usize>, Error> {
            if !self.exports.iter().any(|e| e.name == name) {
                return Ok(None);
            }
            match &self.call_on(cpu, name, &[])?.results[..] {
                [Value::I32(v)] => Ok(Some(*v as u32 as usize)),
                _ => Err(Error::Link(format!("{name} must be () -> i32"))),
            }
        };
        let found = match (get("bpf_buffer")?, get("bpf_buffer_size")?) {
            (Some(addr), Some(size)) => Some((addr, size)),
            (None, None) => None,
            _ => {
                return Err(Error::Link(
                    "a guest exports both bpf_buffer and bpf_buffer_size, or neither".to_string(),
                ))
            }
        };
        if let Some((addr, size)) = found {
            let mut inst = self.slots[cpu].state.try_lock().ok_or(Error::Busy)?;
            let memory = inst
                .as_mut()
                .and_then(|i| i.code.memory())
                .map_or(0, |m| m.len());
            if addr.checked_add(size).is_none_or(|end| end > memory) {
                return Err(Error::Link(format!(
                    "bpf_buffer {addr:#x}..+{size} is outside linear memory ({memory} bytes)"
                )));
            }
        }
        Ok(found)
    }

    /// The registry name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `desc` is this module's description.
    pub fn describes(&self, desc: &NativeDesc) -> bool {
        self.desc.same(desc)
    }

    /// Number of instances.
    pub fn instances(&self) -> usize {
        self.slots.len()
    }

    /// Imported functions with their signatures.
    pub fn imports(&self) -> &[FuncSig] {
        &self.imports
    }

    /// Exported functions with their signatures.
    pub fn exports(&self) -> &[FuncSig] {
        &self.exports
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Runs export `index` on instance `cpu` with `lanes`; counts the call.
    fn run(
        &self,
        cpu: usize,
        index: usize,
        lanes: &mut [u64; MAX_VALUES],
        fuel: u64,
        may_sleep: bool,
    ) -> Result<Result<u64, (i32, u64)>, RawError> {
        let slot = self.slots.get(cpu).ok_or(RawError::Busy)?;
        let mut guard = slot.state.try_lock().ok_or(RawError::Busy)?;
        let inst = guard.as_mut().ok_or(RawError::Busy)?;
        let started = ffi::clock_ns();
        // SAFETY: `lanes` holds MAX_VALUES lanes, as many as any export's parameters or
        // results (checked at registration); `inst` is an instance of `desc` (invariant) and
        // `index` one of its exports (callers).
        let outcome = unsafe {
            inst.code.call(
                &self.desc,
                index,
                lanes,
                fuel,
                may_sleep,
                cpu as u32,
                self.owner(),
            )
        };
        let result = match outcome {
            NativeOutcome::Returned(used) => Ok(used),
            NativeOutcome::Trapped(trap, used) => Err((trap, used)),
            NativeOutcome::Busy => return Err(RawError::Busy),
        };
        if let Some(w) = slot.wasi.try_lock().as_mut().and_then(|w| w.as_mut()) {
            w.ctx.flush::<KernelHost>();
        }
        let used = match result {
            Ok(used) | Err((_, used)) => used,
        };
        let ns = ffi::clock_ns().saturating_sub(started);
        let record = match (may_sleep, &result) {
            (false, Ok(_)) => raw_record(None, used, ns),
            (false, Err((trap, _))) => raw_record(Some(&raw_trap(*trap)), used, ns),
            (true, _) => CallRecord {
                caller: Caller::User,
                ending: match &result {
                    Ok(_) | Err((TRAP_EXIT, _)) => Ending::Returned,
                    Err((TRAP_FUEL, _)) => Ending::OutOfFuel,
                    Err(_) => Ending::Trapped,
                },
                fuel: used,
                ns,
            },
        };
        slot.counters.record(&record);
        slot.counters
            .set_memory(inst.code.memory().map_or(0, |m| m.len() as u64));
        Ok(result)
    }

    /// Calls `function` on exactly the instance of `cpu`, from process context.
    fn call_on(&self, cpu: usize, function: &str, args: &[Value]) -> Result<CallOutcome, Error> {
        let index = self
            .exports
            .iter()
            .position(|e| e.name == function)
            .ok_or_else(|| Error::NoFunction(function.to_string()))?;
        let sig = &self.exports[index];
        let types_match = args.len() == sig.params.len()
            && args.iter().zip(&sig.params).all(|(a, t)| {
                matches!(
                    (a, t),
                    (Value::I32(_), ValType::I32)
                        | (Value::I64(_), ValType::I64)
                        | (Value::F32(_), ValType::F32)
                        | (Value::F64(_), ValType::F64)
                )
            });
        if !types_match {
            return Err(Error::Arguments(format!(
                "{function} takes {} parameters of types {:?}",
                sig.params.len(),
                sig.params
            )));
        }
        let mut lanes = [0u64; MAX_VALUES];
        for (lane, v) in lanes.iter_mut().zip(args) {
            *lane = lane_of(v);
        }
        let run =
            KernelHost::on_instance(|| self.run(cpu, index, &mut lanes, self.limits.fuel, true));
        let (fuel_used, exit) = match run {
            Err(_) => return Err(Error::Busy),
            Ok(Err((TRAP_EXIT, used))) => {
                let mut wasi = self.slots[cpu].wasi.try_lock().ok_or(Error::Busy)?;
                let code = wasi.as_mut().and_then(|w| w.exit.take());
                // The results of a call that exited are zeros, as the interpreter's.
                lanes = [0; MAX_VALUES];
                (used, code)
            }
            Ok(Err((trap, _))) => return Err(trap_error(trap, self.limits.fuel)),
            Ok(Ok(used)) => (used, None),
        };
        let mut results = Vec::new();
        results
            .try_reserve_exact(sig.results.len())
            .map_err(|_| Error::OutOfMemory)?;
        results.extend(sig.results.iter().zip(lanes).map(|(t, l)| value_of(*t, l)));
        Ok(CallOutcome {
            results,
            fuel_used,
            cpu: cpu as u32,
            exit,
        })
    }

    /// Calls `function`, preferring the instance of `cpu`, as [`wasm_engine::LoadedModule::call`].
    pub fn call(&self, cpu: usize, function: &str, args: &[Value]) -> Result<CallOutcome, Error> {
        let n = self.slots.len();
        for i in 0..n {
            match self.call_on((cpu + i) % n, function, args) {
                Err(Error::Busy) => continue,
                other => return other,
            }
        }
        Err(Error::Busy)
    }

    /// The index of export `name` for the raw calls.
    pub fn export_index(&self, name: &[u8]) -> Option<usize> {
        self.exports.iter().position(|e| e.name.as_bytes() == name)
    }

    /// A call from eBPF, as [`wasm_engine::LoadedModule::call_raw`].
    pub fn call_raw(
        &self,
        cpu: usize,
        index: usize,
        args: &[Lane],
        results: &mut [Lane],
    ) -> Result<usize, RawError> {
        let sig = self.exports.get(index).ok_or(RawError::NoFunction)?;
        if args.len() != sig.params.len() || sig.results.len() > results.len() {
            return Err(RawError::Arguments);
        }
        let mut lanes = [0u64; MAX_VALUES];
        for (lane, arg) in lanes.iter_mut().zip(args) {
            *lane = u64::from_ne_bytes(*arg);
        }
        let cpu = cpu % self.slots.len().max(1);
        self.run(cpu, index, &mut lanes, self.limits.bpf_fuel, false)?
            .map_err(|(trap, _)| raw_trap(trap))?;
        for (out, lane) in results.iter_mut().zip(&lanes[..sig.results.len()]) {
            *out = lane.to_ne_bytes();
        }
        Ok(sig.results.len())
    }

    /// A buffer call from eBPF, as [`wasm_engine::LoadedModule::call_buffer`].
    pub fn call_buffer(&self, cpu: usize, index: usize, buf: &mut [u8]) -> Result<i64, RawError> {
        let sig = self.exports.get(index).ok_or(RawError::NoFunction)?;
        match (&sig.params[..], &sig.results[..]) {
            ([ValType::I32], [ValType::I32 | ValType::I64]) => {}
            _ => return Err(RawError::Arguments),
        }
        let cpu = cpu % self.slots.len().max(1);
        let slot = &self.slots[cpu];
        let region = {
            let mut guard = slot.state.try_lock().ok_or(RawError::Busy)?;
            let inst = guard.as_mut().ok_or(RawError::Busy)?;
            let (addr, size) = inst.buffer.ok_or(RawError::TooBig)?;
            if buf.len() > size {
                return Err(RawError::TooBig);
            }
            let region = addr..addr + buf.len();
            let memory = inst.code.memory().ok_or(RawError::TooBig)?;
            memory
                .get_mut(region.clone())
                .ok_or(RawError::TooBig)?
                .copy_from_slice(buf);
            region
        };
        let mut lanes = [0u64; MAX_VALUES];
        lanes[0] = buf.len() as u64;
        self.run(cpu, index, &mut lanes, self.limits.bpf_fuel, false)?
            .map_err(|(trap, _)| raw_trap(trap))?;
        let mut guard = slot.state.try_lock().ok_or(RawError::Busy)?;
        let inst = guard.as_mut().ok_or(RawError::Busy)?;
        let memory = inst.code.memory().ok_or(RawError::Trap)?;
        buf.copy_from_slice(memory.get(region).ok_or(RawError::Trap)?);
        Ok(match sig.results[0] {
            ValType::I32 => lanes[0] as i32 as i64,
            _ => lanes[0] as i64,
        })
    }

    /// Describes the module and its instances' counters.
    pub fn info(&self) -> ModuleInfo {
        ModuleInfo {
            name: self.name.clone(),
            tier: Tier::Native,
            wasm_size: self.desc.wasm_size(),
            digest: None,
            entrypoint: self.entrypoint.clone(),
            limits: self.limits,
            version: 1,
            grants: Grants::DEFAULT.names(),
            signer: None,
            maps: Vec::new(),
            exports: self.exports.clone(),
            imports: self.imports.clone(),
            instances: self
                .slots
                .iter()
                .enumerate()
                .map(|(cpu, s)| s.counters.info(cpu))
                .collect(),
        }
    }
}

impl Drop for NativeModule {
    fn drop(&mut self) {
        let owner = self.owner();
        for (cpu, slot) in self.slots.iter().enumerate() {
            // Nothing else holds the module any more, so no instance is taken.
            if let Some(inst) = slot.state.try_lock().and_then(|mut g| g.take()) {
                inst.code.release(&self.desc, cpu as u32, owner);
            }
        }
        self.budget.release(self.charged.load(Relaxed));
        if self.pinned {
            // SAFETY: pairs with the pin taken at registration; nothing uses `desc` afterwards.
            unsafe { self.desc.unpin() };
        }
    }
}

/// Registers the native module `desc` (its init function calls this through the shim).
fn register(desc: NativeDesc) -> Result<Option<i32>, Error> {
    let name = String::from_utf8_lossy(desc.name()).into_owned();
    log_fmt(format_args!("wasm: registering native module: {name}"));
    let budget = session::check_free(&name)?;
    // The instances refer to the module by address: put it in its final place first.
    let mut module = Arc::new(Module::Native(NativeModule::new(desc, budget)?));
    let entry_result = match &*module {
        Module::Native(m) => m.instantiate()?,
        Module::Interpreted(_) => None,
    };
    if let Some(Module::Native(m)) = Arc::get_mut(&mut module) {
        if !desc.pin() {
            return Err(Error::NoModule(name));
        }
        m.pinned = true;
    }
    session::install(module)?;
    Ok(entry_result)
}

/// `wasm_native_register`: 0 or a negative errno; the reason is logged.
///
/// # Safety
///
/// `desc` is the argument of `wasm_native_register`, called from the module's init function.
#[no_mangle]
pub unsafe extern "C" fn wasm_rs_native_register(desc: *const ffi::RawNativeModule) -> i32 {
    // SAFETY: guaranteed by the caller.
    let desc = unsafe { NativeDesc::new(desc) };
    match guard::run(|| register(desc)) {
        Ok((Ok(_), _)) => 0,
        Ok((Err(e), _)) => {
            log_fmt(format_args!(
                "wasm: registration of native module '{}' failed: {e}",
                String::from_utf8_lossy(desc.name())
            ));
            -e.errno()
        }
        Err(Failure::Busy) => -wasm_proto::errno::EBUSY,
        Err(Failure::NoStack | Failure::Abandoned) => -wasm_proto::errno::ENOMEM,
    }
}

/// `wasm_native_unregister`: the module's exit function. A registered module pins its kernel
/// module, so by now `wasmctl unload` removed it; nothing is left to do but check that.
///
/// # Safety
///
/// `desc` is the argument of `wasm_native_unregister`, called from the module's exit function.
#[no_mangle]
pub unsafe extern "C" fn wasm_rs_native_unregister(desc: *const ffi::RawNativeModule) {
    // SAFETY: guaranteed by the caller.
    let desc = unsafe { NativeDesc::new(desc) };
    if session::native_registered(&desc) {
        log_fmt(format_args!(
            "wasm: native module '{}' is going away while registered",
            String::from_utf8_lossy(desc.name())
        ));
    }
}

/// A host function called by native code: 0, or the trap code to unwind with.
///
/// # Safety
///
/// `owner` is the [`NativeModule`] whose instance `inst` runs the call (the shim passes back
/// what [`NativeInstance::call`] got), `lanes` holds the import's parameters and results.
#[no_mangle]
pub unsafe extern "C" fn wasm_rs_native_import(
    owner: *const c_void,
    inst: *mut c_void,
    cpu: u32,
    index: u32,
    lanes: *mut u64,
) -> i32 {
    // SAFETY: guaranteed by the caller: the module outlives its running calls.
    let module = unsafe { &*owner.cast::<NativeModule>() };
    let (Some(func), Some(sig)) = (
        module.host.get(index as usize),
        module.imports.get(index as usize),
    ) else {
        return TRAP_OOB;
    };
    let n = sig.params.len().max(sig.results.len()).max(1);
    // SAFETY: the generated code passes as many lanes as the import has parameters or
    // results, and at least one (crates/aot's glue).
    let lanes = unsafe { core::slice::from_raw_parts_mut(lanes, n) };
    match func {
        HostFn::Debug => {
            // SAFETY: the instance runs this call, so nothing else uses it.
            let memory = unsafe { ffi::memory_of(inst) }.unwrap_or_default();
            match wasm_engine::env_debug::<KernelHost>(memory, lanes[0] as i32, lanes[1] as i32) {
                Some(len) => lanes[0] = len as u32 as u64,
                None => return TRAP_OOB,
            }
        }
        HostFn::NowNs => lanes[0] = ffi::now_ns(),
        HostFn::CpuId => lanes[0] = u64::from(cpu),
        HostFn::Wasi(f) => {
            let Some(slot) = module.slots.get(cpu as usize) else {
                return TRAP_OOB;
            };
            // The call that runs this holds the instance, and nothing else takes its WASI
            // state but that call.
            let mut guard = slot.wasi.try_lock();
            let Some(state) = guard.as_mut().and_then(|w| w.as_mut()) else {
                return TRAP_OOB;
            };
            // SAFETY: the instance runs this call, so nothing else uses it.
            let memory = unsafe { ffi::memory_of(inst) };
            match wasi::call::<KernelHost>(*f, memory, &mut state.ctx, lanes) {
                Ok(errno) => lanes[0] = errno as u32 as u64,
                Err(code) => {
                    state.exit = Some(code);
                    return TRAP_EXIT;
                }
            }
        }
        HostFn::WasiStub => lanes[0] = wasi::ENOSYS as u32 as u64,
    }
    0
}

/// Resizes a native instance's memory or table from `old` to `new` bytes (zeroing what is
/// new, freeing at 0): 0, or `-ENOMEM` with `*data` unchanged.
///
/// # Safety
///
/// `owner` is the [`NativeModule`] of the running call; `*data` is null (with `old` 0) or a
/// block of `old` bytes from this function.
#[no_mangle]
pub unsafe extern "C" fn wasm_rs_native_resize(
    owner: *const c_void,
    data: *mut *mut u8,
    old: u64,
    new: u64,
    memory: bool,
) -> i32 {
    // SAFETY: guaranteed by the caller.
    let module = unsafe { &*owner.cast::<NativeModule>() };
    let enomem = -wasm_proto::errno::ENOMEM;
    if memory && new > module.limits.memory {
        return enomem;
    }
    let (Ok(old_size), Ok(new_size)) = (usize::try_from(old), usize::try_from(new)) else {
        return enomem;
    };
    if memory && new > old && !module.budget.try_charge(new - old) {
        return enomem;
    }
    let charge_back = || {
        if memory && new > old {
            module.budget.release(new - old);
        }
    };
    // SAFETY: `*data` is as the caller guarantees; the layouts match the allocations.
    unsafe {
        let layout = |size| core::alloc::Layout::from_size_align(size, 16);
        let ptr = *data;
        let moved = match (old_size, new_size) {
            (0, 0) => ptr,
            (0, n) => match layout(n) {
                Ok(l) => alloc::alloc::alloc_zeroed(l),
                Err(_) => core::ptr::null_mut(),
            },
            (o, 0) => {
                if let Ok(l) = layout(o) {
                    alloc::alloc::dealloc(ptr, l);
                }
                core::ptr::null_mut()
            }
            (o, n) => match layout(o) {
                Ok(l) => {
                    let p = alloc::alloc::realloc(ptr, l, n);
                    if !p.is_null() && n > o {
                        p.add(o).write_bytes(0, n - o);
                    }
                    p
                }
                Err(_) => core::ptr::null_mut(),
            },
        };
        if moved.is_null() && new_size != 0 {
            charge_back();
            return enomem;
        }
        *data = moved;
    }
    if memory {
        if new > old {
            module.charged.fetch_add(new - old, Relaxed);
        } else {
            module.budget.release(old - new);
            module.charged.fetch_sub(old - new, Relaxed);
        }
    }
    0
}
