//! A compiled module with one instance per CPU.

use crate::budget::{Limiter, MemoryBudget};
use crate::counters::{CallRecord, Caller, Counters, Ending};
use crate::grants::Grants;
use crate::host_api::{self, InstanceData};
use crate::maps::{MapRef, MAX_MAPS};
use crate::raw::Fast;
use crate::slot::TryLock;
use crate::wasi::{self, WasiCtx};
use crate::{
    Error, Host, DEFAULT_BPF_FUEL, DEFAULT_FUEL, DEFAULT_MEMORY, FUEL_SLICE, MAX_MEMORY,
    MAX_RECURSION_DEPTH, MAX_TABLE_ELEMENTS, MIN_STACK_HEIGHT,
};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::marker::PhantomData;
use wasm_proto::{FuncSig, Limits, ModuleInfo, Tier, ValType, Value, MAX_VALUES};
use wasmi::{Engine, ExternType, Func, Linker, Module, ResumableCall, Store, Val};

/// Fuel allowed to a module's start function, which runs in one piece during instantiation.
const START_FUEL: u64 = 10 * FUEL_SLICE;

/// What a load request asks for.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec<'a> {
    /// Registry name.
    pub name: &'a str,
    /// The module's binary.
    pub wasm: &'a [u8],
    /// Entrypoint: `None` runs `main` or else `_start` if exported, `Some("")` runs nothing.
    pub entrypoint: Option<&'a str>,
    /// Limits; zero fields take the defaults.
    pub limits: Limits,
    /// WASI arguments after argv\[0\] (which is the module's name).
    pub args: &'a [&'a str],
    /// WASI environment, `KEY=value` each.
    pub env: &'a [&'a str],
    /// The host function groups the module may import from.
    pub grants: Grants,
    /// The module this load replaces, if it is a replace.
    pub replaces: Option<Replaced<'a>>,
    /// The trusted key that signed the binary (its first 8 bytes), if signed.
    pub signer: Option<[u8; 8]>,
    /// BPF maps for the `bpf` host functions, by index. Once the load succeeds, the module
    /// owns their references and gives them back with [`Host::map_release`] when freed.
    pub maps: &'a [MapRef],
}

/// What a replace keeps of the module it replaces.
#[derive(Debug, Clone, Copy)]
pub struct Replaced<'a> {
    /// Its exports: each must be exported again with the same signature, and keeps its index
    /// (eBPF handles carry it).
    pub exports: &'a [FuncSig],
    /// Its version; the new module's is one more.
    pub version: u32,
}

impl Default for LoadSpec<'_> {
    fn default() -> Self {
        LoadSpec {
            name: "",
            wasm: &[],
            entrypoint: None,
            limits: Limits::default(),
            args: &[],
            env: &[],
            grants: Grants::DEFAULT,
            replaces: None,
            signer: None,
            maps: &[],
        }
    }
}

/// The exports of a module replacing one whose exports were `kept`: those first, in their
/// order and with their signatures, then the new ones.
///
/// # Errors
///
/// [`Error::Replace`] naming an export that is gone or whose signature changed.
pub fn order_exports(kept: &[FuncSig], mut new: Vec<FuncSig>) -> Result<Vec<FuncSig>, Error> {
    let mut ordered = Vec::new();
    ordered
        .try_reserve_exact(new.len())
        .map_err(|_| Error::OutOfMemory)?;
    for old in kept {
        let Some(at) = new.iter().position(|e| e.name == old.name) else {
            return Err(Error::Replace(format!(
                "the new binary does not export {}{}, which eBPF programs may call",
                old.name,
                signature(old)
            )));
        };
        let e = new.remove(at);
        if e.params != old.params || e.results != old.results {
            return Err(Error::Replace(format!(
                "export {} would change from {} to {}; eBPF programs may hold handles to it \
                 (unload and load instead)",
                old.name,
                signature(old),
                signature(&e)
            )));
        }
        ordered.push(e);
    }
    ordered.extend(new);
    Ok(ordered)
}

/// `(params) -> (results)`.
fn signature(f: &FuncSig) -> String {
    format!("{} -> {}", list(&f.params), list(&f.results))
}

/// The outcome of a successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    /// The function's results.
    pub results: Vec<Value>,
    /// Fuel the call consumed.
    pub fuel_used: u64,
    /// The CPU whose instance ran the call.
    pub cpu: u32,
    /// The code the guest passed to WASI `proc_exit`, if it exited (then `results` is empty).
    pub exit: Option<i32>,
}

/// One instance and its store.
pub(crate) struct Instance {
    pub(crate) store: Store<InstanceData>,
    instance: wasmi::Instance,
    /// Exported functions, in the order of [`LoadedModule::exports`].
    pub(crate) funcs: Vec<Option<Func>>,
    /// Typed handles of the exports with a common signature, in the same order.
    pub(crate) fast: Vec<Option<Fast>>,
    /// The guest's buffer for buffer calls: `(address, size)` in linear memory.
    pub(crate) buffer: Option<(usize, usize)>,
}

/// A per-CPU instance with its counters. Counters are read without taking the instance.
pub(crate) struct Slot {
    pub(crate) state: TryLock<Instance>,
    pub(crate) counters: Counters,
}

/// A loaded module: compiled once, instantiated once per CPU.
pub struct LoadedModule<H: Host> {
    name: String,
    wasm_size: u64,
    digest: [u8; 32],
    entrypoint: String,
    entry_args: Vec<Value>,
    limits: Limits,
    exports: Vec<FuncSig>,
    imports: Vec<FuncSig>,
    slots: Box<[Slot]>,
    entry_result: Option<i32>,
    version: u32,
    grants: Grants,
    signer: Option<[u8; 8]>,
    /// The maps' references, owned (see [`LoadSpec::maps`]).
    maps: Vec<MapRef>,
    _host: PhantomData<fn() -> H>,
}

impl<H: Host> Drop for LoadedModule<H> {
    fn drop(&mut self) {
        for m in &self.maps {
            H::map_release(m.handle);
        }
    }
}

/// The limits in force for `asked`: zero fields take the defaults.
///
/// # Errors
///
/// [`Error::Memory`] for a memory limit above [`MAX_MEMORY`].
pub fn resolve_limits(asked: &Limits) -> Result<Limits, Error> {
    let or = |v: u64, default: u64| if v == 0 { default } else { v };
    let limits = Limits {
        fuel: or(asked.fuel, DEFAULT_FUEL),
        bpf_fuel: or(asked.bpf_fuel, DEFAULT_BPF_FUEL),
        memory: or(asked.memory, DEFAULT_MEMORY),
        instances: asked.instances,
    };
    if limits.memory > MAX_MEMORY {
        return Err(Error::Memory(format!(
            "a memory limit of {} bytes is above the maximum of {MAX_MEMORY}",
            limits.memory
        )));
    }
    Ok(limits)
}

/// The entrypoint among `exports` and its arguments: `asked`, or by default `main` or else
/// `_start` if exported (`Some("")`: none). It must take () or (argc, argv), which get (0,
/// 0), and return () or an `i32`.
///
/// # Errors
///
/// [`Error::NoFunction`] for an entrypoint not exported, [`Error::Arguments`] for one of
/// another signature.
pub fn choose_entrypoint(
    exports: &[FuncSig],
    asked: Option<&str>,
) -> Result<(String, Vec<Value>), Error> {
    let entrypoint = match asked {
        Some(name) => name.to_string(),
        None => ["main", "_start"]
            .into_iter()
            .find(|n| exports.iter().any(|e| e.name == *n))
            .unwrap_or_default()
            .to_string(),
    };
    if entrypoint.is_empty() {
        return Ok((entrypoint, Vec::new()));
    }
    let Some(e) = exports.iter().find(|e| e.name == entrypoint) else {
        return Err(Error::NoFunction(entrypoint));
    };
    let args = match (&e.params[..], &e.results[..]) {
        ([], []) | ([], [ValType::I32]) => Vec::new(),
        ([ValType::I32, ValType::I32], []) | ([ValType::I32, ValType::I32], [ValType::I32]) => {
            Vec::from([Value::I32(0), Value::I32(0)])
        }
        _ => {
            return Err(Error::Arguments(format!(
                "entrypoint {entrypoint} must take () or (i32, i32) and return () or i32, it takes {} and returns {}",
                list(&e.params),
                list(&e.results)
            )))
        }
    };
    Ok((entrypoint, args))
}

/// Checks a registry name: 1 to `MAX_NAME_LEN` bytes of `[A-Za-z0-9_.-]`.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= wasm_proto::MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::BadName(
            name.chars().take(wasm_proto::MAX_NAME_LEN).collect(),
        ))
    }
}

fn wasmi_type(ty: ValType) -> wasmi::ValType {
    match ty {
        ValType::I32 => wasmi::ValType::I32,
        ValType::I64 => wasmi::ValType::I64,
        ValType::F32 => wasmi::ValType::F32,
        ValType::F64 | ValType::Other => wasmi::ValType::F64,
    }
}

fn val_type(ty: &wasmi::ValType) -> ValType {
    match ty {
        wasmi::ValType::I32 => ValType::I32,
        wasmi::ValType::I64 => ValType::I64,
        wasmi::ValType::F32 => ValType::F32,
        wasmi::ValType::F64 => ValType::F64,
        _ => ValType::Other,
    }
}

fn sig(name: String, ty: &wasmi::FuncType) -> FuncSig {
    FuncSig {
        name,
        params: ty.params().iter().map(val_type).collect(),
        results: ty.results().iter().map(val_type).collect(),
    }
}

fn to_val(v: Value) -> Val {
    match v {
        Value::I32(x) => Val::I32(x),
        Value::I64(x) => Val::I64(x),
        Value::F32(b) => Val::F32(wasmi::F32::from_bits(b)),
        Value::F64(b) => Val::F64(wasmi::F64::from_bits(b)),
    }
}

fn from_val(v: &Val) -> Option<Value> {
    Some(match v {
        Val::I32(x) => Value::I32(*x),
        Val::I64(x) => Value::I64(*x),
        Val::F32(x) => Value::F32(x.to_bits()),
        Val::F64(x) => Value::F64(x.to_bits()),
        _ => return None,
    })
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn list(types: &[ValType]) -> String {
    let names: Vec<String> = types.iter().map(|t| t.to_string()).collect();
    format!("({})", names.join(", "))
}

/// Collapses whitespace runs (wasmparser messages may span lines) so a message fits one log line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Classifies an error raised while running guest code.
/// Whether wasmi failed for want of memory (it reports some allocation failures as errors).
fn out_of_memory(e: &wasmi::Error) -> bool {
    e.as_trap_code() == Some(wasmi::TrapCode::OutOfSystemMemory)
        || matches!(e.kind(), wasmi::errors::ErrorKind::Translation(t)
            if t.to_string() == "ran out of system memory during translation")
}

fn run_error(e: &wasmi::Error, budget: u64) -> Error {
    if out_of_memory(e) {
        return Error::OutOfMemory;
    }
    match e.as_trap_code() {
        Some(wasmi::TrapCode::OutOfFuel) => Error::OutOfFuel(budget),
        Some(code) => Error::Trap(code.to_string()),
        None => match e.kind() {
            wasmi::errors::ErrorKind::Memory(m) => Error::Memory(m.to_string()),
            wasmi::errors::ErrorKind::Table(t) => Error::Memory(t.to_string()),
            _ => Error::Trap(e.to_string()),
        },
    }
}

/// The error for an import the host does not provide.
fn not_provided(m: &str, n: &str) -> Error {
    let provided: Vec<String> = host_api::PROVIDED
        .iter()
        .map(|(m, n)| format!("{m}.{n}"))
        .collect();
    Error::Link(format!(
        "the module imports {m}.{n}, which is not provided (provided: {}, and {})",
        provided.join(", "),
        wasi::MODULE
    ))
}

/// Parses, validates and compiles. Kept out of line so its large frame is not stacked on the
/// frames of the steps that follow.
#[inline(never)]
fn compile(engine: &Engine, wasm: &[u8]) -> Result<Module, Error> {
    Module::new(engine, wasm).map_err(|e| match out_of_memory(&e) {
        true => Error::OutOfMemory,
        false => Error::Invalid(one_line(&e.to_string())),
    })
}

/// What every instance of a module is made from.
struct Plan<'a> {
    spec: &'a LoadSpec<'a>,
    limits: &'a Limits,
    exports: &'a [FuncSig],
    /// The memory budget all instances draw from.
    budget: &'static MemoryBudget,
}

/// A copy of `maps`, allocated fallibly.
fn copy_maps(maps: &[MapRef]) -> Result<Vec<MapRef>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(maps.len())
        .map_err(|_| Error::OutOfMemory)?;
    v.extend_from_slice(maps);
    Ok(v)
}

/// Creates one instance. Out of line for the same reason as [`compile`].
#[inline(never)]
fn instantiate(
    engine: &Engine,
    linker: &Linker<InstanceData>,
    module: &Module,
    cpu: u32,
    plan: &Plan<'_>,
) -> Result<Instance, Error> {
    let (limits, exports) = (plan.limits, plan.exports);
    let store_limits = Limiter::new(
        usize::try_from(limits.memory).unwrap_or(usize::MAX),
        MAX_TABLE_ELEMENTS,
        plan.budget,
    );
    let mut store = Store::new(
        engine,
        InstanceData {
            limits: store_limits,
            cpu,
            wasi: WasiCtx::new(plan.spec.name, plan.spec.args, plan.spec.env),
            maps: copy_maps(plan.spec.maps)?,
        },
    );
    store.limiter(|data| &mut data.limits);
    store
        .set_fuel(START_FUEL.min(limits.fuel))
        .map_err(|e| Error::Trap(e.to_string()))?;
    let instance = linker
        .instantiate_and_start(&mut store, module)
        .map_err(|e| match e.kind() {
            wasmi::errors::ErrorKind::Linker(l) => Error::Link(l.to_string()),
            wasmi::errors::ErrorKind::Instantiation(i) => Error::Memory(i.to_string()),
            _ => run_error(&e, START_FUEL.min(limits.fuel)),
        })?;
    let funcs: Vec<Option<Func>> = exports
        .iter()
        .map(|e| instance.get_func(&store, &e.name))
        .collect();
    let fast = funcs
        .iter()
        .zip(exports)
        .map(|(f, sig)| f.and_then(|f| Fast::new(&store, f, sig)))
        .collect();
    // Warm-up: a first call makes the engine allocate and cache its execution stack, so later
    // calls (from any context) find it ready instead of allocating.
    Func::wrap(&mut store, || {})
        .call(&mut store, &[], &mut [])
        .map_err(|e| Error::Trap(e.to_string()))?;
    let mut inst = Instance {
        store,
        instance,
        funcs,
        fast,
        buffer: None,
    };
    inst.buffer = inst.find_buffer()?;
    Ok(inst)
}

impl Instance {
    /// The guest's linear memory, if it exports one as `memory`.
    pub(crate) fn memory(&self) -> Option<wasmi::Memory> {
        self.instance.get_memory(&self.store, "memory")
    }

    /// Asks the guest where its buffer is: the exports `bpf_buffer() -> i32` (address) and
    /// `bpf_buffer_size() -> i32` (bytes). Both or neither must be exported.
    fn find_buffer(&mut self) -> Result<Option<(usize, usize)>, Error> {
        let get = |inst: &mut Self, name: &str| -> Result<Option<usize>, Error> {
            let Some(f) = inst.instance.get_func(&inst.store, name) else {
                return Ok(None);
            };
            let f = f
                .typed::<(), i32>(&inst.store)
                .map_err(|_| Error::Arguments(format!("{name} must have type () -> i32")))?;
            inst.store
                .set_fuel(FUEL_SLICE)
                .map_err(|e| Error::Trap(e.to_string()))?;
            let v = f
                .call(&mut inst.store, ())
                .map_err(|e| run_error(&e, FUEL_SLICE))?;
            Ok(Some(v as u32 as usize))
        };
        match (get(self, "bpf_buffer")?, get(self, "bpf_buffer_size")?) {
            (None, None) => Ok(None),
            (Some(addr), Some(size)) => {
                let memory = self.memory().map_or(0, |m| m.data_size(&self.store));
                if addr.checked_add(size).is_none_or(|end| end > memory) {
                    return Err(Error::Arguments(format!(
                        "bpf_buffer {addr:#x}..+{size} is outside linear memory ({memory} bytes)"
                    )));
                }
                Ok(Some((addr, size)))
            }
            _ => Err(Error::Arguments(
                "a guest exports both bpf_buffer and bpf_buffer_size, or neither".to_string(),
            )),
        }
    }

    pub(crate) fn memory_size(&self) -> u64 {
        self.instance
            .get_memory(&self.store, "memory")
            .map_or(0, |m| m.data_size(&self.store) as u64)
    }

    /// Runs `func` to completion in fuel slices. Returns the fuel used alongside the result.
    #[inline(never)]
    fn run<H: Host>(
        &mut self,
        func: Func,
        args: &[Val],
        out: &mut [Val],
        budget: u64,
    ) -> (u64, Result<Option<i32>, Error>) {
        let store = &mut self.store;
        let first = budget.min(FUEL_SLICE);
        let mut given = first;
        if let Err(e) = store.set_fuel(first) {
            return (0, Err(Error::Trap(e.to_string())));
        }
        let mut call = func.call_resumable(&mut *store, args, out);
        let result = loop {
            match call {
                Ok(ResumableCall::Finished) => break Ok(None),
                Ok(ResumableCall::HostTrap(trap)) => match trap.host_error().i32_exit_status() {
                    Some(code) => break Ok(Some(code)),
                    None => break Err(Error::Trap(trap.host_error().to_string())),
                },
                Ok(ResumableCall::OutOfFuel(resume)) => {
                    let remaining = budget - given;
                    let next = remaining.min(FUEL_SLICE).max(resume.required_fuel());
                    if next > remaining {
                        break Err(Error::OutOfFuel(budget));
                    }
                    if !H::between_slices() {
                        break Err(Error::Interrupted);
                    }
                    given += next;
                    if let Err(e) = store.set_fuel(next) {
                        break Err(Error::Trap(e.to_string()));
                    }
                    call = resume.resume(&mut *store, out);
                }
                Err(e) => match e.i32_exit_status() {
                    Some(code) => break Ok(Some(code)),
                    None => break Err(run_error(&e, budget)),
                },
            }
        };
        let left = store.get_fuel().unwrap_or(0);
        let used = match result {
            Err(Error::OutOfFuel(_)) => budget,
            _ => given.saturating_sub(left),
        };
        (used, result)
    }
}

/// A call ready to run: its function's signature checked and its values allocated, so that
/// running it on an instance allocates nothing of ours.
struct Prepared<'a> {
    function: &'a str,
    inputs: Vec<Val>,
    outputs: Vec<Val>,
}

impl<'a> Prepared<'a> {
    /// Checks `args` against the export `function` of `exports` and allocates the values.
    fn new(exports: &[FuncSig], function: &'a str, args: &[Value]) -> Result<Self, Error> {
        let ty = exports
            .iter()
            .find(|e| e.name == function)
            .ok_or_else(|| Error::NoFunction(function.to_string()))?;
        if ty.params.len() > MAX_VALUES || ty.results.len() > MAX_VALUES {
            return Err(Error::Arguments(format!(
                "{function} has more than {MAX_VALUES} parameters or results"
            )));
        }
        if !args.iter().map(Value::ty).eq(ty.params.iter().copied())
            || ty.results.contains(&ValType::Other)
        {
            let given: Vec<ValType> = args.iter().map(Value::ty).collect();
            return Err(Error::Arguments(format!(
                "{function} takes {} and returns {}, was given {}",
                list(&ty.params),
                list(&ty.results),
                list(&given)
            )));
        }
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        inputs
            .try_reserve_exact(args.len())
            .and_then(|()| outputs.try_reserve_exact(ty.results.len()))
            .map_err(|_| Error::OutOfMemory)?;
        inputs.extend(args.iter().copied().map(to_val));
        outputs.extend(
            ty.results
                .iter()
                .map(|t| Val::default_for_ty(wasmi_type(*t))),
        );
        Ok(Prepared {
            function,
            inputs,
            outputs,
        })
    }

    /// The results, allocated fallibly.
    fn results(&self) -> Result<Vec<Value>, Error> {
        let mut results = Vec::new();
        results
            .try_reserve_exact(self.outputs.len())
            .map_err(|_| Error::OutOfMemory)?;
        results.extend(self.outputs.iter().filter_map(from_val));
        Ok(results)
    }
}

impl Slot {
    /// Runs a prepared call on this slot's instance `inst`. Returns the results, the fuel used
    /// and the exit code of a WASI program that exited.
    fn call<H: Host>(
        &self,
        inst: &mut Instance,
        call: &mut Prepared<'_>,
        budget: u64,
    ) -> Result<(Vec<Value>, u64, Option<i32>), Error> {
        let (used, result) = self.run::<H>(inst, call, budget);
        match result {
            Err(e) => Err(e),
            Ok(Some(code)) => Ok((Vec::new(), used, Some(code))),
            Ok(None) => Ok((call.results()?, used, None)),
        }
    }

    fn run<H: Host>(
        &self,
        inst: &mut Instance,
        call: &mut Prepared<'_>,
        budget: u64,
    ) -> (u64, Result<Option<i32>, Error>) {
        let Some(func) = inst.instance.get_func(&inst.store, call.function) else {
            return (0, Err(Error::NoFunction(call.function.to_string())));
        };
        let started = H::timer_ns();
        let (used, result) = inst.run::<H>(func, &call.inputs, &mut call.outputs, budget);
        inst.store.data_mut().wasi.flush::<H>();
        self.counters.record(&CallRecord {
            caller: Caller::User,
            ending: match result {
                Ok(_) => Ending::Returned,
                Err(Error::OutOfFuel(_)) => Ending::OutOfFuel,
                Err(_) => Ending::Trapped,
            },
            fuel: used,
            ns: H::timer_ns().saturating_sub(started),
        });
        self.counters.set_memory(inst.memory_size());
        (used, result)
    }
}

impl<H: Host> core::fmt::Debug for LoadedModule<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("name", &self.name)
            .field("instances", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl<H: Host> LoadedModule<H> {
    /// Compiles `spec.wasm` and creates one instance per CPU; [`Self::run_entrypoint`] then
    /// initialises them.
    ///
    /// # Errors
    ///
    /// A bad name, an invalid binary, an import the host lacks, a bad entrypoint signature or
    /// a limit (per instance, or `budget`, shared by all modules). Nothing is kept on error.
    pub fn load(spec: &LoadSpec<'_>, budget: &'static MemoryBudget) -> Result<Self, Error> {
        check_name(spec.name)?;
        let limits = resolve_limits(&spec.limits)?;
        if spec.maps.len() > MAX_MAPS {
            return Err(Error::Arguments(format!(
                "{} maps given, at most {MAX_MAPS}",
                spec.maps.len()
            )));
        }
        let mut config = wasmi::Config::default();
        config
            .consume_fuel(true)
            .set_max_recursion_depth(MAX_RECURSION_DEPTH);
        config.set_min_stack_height(MIN_STACK_HEIGHT);
        // Translate every function at load: wasmi's default translates lazily on first call,
        // which would allocate and use deep stack frames on the call path (even from eBPF).
        config.compilation_mode(wasmi::CompilationMode::Eager);
        // One engine per module, compiled once and shared by every instance. After the load
        // (before any call can reach the module) nothing writes to the engine any more, so
        // its type registry is only read. In the kernel's wasmi (third_party/wasmi) a
        // non-resumable call, as every eBPF call is, runs in place on its store's stack and
        // takes no engine lock, so such calls on different CPUs, or from interrupts, never
        // wait for one another; resumable calls (user requests, process context) take the
        // engine's stack-pool lock briefly.
        let engine = Engine::new(&config);
        let module = compile(&engine, spec.wasm)?;

        let mut imports = Vec::new();
        let mut stubs = Vec::new();
        for import in module.imports() {
            let (m, n) = (import.module(), import.name());
            let ExternType::Func(ty) = import.ty() else {
                return Err(Error::Link(format!(
                    "{m}.{n}: only function imports are provided"
                )));
            };
            if m == wasi::MODULE {
                if wasi::WasiFn::named(n).is_none() {
                    stubs.push((n.to_string(), ty.clone()));
                }
            } else if !host_api::PROVIDED.contains(&(m, n)) {
                return Err(not_provided(m, n));
            }
            if let Some(group) = Grants::group_of(m, n) {
                if !spec.grants.allows(group) {
                    return Err(Error::NotGranted {
                        import: format!("{m}.{n}"),
                        group,
                    });
                }
            }
            imports.push(sig(format!("{m}.{n}"), ty));
        }
        let exports = module
            .exports()
            .filter_map(|e| match e.ty() {
                ExternType::Func(ty) => Some(sig(e.name().to_string(), ty)),
                _ => None,
            })
            .collect::<Vec<_>>();
        let exports = match &spec.replaces {
            Some(r) => order_exports(r.exports, exports)?,
            None => exports,
        };

        let (entrypoint, entry_args) = choose_entrypoint(&exports, spec.entrypoint)?;

        let possible = H::cpu_count().max(1);
        let cpus = match spec.limits.instances as usize {
            0 => possible,
            n => n.min(possible),
        };
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(cpus)
            .map_err(|_| Error::OutOfMemory)?;
        // The host functions, defined once for all instances.
        let mut linker = Linker::new(&engine);
        host_api::define::<H>(&mut linker).map_err(|e| Error::Link(e.to_string()))?;
        crate::maps::define::<H>(&mut linker).map_err(|e| Error::Link(e.to_string()))?;
        wasi::define::<H>(&mut linker, &stubs).map_err(|e| Error::Link(e.to_string()))?;
        let plan = Plan {
            spec,
            limits: &limits,
            exports: &exports,
            budget,
        };
        for cpu in 0..cpus as u32 {
            let inst = instantiate(&engine, &linker, &module, cpu, &plan)?;
            slots.push(Slot {
                counters: Counters::new(inst.memory_size()),
                state: TryLock::new(inst),
            });
        }
        Ok(LoadedModule {
            name: spec.name.to_string(),
            wasm_size: spec.wasm.len() as u64,
            digest: crate::signature::digest(spec.wasm),
            entrypoint,
            entry_args,
            limits,
            exports,
            imports,
            slots: slots.into_boxed_slice(),
            entry_result: None,
            version: spec.replaces.map_or(1, |r| r.version.wrapping_add(1)),
            grants: spec.grants,
            signer: spec.signer,
            maps: copy_maps(spec.maps)?,
            _host: PhantomData,
        })
    }

    /// Runs the entrypoint on every instance, in CPU order, and returns its `i32` result on
    /// the first. Done once, before the module is shared (hence `&mut`).
    ///
    /// # Errors
    ///
    /// As [`Self::call`]: a failing entrypoint fails the load.
    pub fn run_entrypoint(&mut self) -> Result<Option<i32>, Error> {
        if self.entrypoint.is_empty() {
            return Ok(None);
        }
        // `&mut self`: the instances are this caller's alone (not `H::on_instance`).
        for (cpu, slot) in self.slots.iter().enumerate() {
            let mut call = Prepared::new(&self.exports, &self.entrypoint, &self.entry_args)?;
            let mut inst = slot.state.try_lock().ok_or(Error::Busy)?;
            let (results, _, exit) = slot.call::<H>(&mut inst, &mut call, self.limits.fuel)?;
            if cpu == 0 {
                self.entry_result = match (exit, &results[..]) {
                    (Some(code), _) => Some(code),
                    (None, [Value::I32(v)]) => Some(*v),
                    _ => None,
                };
            }
        }
        Ok(self.entry_result)
    }

    /// The limits in force (defaults filled in).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The instance of `cpu`.
    /// The instance calls from `cpu` use: its own, or with fewer instances than CPUs,
    /// instance `cpu` mod their number.
    pub(crate) fn slot(&self, cpu: usize) -> Option<&Slot> {
        self.slots.get(cpu % self.slots.len().max(1))
    }

    /// The module's registry name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// 1 when loaded, one more for each replace.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The entrypoint run at load (empty if none).
    pub fn entrypoint(&self) -> &str {
        &self.entrypoint
    }

    /// The entrypoint's `i32` result on the first instance.
    pub fn entry_result(&self) -> Option<i32> {
        self.entry_result
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

    /// Calls `function` on exactly the instance of `cpu`.
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] if that instance is running another call, otherwise as [`Self::call`].
    pub fn call_on(
        &self,
        cpu: usize,
        function: &str,
        args: &[Value],
    ) -> Result<CallOutcome, Error> {
        let slot = self.slots.get(cpu).ok_or(Error::Busy)?;
        let mut call = Prepared::new(&self.exports, function, args)?;
        let mut inst = slot.state.try_lock().ok_or(Error::Busy)?;
        let (results, fuel_used, exit) =
            H::on_instance(|| slot.call::<H>(&mut inst, &mut call, self.limits.fuel))?;
        Ok(CallOutcome {
            results,
            fuel_used,
            cpu: cpu as u32,
            exit,
        })
    }

    /// Calls `function`, preferring the instance of `cpu` and taking the next free one if it is
    /// busy. Never waits.
    ///
    /// # Errors
    ///
    /// [`Error::NoFunction`], [`Error::Arguments`], [`Error::Trap`], [`Error::OutOfFuel`],
    /// [`Error::Interrupted`], or [`Error::Busy`] when every instance is in use.
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

    /// Describes the module and its instances' counters.
    pub fn info(&self) -> ModuleInfo {
        ModuleInfo {
            name: self.name.clone(),
            tier: Tier::Interpreted,
            wasm_size: self.wasm_size,
            digest: Some(self.digest),
            entrypoint: self.entrypoint.clone(),
            limits: self.limits,
            version: self.version,
            grants: self.grants.names(),
            signer: self.signer.map(|k| hex(&k)),
            maps: self.maps.iter().map(MapRef::info).collect(),
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
