//! A module of either tier, as the registry, `/dev/wasm` and the kfuncs see it.

use crate::ffi;
use crate::host::KernelHost;
use crate::native::NativeModule;
use wasm_engine::{
    CallOutcome, Entry, Error, FuncSig, Lane, Limits, LoadedModule, ModuleInfo, RawError, Value,
};

/// A loaded module: interpreted by the engine, or compiled ahead of time into a kernel
/// module of its own. Every operation dispatches once, here.
pub enum Module {
    /// Loaded through `/dev/wasm`, run by the engine.
    Interpreted(LoadedModule<KernelHost>),
    /// Registered by its own kernel module (`wasmctl compile`).
    Native(NativeModule),
}

impl Module {
    /// The registry name.
    pub fn name(&self) -> &str {
        match self {
            Module::Interpreted(m) => m.name(),
            Module::Native(m) => m.name(),
        }
    }

    /// Number of instances.
    pub fn instances(&self) -> usize {
        match self {
            Module::Interpreted(m) => m.instances(),
            Module::Native(m) => m.instances(),
        }
    }

    /// Imported functions with their signatures.
    pub fn imports(&self) -> &[FuncSig] {
        match self {
            Module::Interpreted(m) => m.imports(),
            Module::Native(m) => m.imports(),
        }
    }

    /// Exported functions with their signatures.
    pub fn exports(&self) -> &[FuncSig] {
        match self {
            Module::Interpreted(m) => m.exports(),
            Module::Native(m) => m.exports(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        match self {
            Module::Interpreted(m) => m.limits(),
            Module::Native(m) => m.limits(),
        }
    }

    /// Calls `function` from process context, preferring the instance of `cpu`. A trap or
    /// fuel exhaustion fires its tracepoint.
    pub fn call(&self, cpu: usize, function: &str, args: &[Value]) -> Result<CallOutcome, Error> {
        let result = match self {
            Module::Interpreted(m) => m.call(cpu, function, args),
            Module::Native(m) => m.call(cpu, function, args),
        };
        if let Err(e @ (Error::Trap(_) | Error::OutOfFuel(_) | Error::Interrupted)) = &result {
            ffi::trace_call_failed(self.name(), cpu, false, e.errno(), self.limits().fuel);
        }
        result
    }

    /// Fires the tracepoint of an eBPF call that failed with `e`, if it trapped or ran out of
    /// fuel.
    fn trace_raw(&self, cpu: usize, e: RawError) {
        if matches!(e, RawError::Trap | RawError::OutOfFuel) {
            ffi::trace_call_failed(self.name(), cpu, true, e.errno(), self.limits().bpf_fuel);
        }
    }

    /// The index of export `name` for the raw calls.
    pub fn export_index(&self, name: &[u8]) -> Option<usize> {
        match self {
            Module::Interpreted(m) => m.export_index(name),
            Module::Native(m) => m.export_index(name),
        }
    }

    /// A call from eBPF with raw arguments and results.
    pub fn call_raw(
        &self,
        cpu: usize,
        index: usize,
        args: &[Lane],
        results: &mut [Lane],
    ) -> Result<usize, RawError> {
        let result = match self {
            Module::Interpreted(m) => m.call_raw(cpu, index, args, results),
            Module::Native(m) => m.call_raw(cpu, index, args, results),
        };
        if let Err(e) = result {
            self.trace_raw(cpu, e);
        }
        result
    }

    /// A buffer call from eBPF.
    pub fn call_buffer(&self, cpu: usize, index: usize, buf: &mut [u8]) -> Result<i64, RawError> {
        let result = match self {
            Module::Interpreted(m) => m.call_buffer(cpu, index, buf),
            Module::Native(m) => m.call_buffer(cpu, index, buf),
        };
        if let Err(e) = result {
            self.trace_raw(cpu, e);
        }
        result
    }
}

impl Entry for Module {
    fn name(&self) -> &str {
        Module::name(self)
    }

    fn info(&self) -> ModuleInfo {
        match self {
            Module::Interpreted(m) => m.info(),
            Module::Native(m) => m.info(),
        }
    }
}
