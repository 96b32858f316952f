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
use wasm_proto::ValType;
use wasmi::{Caller, Extern, FuncType, Linker, Val};

/// The import module name of WASI preview 1.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// A function of the subset. wasmi's linker gets them all from [`define`]; the native tier,
/// whose compiled code calls its host functions by index, looks them up with [`WasiFn::named`]
/// and runs them with [`call`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasiFn {
    /// `fd_write(fd, iovs, iovs_len, nwritten) -> errno`
    FdWrite,
    /// `fd_read(fd, iovs, iovs_len, nread) -> errno`
    FdRead,
    /// `fd_fdstat_get(fd, buf) -> errno`
    FdFdstatGet,
    /// `fd_close(fd) -> errno`
    FdClose,
    /// `fd_seek(fd, offset, whence, newoffset) -> errno`
    FdSeek,
    /// `fd_prestat_get(fd, buf) -> errno`
    FdPrestatGet,
    /// `fd_prestat_dir_name(fd, path, len) -> errno`
    FdPrestatDirName,
    /// `args_sizes_get(argc, size) -> errno`
    ArgsSizesGet,
    /// `args_get(argv, buf) -> errno`
    ArgsGet,
    /// `environ_sizes_get(count, size) -> errno`
    EnvironSizesGet,
    /// `environ_get(environ, buf) -> errno`
    EnvironGet,
    /// `clock_time_get(id, precision, time) -> errno`
    ClockTimeGet,
    /// `clock_res_get(id, resolution) -> errno`
    ClockResGet,
    /// `random_get(buf, len) -> errno`
    RandomGet,
    /// `proc_exit(code)`: does not return.
    ProcExit,
    /// `sched_yield() -> errno`
    SchedYield,
    /// `poll_oneoff(subscriptions, events, n, nevents) -> errno`
    PollOneoff,
}

use ValType::{I32, I64};

/// Every function of the subset: name, function, parameters, results.
const FUNCS: &[(&str, WasiFn, &[ValType], &[ValType])] = &[
    ("fd_write", WasiFn::FdWrite, &[I32, I32, I32, I32], &[I32]),
    ("fd_read", WasiFn::FdRead, &[I32, I32, I32, I32], &[I32]),
    ("fd_fdstat_get", WasiFn::FdFdstatGet, &[I32, I32], &[I32]),
    ("fd_close", WasiFn::FdClose, &[I32], &[I32]),
    ("fd_seek", WasiFn::FdSeek, &[I32, I64, I32, I32], &[I32]),
    ("fd_prestat_get", WasiFn::FdPrestatGet, &[I32, I32], &[I32]),
    (
        "fd_prestat_dir_name",
        WasiFn::FdPrestatDirName,
        &[I32, I32, I32],
        &[I32],
    ),
    ("args_sizes_get", WasiFn::ArgsSizesGet, &[I32, I32], &[I32]),
    ("args_get", WasiFn::ArgsGet, &[I32, I32], &[I32]),
    (
        "environ_sizes_get",
        WasiFn::EnvironSizesGet,
        &[I32, I32],
        &[I32],
    ),
    ("environ_get", WasiFn::EnvironGet, &[I32, I32], &[I32]),
    (
        "clock_time_get",
        WasiFn::ClockTimeGet,
        &[I32, I64, I32],
        &[I32],
    ),
    ("clock_res_get", WasiFn::ClockResGet, &[I32, I32], &[I32]),
    ("random_get", WasiFn::RandomGet, &[I32, I32], &[I32]),
    ("proc_exit", WasiFn::ProcExit, &[I32], &[]),
    ("sched_yield", WasiFn::SchedYield, &[], &[I32]),
    (
        "poll_oneoff",
        WasiFn::PollOneoff,
        &[I32, I32, I32, I32],
        &[I32],
    ),
];

impl WasiFn {
    /// The function of the subset called `name`, if any (other imports of [`MODULE`] get a
    /// stub returning [`ENOSYS`]).
    pub fn named(name: &str) -> Option<WasiFn> {
        FUNCS.iter().find(|f| f.0 == name).map(|f| f.1)
    }

    /// Its parameter and result types.
    pub fn signature(self) -> (&'static [ValType], &'static [ValType]) {
        FUNCS
            .iter()
            .find(|f| f.1 == self)
            .map_or((&[], &[]), |f| (f.2, f.3))
    }
}

const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
/// What the stubs for the functions outside the subset return.
pub const ENOSYS: i32 = 52;
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
pub struct WasiCtx {
    prefix: Vec<u8>,
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    out: [LineBuf; 2],
}

impl WasiCtx {
    /// `name` prefixes output lines and is argv\[0\].
    pub fn new(name: &str, args: &[&str], env: &[&str]) -> Self {
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
    pub fn flush<H: Host>(&mut self) {
        for out in &mut self.out {
            out.flush::<H>(&self.prefix, false);
        }
    }
}

/// Linear memory (if the module exports one) and instance data of the caller.
fn parts<'a>(
    caller: &'a mut Caller<'_, InstanceData>,
) -> (Option<&'a mut [u8]>, &'a mut InstanceData) {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => {
            let (mem, data) = m.data_and_store_mut(caller);
            (Some(mem), data)
        }
        _ => (None, caller.data_mut()),
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

/// `*_sizes_get`: count and total size (with NULs) of `items`.
fn sizes(mem: &mut [u8], items: &[Vec<u8>], count_ptr: i32, size_ptr: i32) -> i32 {
    let size: usize = items.iter().map(|a| a.len() + 1).sum();
    status(
        write_bytes(mem, count_ptr, &(items.len() as u32).to_le_bytes())
            .and_then(|()| write_bytes(mem, size_ptr, &(size as u32).to_le_bytes())),
    )
}

/// `*_get`: pointers at `ptrs`, NUL-terminated strings at `buf`.
fn strings(mem: &mut [u8], items: &[Vec<u8>], ptrs: i32, buf: i32) -> i32 {
    let mut at = buf as u32;
    for (i, item) in items.iter().enumerate() {
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
    mem: &mut [u8],
    wasi: &mut WasiCtx,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
) -> i32 {
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

fn poll_oneoff(mem: &mut [u8], subs: i32, events: i32, n: i32, nevents: i32) -> i32 {
    const SUB: u32 = 48;
    const EVENT: u32 = 32;
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

/// Runs `f` with `args` (one lane each: an `i32` in the low half, an `i64` whole) on the
/// instance's linear memory `mem` (`None` if it has none: calls that need it return `EFAULT`)
/// and WASI state `wasi`. Returns the errno result (0 for `proc_exit`'s lack of one), or
/// `Err(code)` when the program exits with `code`.
pub fn call<H: Host>(
    f: WasiFn,
    mem: Option<&mut [u8]>,
    wasi: &mut WasiCtx,
    args: &[u64],
) -> Result<i32, i32> {
    let i = |n: usize| args.get(n).map_or(0, |&a| a as u32 as i32);
    let with_mem = |run: &mut dyn FnMut(&mut [u8]) -> i32, mem: Option<&mut [u8]>| match mem {
        Some(mem) => run(mem),
        None => EFAULT,
    };
    Ok(match f {
        WasiFn::FdWrite if !(1..=2).contains(&i(0)) => EBADF,
        WasiFn::FdWrite => with_mem(&mut |m| fd_write::<H>(m, wasi, i(0), i(1), i(2), i(3)), mem),
        WasiFn::FdRead if i(0) != 0 => EBADF,
        WasiFn::FdRead => with_mem(
            &mut |m| status(write_bytes(m, i(3), &0u32.to_le_bytes())),
            mem,
        ),
        WasiFn::FdFdstatGet if !(0..=2).contains(&i(0)) => EBADF,
        WasiFn::FdFdstatGet => with_mem(
            &mut |m| {
                // filetype character_device, no flags, all rights.
                let mut stat = [0u8; 24];
                stat[0] = 2;
                stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
                status(write_bytes(m, i(1), &stat))
            },
            mem,
        ),
        WasiFn::FdClose if (0..=2).contains(&i(0)) => SUCCESS,
        WasiFn::FdSeek if (0..=2).contains(&i(0)) => ESPIPE,
        WasiFn::FdClose | WasiFn::FdSeek | WasiFn::FdPrestatGet | WasiFn::FdPrestatDirName => EBADF,
        WasiFn::ArgsSizesGet => with_mem(&mut |m| sizes(m, &wasi.args, i(0), i(1)), mem),
        WasiFn::ArgsGet => with_mem(&mut |m| strings(m, &wasi.args, i(0), i(1)), mem),
        WasiFn::EnvironSizesGet => with_mem(&mut |m| sizes(m, &wasi.env, i(0), i(1)), mem),
        WasiFn::EnvironGet => with_mem(&mut |m| strings(m, &wasi.env, i(0), i(1)), mem),
        WasiFn::ClockTimeGet => {
            let now = match i(0) {
                0 => H::realtime_ns(),
                1..=3 => H::now_ns(),
                _ => return Ok(EINVAL),
            };
            with_mem(
                &mut |m| status(write_bytes(m, i(2), &now.to_le_bytes())),
                mem,
            )
        }
        WasiFn::ClockResGet if !(0..=3).contains(&i(0)) => EINVAL,
        WasiFn::ClockResGet => with_mem(
            &mut |m| status(write_bytes(m, i(1), &1u64.to_le_bytes())),
            mem,
        ),
        WasiFn::RandomGet => with_mem(
            &mut |m| match range(m, i(0), i(1) as u32 as usize) {
                Some(r) => {
                    H::random(&mut m[r]);
                    SUCCESS
                }
                None => EFAULT,
            },
            mem,
        ),
        WasiFn::ProcExit => return Err(i(0)),
        WasiFn::SchedYield => SUCCESS,
        WasiFn::PollOneoff => with_mem(&mut |m| poll_oneoff(m, i(0), i(1), i(2), i(3)), mem),
    })
}

/// The wasmi type of a value type of [`FUNCS`] (which has `i32` and `i64` only).
fn wasmi_type(t: &ValType) -> wasmi::ValType {
    match t {
        ValType::I64 => wasmi::ValType::I64,
        _ => wasmi::ValType::I32,
    }
}

/// Defines the WASI subset in `linker`, plus `ENOSYS` stubs for the `stubs` the module also
/// imports.
pub(crate) fn define<H: Host>(
    linker: &mut Linker<InstanceData>,
    stubs: &[(String, FuncType)],
) -> Result<(), wasmi::Error> {
    for &(name, f, params, results) in FUNCS {
        let ty = FuncType::new(
            params.iter().map(wasmi_type),
            results.iter().map(wasmi_type),
        );
        linker.func_new(
            MODULE,
            name,
            ty,
            move |mut caller: Caller<'_, InstanceData>, args: &[Val], out: &mut [Val]| {
                let mut lanes = [0u64; 4];
                for (lane, arg) in lanes.iter_mut().zip(args) {
                    *lane = match arg {
                        Val::I32(v) => *v as u32 as u64,
                        Val::I64(v) => *v as u64,
                        _ => 0,
                    };
                }
                let (mem, data) = parts(&mut caller);
                match call::<H>(f, mem, &mut data.wasi, &lanes[..args.len().min(4)]) {
                    Ok(errno) => {
                        if let Some(r) = out.first_mut() {
                            *r = Val::I32(errno);
                        }
                        Ok(())
                    }
                    Err(code) => Err(wasmi::Error::i32_exit(code)),
                }
            },
        )?;
    }
    for (name, ty) in stubs {
        let types: Vec<wasmi::ValType> = ty.results().to_vec();
        linker.func_new(
            MODULE,
            name,
            ty.clone(),
            move |_, _, results: &mut [Val]| {
                for (i, (r, t)) in results.iter_mut().zip(&types).enumerate() {
                    *r = match (i, t) {
                        (0, wasmi::ValType::I32) => Val::I32(ENOSYS),
                        _ => Val::default_for_ty(*t),
                    };
                }
                Ok(())
            },
        )?;
    }
    Ok(())
}
