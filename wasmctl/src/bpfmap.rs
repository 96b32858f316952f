//! Opening BPF maps for `wasmctl load --map`: by id or by pinned path, with the bpf(2)
//! system call. The file descriptors go with the load request; the kernel takes its own
//! references, so they are closed afterwards.

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;

/// `union bpf_attr`, as large as the commands used here need.
#[repr(C, align(8))]
#[derive(Default)]
struct Attr([u8; 16]);

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> Result<OwnedFd, std::io::Error> {
    // SAFETY: `attr` is a valid, zero-padded `union bpf_attr` prefix of the given size for
    // both commands; the kernel only reads it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut Attr,
            std::mem::size_of::<Attr>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new file descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Opens the map `spec`: a map id (`42`) or a path under a BPF filesystem
/// (`/sys/fs/bpf/blocked`).
pub fn open(spec: &str) -> Result<OwnedFd> {
    let mut attr = Attr::default();
    if let Ok(id) = spec.parse::<u32>() {
        attr.0[..4].copy_from_slice(&id.to_ne_bytes());
        return bpf(BPF_MAP_GET_FD_BY_ID, &mut attr)
            .with_context(|| format!("cannot open BPF map id {id}"));
    }
    if !spec.starts_with('/') {
        bail!("--map takes a map id or the absolute path of a pinned map, not '{spec}'");
    }
    let path = CString::new(spec).context("a path without NUL bytes")?;
    attr.0[..8].copy_from_slice(&(path.as_ptr() as u64).to_ne_bytes());
    bpf(BPF_OBJ_GET, &mut attr).with_context(|| format!("cannot open the pinned BPF map {spec}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn specs_that_are_neither_ids_nor_paths_are_refused() {
        let e = super::open("blocked").unwrap_err();
        assert!(e.to_string().contains("map id or the absolute path"), "{e}");
    }
}
