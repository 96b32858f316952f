//! A WASI preview1 subset (`wasi_snapshot_preview1`), so ordinary programs run.
//!
//! | import | behaviour |
//! |---|---|
//! | `fd_write` | fd 1 and 2: line-buffered per instance, each line logged as `module: line` (long lines split, partial lines flushed when a call ends); other fds `EBADF` |
//! | `fd_read` | fd 0: end of file; other fds `EBADF` |
//! | `fd_fdstat_get`, `fd_close` | fds 0–2 are character devices; others `EBADF` |
//! | `fd_seek` | fds 0–2: `ESPIPE` (they are not seekable); others `EBADF` |
//! | `fd_prestat_get`, `fd_prestat_dir_name` | `EBADF`: no preopened directories |
//! | `args_*`, `environ_*` | from the load request (argv\[0\] is the module name) |
//! | `clock_time_get`, `clock_res_get` | realtime and monotonic clocks (CPU-time clocks read the monotonic one) |
//! | `random_get` | the host's random source (the kernel RNG in `wasm.ko`) |
//! | `proc_exit` | ends the call; the code is reported to the caller |
//! | `sched_yield` | returns at once |
//! | `poll_oneoff` | clock subscriptions fire at once, writes to fds 1–2 are ready: it never blocks |
//! | anything else | links to a stub returning `ENOSYS`, so modules that import more than they call load |

use crate::host_api::InstanceData;
use crate::Host;
use alloc::string::String;
use alloc::vec::Vec;
use wasmi::{Caller, Extern, FuncType, Linker, Val};

/// The import module name of WASI preview 1.
pub(crate) const MODULE: &str = "wasi_snapshot_preview1";

/// The functions implemented here; every other import of [`MODULE`] gets an `ENOSYS` stub.
pub(crate) const IMPLEMENTED: &[&str] = &[
    "fd_write",
    "fd_read",
    "fd_fdstat_get",
    "fd_close",
    "fd_seek",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "args_sizes_get",
    "args_get",
    "environ_sizes_get",
    "environ_get",
    "clock_time_get",
    "clock_res_get",
    "random_get",
    "proc_exit",
    "sched_yield",
    "poll_oneoff",
];

const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const ENOSYS: i32 = 52;
const ESPIPE: i32 = 70;

/// Longest line logged at once; longer lines are split.
const LINE_MAX: usize = 480;
/// Longest prefix (`module: `).
const PREFIX_MAX: usize = wasm_proto::MAX_NAME_LEN + 2;

/// A line buffer of one output stream. Its capacity is reserved up front, so writing never
/// allocates.
struct LineBuf(Vec<u8>);

impl LineBuf {
    fn new() -> Self {
        LineBuf(Vec::with_capacity(LINE_MAX))
    }

    fn write<H: Host>(&mut self, prefix: &[u8], bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.flush::<H>(prefix, true);
            } else {
                if self.0.len() == LINE_MAX {
                    self.flush::<H>(prefix, false);
                }
                self.0.push(b);
            }
        }
    }

    /// Logs the buffered line (`force`: even an empty one, for a blank line).
    fn flush<H: Host>(&mut self, prefix: &[u8], force: bool) {
        if self.0.is_empty() && !force {
            return;
        }
        let mut line = [0u8; PREFIX_MAX + LINE_MAX];
        let p = prefix.len().min(PREFIX_MAX);
        line[..p].copy_from_slice(&prefix[..p]);
        line[p..p + self.0.len()].copy_from_slice(&self.0);
        H::log(&line[..p + self.0.len()]);
        self.0.clear();
    }
}

/// An instance's WASI state.
pub(crate) struct WasiCtx {
    prefix: Vec<u8>,
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    out: [LineBuf; 2],
}

impl WasiCtx {
    /// `name` prefixes output lines and is argv\[0\].
    pub(crate) fn new(name: &str, args: &[&str], env: &[&str]) -> Self {
        let mut prefix = Vec::from(name.as_bytes());
        prefix.extend_from_slice(b": ");
        let mut argv = Vec::from([Vec::from(name.as_bytes())]);
        argv.extend(args.iter().map(|a| Vec::from(a.as_bytes())));
        WasiCtx {
            prefix,
            args: argv,
            env: env.iter().map(|e| Vec::from(e.as_bytes())).collect(),
            out: [LineBuf::new(), LineBuf::new()],
        }
    }

    /// Logs partial lines left in the output buffers (at the end of a call).
    pub(crate) fn flush<H: Host>(&mut self) {
        for out in &mut self.out {
            out.flush::<H>(&self.prefix, false);
        }
    }
}

/// Linear memory and instance data of the caller, or `None` without an exported memory.
fn memory<'a>(
    caller: &'a mut Caller<'_, InstanceData>,
) -> Option<(&'a mut [u8], &'a mut InstanceData)> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m.data_and_store_mut(caller)),
        _ => None,
    }
}

fn range(mem: &[u8], ptr: i32, len: usize) -> Option<core::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(len)?;
    (end <= mem.len()).then_some(start..end)
}

fn read_u32(mem: &[u8], ptr: i32) -> Option<u32> {
    let r = range(mem, ptr, 4)?;
    Some(u32::from_le_bytes(mem[r].try_into().ok()?))
}

fn write_bytes(mem: &mut [u8], ptr: i32, bytes: &[u8]) -> Result<(), i32> {
    let r = range(mem, ptr, bytes.len()).ok_or(EFAULT)?;
    mem[r].copy_from_slice(bytes);
    Ok(())
}

fn status(r: Result<(), i32>) -> i32 {
    r.err().unwrap_or(SUCCESS)
}

/// `*_sizes_get`: count and total size (with NULs) of `list`.
fn sizes(
    caller: &mut Caller<'_, InstanceData>,
    list: fn(&WasiCtx) -> &[Vec<u8>],
    count_ptr: i32,
    size_ptr: i32,
) -> i32 {
    let Some((mem, data)) = memory(caller) else {
        return EFAULT;
    };
    let items = list(&data.wasi);
    let size: usize = items.iter().map(|a| a.len() + 1).sum();
    status(
        write_bytes(mem, count_ptr, &(items.len() as u32).to_le_bytes())
            .and_then(|()| write_bytes(mem, size_ptr, &(size as u32).to_le_bytes())),
    )
}

/// `*_get`: pointers at `ptrs`, NUL-terminated strings at `buf`.
fn strings(
    caller: &mut Caller<'_, InstanceData>,
    list: fn(&WasiCtx) -> &[Vec<u8>],
    ptrs: i32,
    buf: i32,
) -> i32 {
    let Some((mem, data)) = memory(caller) else {
        return EFAULT;
    };
    let mut at = buf as u32;
    for (i, item) in list(&data.wasi).iter().enumerate() {
        let slot = (ptrs as u32).wrapping_add(4 * i as u32) as i32;
        let r = write_bytes(mem, slot, &at.to_le_bytes())
            .and_then(|()| write_bytes(mem, at as i32, item))
            .and_then(|()| write_bytes(mem, (at as usize + item.len()) as i32, &[0]));
        if let Err(e) = r {
            return e;
        }
        at = at.wrapping_add(item.len() as u32 + 1);
    }
    SUCCESS
}

fn fd_write<H: Host>(
    mut caller: Caller<'_, InstanceData>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
) -> i32 {
    if !(1..=2).contains(&fd) {
        return EBADF;
    }
    let Some((mem, data)) = memory(&mut caller) else {
        return EFAULT;
    };
    let wasi = &mut data.wasi;
    let mut total: u32 = 0;
    for i in 0..iovs_len.max(0) as u32 {
        let iov = (iovs as u32).wrapping_add(8 * i) as i32;
        let (Some(ptr), Some(len)) = (read_u32(mem, iov), read_u32(mem, iov.wrapping_add(4)))
        else {
            return EFAULT;
        };
        let Some(r) = range(mem, ptr as i32, len as usize) else {
            return EFAULT;
        };
        wasi.out[(fd - 1) as usize].write::<H>(&wasi.prefix, &mem[r]);
        total = total.wrapping_add(len);
    }
    status(write_bytes(mem, nwritten, &total.to_le_bytes()))
}

fn poll_oneoff(
    mut caller: Caller<'_, InstanceData>,
    subs: i32,
    events: i32,
    n: i32,
    nevents: i32,
) -> i32 {
    const SUB: u32 = 48;
    const EVENT: u32 = 32;
    let Some((mem, _)) = memory(&mut caller) else {
        return EFAULT;
    };
    if n <= 0 {
        return EINVAL;
    }
    for i in 0..n as u32 {
        let sub = (subs as u32).wrapping_add(SUB * i);
        let Some(r) = range(mem, sub as i32, SUB as usize) else {
            return EFAULT;
        };
        let s = &mem[r];
        let (userdata, tag) = (&s[0..8], s[8]);
        let fd = u32::from_le_bytes([s[16], s[17], s[18], s[19]]);
        // Clocks fire at once; writes to stdout/stderr are ready; anything else is EBADF.
        let error: u16 = match tag {
            0 => 0,
            2 if (1..=2).contains(&fd) => 0,
            _ => EBADF as u16,
        };
        let mut event = [0u8; EVENT as usize];
        event[0..8].copy_from_slice(userdata);
        event[8..10].copy_from_slice(&error.to_le_bytes());
        event[10] = tag;
        if let Err(e) = write_bytes(mem, (events as u32).wrapping_add(EVENT * i) as i32, &event) {
            return e;
        }
    }
    status(write_bytes(mem, nevents, &(n as u32).to_le_bytes()))
}

/// Defines the WASI subset in `linker`, plus `ENOSYS` stubs for the `stubs` the module also
/// imports.
pub(crate) fn define<H: Host>(
    linker: &mut Linker<InstanceData>,
    stubs: &[(String, FuncType)],
) -> Result<(), wasmi::Error> {
    let m = MODULE;
    linker.func_wrap(m, "fd_write", fd_write::<H>)?;
    linker.func_wrap(
        m,
        "fd_read",
        |mut c: Caller<'_, InstanceData>, fd: i32, _iovs: i32, _n: i32, nread: i32| {
            if fd != 0 {
                return EBADF;
            }
            let Some((mem, _)) = memory(&mut c) else {
                return EFAULT;
            };
            status(write_bytes(mem, nread, &0u32.to_le_bytes()))
        },
    )?;
    linker.func_wrap(
        m,
        "fd_fdstat_get",
        |mut c: Caller<'_, InstanceData>, fd: i32, buf: i32| {
            if !(0..=2).contains(&fd) {
                return EBADF;
            }
            let Some((mem, _)) = memory(&mut c) else {
                return EFAULT;
            };
            // filetype character_device, no flags, all rights.
            let mut stat = [0u8; 24];
            stat[0] = 2;
            stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
            status(write_bytes(mem, buf, &stat))
        },
    )?;
    linker.func_wrap(m, "fd_close", |_: Caller<'_, InstanceData>, fd: i32| {
        if (0..=2).contains(&fd) {
            SUCCESS
        } else {
            EBADF
        }
    })?;
    linker.func_wrap(
        m,
        "fd_seek",
        |_: Caller<'_, InstanceData>, fd: i32, _offset: i64, _whence: i32, _pos: i32| {
            if (0..=2).contains(&fd) {
                ESPIPE
            } else {
                EBADF
            }
        },
    )?;
    linker.func_wrap(
        m,
        "fd_prestat_get",
        |_: Caller<'_, InstanceData>, _fd: i32, _buf: i32| EBADF,
    )?;
    linker.func_wrap(
        m,
        "fd_prestat_dir_name",
        |_: Caller<'_, InstanceData>, _fd: i32, _p: i32, _l: i32| EBADF,
    )?;
    linker.func_wrap(
        m,
        "args_sizes_get",
        |mut c: Caller<'_, InstanceData>, n: i32, size: i32| sizes(&mut c, |w| &w.args, n, size),
    )?;
    linker.func_wrap(
        m,
        "args_get",
        |mut c: Caller<'_, InstanceData>, ptrs: i32, buf: i32| {
            strings(&mut c, |w| &w.args, ptrs, buf)
        },
    )?;
    linker.func_wrap(
        m,
        "environ_sizes_get",
        |mut c: Caller<'_, InstanceData>, n: i32, size: i32| sizes(&mut c, |w| &w.env, n, size),
    )?;
    linker.func_wrap(
        m,
        "environ_get",
        |mut c: Caller<'_, InstanceData>, ptrs: i32, buf: i32| {
            strings(&mut c, |w| &w.env, ptrs, buf)
        },
    )?;
    linker.func_wrap(
        m,
        "clock_time_get",
        |mut c: Caller<'_, InstanceData>, id: i32, _precision: i64, out: i32| {
            let now = match id {
                0 => H::realtime_ns(),
                1..=3 => H::now_ns(),
                _ => return EINVAL,
            };
            let Some((mem, _)) = memory(&mut c) else {
                return EFAULT;
            };
            status(write_bytes(mem, out, &now.to_le_bytes()))
        },
    )?;
    linker.func_wrap(
        m,
        "clock_res_get",
        |mut c: Caller<'_, InstanceData>, id: i32, out: i32| {
            if !(0..=3).contains(&id) {
                return EINVAL;
            }
            let Some((mem, _)) = memory(&mut c) else {
                return EFAULT;
            };
            status(write_bytes(mem, out, &1u64.to_le_bytes()))
        },
    )?;
    linker.func_wrap(
        m,
        "random_get",
        |mut c: Caller<'_, InstanceData>, buf: i32, len: i32| {
            let Some((mem, _)) = memory(&mut c) else {
                return EFAULT;
            };
            let Some(r) = range(mem, buf, len as u32 as usize) else {
                return EFAULT;
            };
            H::random(&mut mem[r]);
            SUCCESS
        },
    )?;
    linker.func_wrap(
        m,
        "proc_exit",
        |_: Caller<'_, InstanceData>, code: i32| -> Result<(), wasmi::Error> {
            Err(wasmi::Error::i32_exit(code))
        },
    )?;
    linker.func_wrap(m, "sched_yield", |_: Caller<'_, InstanceData>| SUCCESS)?;
    linker.func_wrap(m, "poll_oneoff", poll_oneoff)?;
    for (name, ty) in stubs {
        let types: Vec<wasmi::ValType> = ty.results().to_vec();
        linker.func_new(m, name, ty.clone(), move |_, _, results: &mut [Val]| {
            for (i, (r, t)) in results.iter_mut().zip(&types).enumerate() {
                *r = match (i, t) {
                    (0, wasmi::ValType::I32) => Val::I32(ENOSYS),
                    _ => Val::default_for_ty(*t),
                };
            }
            Ok(())
        })?;
    }
    Ok(())
}
