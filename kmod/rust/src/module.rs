//! A module of either tier, as the registry, `/dev/wasm` and the kfuncs see it.

use crate::host::KernelHost;
use crate::native::NativeModule;
use wasm_engine::{
    CallOutcome, Entry, Error, FuncSig, Lane, LoadedModule, ModuleInfo, RawError, Value,
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

    /// Calls `function` from process context, preferring the instance of `cpu`.
    pub fn call(&self, cpu: usize, function: &str, args: &[Value]) -> Result<CallOutcome, Error> {
        match self {
            Module::Interpreted(m) => m.call(cpu, function, args),
            Module::Native(m) => m.call(cpu, function, args),
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
        match self {
            Module::Interpreted(m) => m.call_raw(cpu, index, args, results),
            Module::Native(m) => m.call_raw(cpu, index, args, results),
        }
    }

    /// A buffer call from eBPF.
    pub fn call_buffer(&self, cpu: usize, index: usize, buf: &mut [u8]) -> Result<i64, RawError> {
        match self {
            Module::Interpreted(m) => m.call_buffer(cpu, index, buf),
            Module::Native(m) => m.call_buffer(cpu, index, buf),
        }
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
