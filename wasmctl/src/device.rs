//! The `/dev/wasm` client: one request frame per `write(2)`, the response by `read(2)`.

use anyhow::{anyhow, bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::Path;
use wasm_proto::{errno, Header, Request, Response, HEADER_LEN, MAX_REQUEST_LEN};

/// An open `/dev/wasm`.
pub struct Device {
    file: File,
}

/// The name of an errno the protocol uses, for messages.
fn errno_name(e: i32) -> &'static str {
    match e {
        errno::ENOENT => "ENOENT",
        errno::EINTR => "EINTR",
        errno::E2BIG => "E2BIG",
        errno::ENOEXEC => "ENOEXEC",
        errno::ENOMEM => "ENOMEM",
        errno::EACCES => "EACCES",
        errno::EFAULT => "EFAULT",
        errno::EBUSY => "EBUSY",
        errno::EEXIST => "EEXIST",
        errno::EINVAL => "EINVAL",
        errno::ENODATA => "ENODATA",
        errno::ETIME => "ETIME",
        errno::ENOLINK => "ENOLINK",
        errno::EPROTO => "EPROTO",
        errno::ENOSPC => "ENOSPC",
        errno::EPERM => "EPERM",
        errno::EOPNOTSUPP => "EOPNOTSUPP",
        errno::EKEYREJECTED => "EKEYREJECTED",
        _ => "error",
    }
}

impl Device {
    /// Opens the device, explaining the usual failures.
    pub fn open(path: &Path) -> Result<Device> {
        match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => Ok(Device { file }),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(anyhow!(
                "{} does not exist: load the kernel module first (make insmod, or insmod wasm.ko)",
                path.display()
            )),
            Err(e) if e.kind() == ErrorKind::PermissionDenied || e.raw_os_error() == Some(1) => {
                Err(anyhow!(
                    "permission denied opening {}: it is root-only (mode 0600 and CAP_SYS_ADMIN); run as root, e.g. with sudo",
                    path.display()
                ))
            }
            Err(e) => Err(e).with_context(|| format!("cannot open {}", path.display())),
        }
    }

    /// Sends one request and returns the kernel's answer; an error answer becomes `Err`.
    pub fn request(&mut self, req: &Request<'_>) -> Result<Response> {
        let frame = wasm_proto::encode(req).map_err(|e| anyhow!("cannot encode request: {e}"))?;
        if frame.len() > MAX_REQUEST_LEN {
            bail!(
                "request of {} bytes is larger than the kernel accepts ({MAX_REQUEST_LEN} bytes) (E2BIG)",
                frame.len()
            );
        }
        let written = self.file.write(&frame);
        let response = self.read_response();
        match (written, response) {
            (_, Ok(Response::Error { errno, message })) if message.is_empty() => {
                bail!(
                    "the request failed, and the kernel had no memory left to say why ({})",
                    errno_name(errno)
                )
            }
            (_, Ok(Response::Error { errno, message })) => {
                bail!("{message} ({})", errno_name(errno))
            }
            (Ok(_), Ok(resp)) => Ok(resp),
            (Err(e), _) => Err(e).context("the kernel refused the request"),
            (Ok(_), Err(e)) => Err(e),
        }
    }

    fn read_response(&mut self) -> Result<Response> {
        let mut header = [0u8; HEADER_LEN];
        self.file
            .read_exact(&mut header)
            .context("cannot read the response header")?;
        let h = Header::decode(&header).map_err(|e| anyhow!("bad response: {e}"))?;
        let mut frame = header.to_vec();
        frame.resize(HEADER_LEN + h.len as usize, 0);
        self.file
            .read_exact(&mut frame[HEADER_LEN..])
            .context("cannot read the response payload")?;
        wasm_proto::decode(&frame).map_err(|e| anyhow!("bad response: {e}"))
    }
}
