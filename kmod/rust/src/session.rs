//! One open file of `/dev/wasm`: request handling and the pending response.

use crate::bpf;
use crate::ffi::{self, RegistryLock, UserPtr};
use crate::host::{log_fmt, KernelHost};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use wasm_engine::{Error, FuncSig, LoadSpec, LoadedModule, Registry, TryLock};
use wasm_proto::{
    errno, FrameError, Request, Response, StackPeak, Stats, ValType, MAX_REQUEST_LEN,
};

/// The loaded modules.
///
/// # Invariants
///
/// The registry is only touched while the shim's registry mutex is held ([`with_registry`]).
struct Global(UnsafeCell<Registry<KernelHost>>);

// SAFETY: every access goes through `with_registry`, which holds the kernel mutex.
unsafe impl Sync for Global {}

static REGISTRY: Global = Global(UnsafeCell::new(Registry::new()));

fn with_registry<R>(f: impl FnOnce(&mut Registry<KernelHost>) -> R) -> R {
    let _lock = RegistryLock::lock();
    // SAFETY: the mutex is held for the lifetime of this borrow (the invariant of `Global`).
    f(unsafe { &mut *REGISTRY.0.get() })
}

/// Sets the linear memory all modules may hold together.
pub fn set_memory_cap(bytes: u64) {
    with_registry(|r| r.budget().set_cap(bytes));
}

/// Frees every module (module exit). Returns how many there were.
pub fn unload_all() -> usize {
    with_registry(|r| {
        let n = r.len();
        bpf::unpublish_all();
        r.clear();
        n
    })
}

/// Request kinds, for the stack statistics.
const OPS: [&str; 6] = ["version", "load", "unload", "list", "call", "stats"];
/// Deepest task stack use per request kind.
static TASK_PEAK: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];
/// Deepest dedicated (work) stack use per request kind.
static WORK_PEAK: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];

fn op_index(req: &Request<'_>) -> usize {
    match req {
        Request::Version => 0,
        Request::Load { .. } => 1,
        Request::Unload { .. } => 2,
        Request::List => 3,
        Request::Call { .. } => 4,
        Request::Stats => 5,
    }
}

/// The response waiting to be read, and how much of it was read.
#[derive(Default)]
struct Pending {
    frame: Vec<u8>,
    read: usize,
}

/// An open `/dev/wasm` file. Requests on one file are serialised: a second concurrent
/// `read`/`write` on the same file gets `-EBUSY`. Different files never wait for each other.
pub struct Session {
    pending: TryLock<Pending>,
}

fn error_response(errno: i32, message: String) -> Response {
    Response::Error { errno, message }
}

impl Session {
    /// A new session, or `None` when out of memory.
    pub fn new_boxed() -> Option<Box<Session>> {
        Some(Box::new(Session {
            pending: TryLock::new(Pending::default()),
        }))
    }

    /// Gives the session to the shim.
    pub fn into_raw(self: Box<Self>) -> *mut c_void {
        Box::into_raw(self).cast()
    }

    /// Takes the session back from the shim.
    ///
    /// # Safety
    ///
    /// `ptr` comes from [`Session::into_raw`] and is not used afterwards.
    pub unsafe fn from_raw(ptr: *mut c_void) -> Box<Session> {
        // SAFETY: guaranteed by the caller.
        unsafe { Box::from_raw(ptr.cast()) }
    }

    /// Borrows the session during a file operation.
    ///
    /// # Safety
    ///
    /// `ptr` comes from [`Session::into_raw`] and stays live for `'a` (the VFS keeps the file
    /// open during `read`/`write`).
    pub unsafe fn borrow<'a>(ptr: *mut c_void) -> &'a Session {
        // SAFETY: guaranteed by the caller.
        unsafe { &*ptr.cast::<Session>() }
    }

    /// Handles one request frame written by user space.
    pub fn write(&self, buf: UserPtr, len: usize) -> isize {
        let Some(mut pending) = self.pending.try_lock() else {
            return -(errno::EBUSY as isize);
        };
        ffi::stack_paint();
        let (response, measured) = match Self::handle_frame(buf, len) {
            Ok((response, op, work_peak)) => (response, Some((op, work_peak))),
            Err(response) => (response, None),
        };
        let failed = match response {
            Response::Error { errno, .. } => Some(errno),
            _ => None,
        };
        pending.read = 0;
        pending.frame = wasm_proto::encode(&response).unwrap_or_default();
        if let Some((op, work_peak)) = measured {
            TASK_PEAK[op].fetch_max(ffi::stack_peak(), Relaxed);
            WORK_PEAK[op].fetch_max(work_peak, Relaxed);
        }
        match failed {
            Some(e) => -(e as isize),
            None => len as isize,
        }
    }

    /// Copies the next part of the pending response to user space.
    pub fn read(&self, buf: UserPtr, len: usize) -> isize {
        let Some(mut pending) = self.pending.try_lock() else {
            return -(errno::EBUSY as isize);
        };
        let rest = &pending.frame[pending.read..];
        if rest.is_empty() {
            return -(errno::ENODATA as isize);
        }
        let n = rest.len().min(len);
        if !ffi::copy_to_user(buf, &rest[..n]) {
            return -(errno::EFAULT as isize);
        }
        pending.read += n;
        if pending.read == pending.frame.len() {
            *pending = Pending::default();
        }
        n as isize
    }

    /// Copies and decodes a frame, then runs it on a dedicated stack. Returns the response,
    /// the request kind and the dedicated stack's peak use; or the error response of a frame
    /// that could not be run.
    fn handle_frame(buf: UserPtr, len: usize) -> Result<(Response, usize, usize), Response> {
        if len > MAX_REQUEST_LEN {
            let e = FrameError::TooLarge;
            return Err(error_response(
                e.errno(),
                format!("request of {len} bytes: {e}"),
            ));
        }
        let mut frame = Vec::new();
        frame
            .try_reserve_exact(len)
            .map_err(|_| error_response(errno::ENOMEM, "out of memory".to_string()))?;
        frame.resize(len, 0);
        if !ffi::copy_from_user(&mut frame, buf) {
            return Err(error_response(
                errno::EFAULT,
                "bad request buffer".to_string(),
            ));
        }
        let req = wasm_proto::decode::<Request<'_>>(&frame)
            .map_err(|e| error_response(e.errno(), e.to_string()))?;
        let op = op_index(&req);
        let (response, peak) = ffi::on_work_stack(|| handle(req)).ok_or_else(|| {
            error_response(errno::ENOMEM, "cannot allocate a work stack".to_string())
        })?;
        Ok((response, op, peak))
    }
}

fn engine_error(e: Error) -> Response {
    error_response(e.errno(), e.to_string())
}

fn arity(sig: &FuncSig) -> String {
    let params = sig.params.len();
    let results = sig.results.iter().filter(|t| **t != ValType::Other).count();
    format!("{}({params}) -> {results}", sig.name)
}

fn log_module(module: &LoadedModule<KernelHost>) {
    let info = module.info();
    log_fmt(format_args!(
        "wasm: vm for cpu = 0..{}",
        module.instances() - 1
    ));
    log_fmt(format_args!("wasm:   module = {}", info.name));
    for import in &info.imports {
        log_fmt(format_args!("wasm:     import -> {}", arity(import)));
    }
    for export in &info.exports {
        log_fmt(format_args!("wasm:     function -> {}", arity(export)));
    }
}

fn load(spec: LoadSpec<'_>) -> Result<Response, Error> {
    log_fmt(format_args!("wasm: loading module: {}", spec.name));
    let budget = with_registry(|r| r.check_free(spec.name).map(|()| r.budget()))?;
    let mut module = LoadedModule::<KernelHost>::load(&spec, budget)?;
    if !module.entrypoint().is_empty() {
        log_fmt(format_args!(
            "wasm: calling module entrypoint: {}",
            module.entrypoint()
        ));
    }
    let entry_result = module.run_entrypoint()?;
    let instances = module.instances() as u32;
    let module = with_registry(|r| {
        let module = r.insert(module)?;
        if bpf::publish(module.clone()).is_err() {
            r.remove(module.name())?;
            return Err(Error::Full(bpf::TABLE_SIZE));
        }
        Ok(module)
    })?;
    log_module(&module);
    Ok(Response::Loaded {
        instances,
        entry_result,
    })
}

fn handle(req: Request<'_>) -> Response {
    let result = match req {
        Request::Version => Ok(Response::Version {
            protocol: wasm_proto::PROTOCOL_VERSION,
            module: env!("CARGO_PKG_VERSION").to_string(),
        }),
        Request::Load {
            name,
            wasm,
            entrypoint,
            limits,
            args,
            env,
        } => {
            log_fmt(format_args!("wasm: command load"));
            let result = load(LoadSpec {
                name,
                wasm,
                entrypoint,
                limits,
                args: &args,
                env: &env,
            });
            if let Err(e) = &result {
                log_fmt(format_args!(
                    "wasm: load of '{}' failed: {e}",
                    name.escape_debug()
                ));
            }
            result
        }
        Request::Unload { name } => {
            let removed = with_registry(|r| {
                let module = r.remove(name)?;
                bpf::unpublish(name);
                Ok(module)
            });
            removed.map(|m| {
                log_fmt(format_args!("wasm: unloading module: {}", m.name()));
                drop(m);
                Response::Unloaded
            })
        }
        Request::List => Ok(Response::List(with_registry(|r| r.list()))),
        Request::Call {
            module,
            function,
            args,
        } => with_registry(|r| r.get(module))
            .and_then(|m| m.call(ffi::this_cpu(), function, &args))
            .map(|o| Response::Called {
                results: o.results,
                fuel_used: o.fuel_used,
                cpu: o.cpu,
                exit: o.exit,
            }),
        Request::Stats => {
            let (live_allocations, live_bytes) = crate::alloc_kernel::live();
            let (modules, budget) = with_registry(|r| (r.len(), r.budget()));
            Ok(Response::Stats(Stats {
                modules: modules as u32,
                cpus: ffi::possible_cpus() as u32,
                live_allocations,
                live_bytes,
                stack: OPS
                    .iter()
                    .enumerate()
                    .map(|(i, op)| StackPeak {
                        op: op.to_string(),
                        task: TASK_PEAK[i].load(Relaxed) as u64,
                        work: WORK_PEAK[i].load(Relaxed) as u64,
                    })
                    .collect(),
                stack_size: ffi::stack_size() as u64,
                memory_used: budget.used(),
                memory_cap: budget.cap(),
                work_stack_size: ffi::work_stack_size() as u64,
            }))
        }
    };
    result.unwrap_or_else(engine_error)
}
