//! The `/dev/wasm` protocol as a benchmark guest: requests go to `wasm.ko` through the device,
//! or to the same Rust code linked into this process ([`crate::kernel_build`]).

use crate::engines::{out_of, spec, values, Guest};
use crate::suite::Out;
use anyhow::{anyhow, bail, Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use wasm_proto::{Header, Request, Response, Stats, HEADER_LEN};

/// Where request frames go: one `write` per frame, the response by `read`s.
pub trait Transport {
    /// Sends one frame; returns its length or a negative errno.
    fn write(&mut self, frame: &mut [u8]) -> isize;
    /// Reads response bytes; returns how many, 0 at the end of the response.
    fn read(&mut self, buf: &mut [u8]) -> isize;
}

/// `/dev/wasm`.
pub struct Device(File);

impl Device {
    /// Opens the device.
    pub fn open() -> Result<Self> {
        let f = File::options()
            .read(true)
            .write(true)
            .open("/dev/wasm")
            .context("cannot open /dev/wasm (is wasm.ko loaded?)")?;
        Ok(Device(f))
    }
}

impl Transport for Device {
    fn write(&mut self, frame: &mut [u8]) -> isize {
        match self.0.write(frame) {
            Ok(n) => n as isize,
            Err(e) => -(e.raw_os_error().unwrap_or(5) as isize),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> isize {
        match self.0.read(buf) {
            Ok(n) => n as isize,
            Err(e) => -(e.raw_os_error().unwrap_or(5) as isize),
        }
    }
}

/// A session on a transport; the module it loaded is unloaded when it ends.
pub struct Session<T: Transport> {
    transport: T,
    loaded: Option<String>,
}

impl<T: Transport> Session<T> {
    /// A session with nothing loaded.
    pub fn new(transport: T) -> Self {
        Session {
            transport,
            loaded: None,
        }
    }

    /// Loads `wasm` as `name` with `instances` instances (0: one per CPU), no entrypoint.
    /// Returns how many instances the kernel made (at most one per possible CPU).
    pub fn load(&mut self, name: &str, wasm: &[u8], instances: u32) -> Result<u32> {
        let spec = spec(wasm);
        let mut limits = spec.limits;
        limits.instances = instances;
        match self.request(&Request::Load {
            name,
            wasm,
            entrypoint: spec.entrypoint,
            limits,
            args: Vec::new(),
            env: Vec::new(),
            replace: false,
            allow: None,
            signature: None,
            maps: Vec::new(),
        })? {
            Response::Loaded { instances, .. } => {
                self.loaded = Some(name.to_string());
                Ok(instances)
            }
            other => bail!("unexpected answer to load: {other:?}"),
        }
    }

    /// Adopts the module `name`, loaded by other means (a native module's `insmod`): calls go
    /// to it and [`Self::unload`] unloads it.
    pub fn attach(&mut self, name: &str) {
        self.loaded = Some(name.to_string());
    }

    /// Unloads the module this session loaded.
    pub fn unload(&mut self) -> Result<()> {
        if let Some(name) = self.loaded.take() {
            self.request(&Request::Unload { name: &name })?;
        }
        Ok(())
    }

    /// The device's counters.
    pub fn stats(&mut self) -> Result<Stats> {
        match self.request(&Request::Stats)? {
            Response::Stats(stats) => Ok(stats),
            other => bail!("unexpected answer to stats: {other:?}"),
        }
    }

    /// One request and its response.
    pub fn request(&mut self, req: &Request<'_>) -> Result<Response> {
        let mut frame = wasm_proto::encode(req).map_err(|e| anyhow!("encode: {e}"))?;
        let written = self.transport.write(&mut frame);
        let mut header = [0u8; HEADER_LEN];
        self.read_exact(&mut header)?;
        let h = Header::decode(&header).map_err(|e| anyhow!("response header: {e}"))?;
        let mut response = header.to_vec();
        response.resize(HEADER_LEN + h.len as usize, 0);
        self.read_exact(&mut response[HEADER_LEN..])?;
        match wasm_proto::decode(&response).map_err(|e| anyhow!("response: {e}"))? {
            Response::Error { errno, message } => bail!("{message} (errno {errno})"),
            _ if written < 0 => bail!("write failed with {written}"),
            resp => Ok(resp),
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.transport.read(&mut buf[done..]);
            if n <= 0 {
                bail!("short response ({n})");
            }
            done += n as usize;
        }
        Ok(())
    }
}

impl<T: Transport> Drop for Session<T> {
    fn drop(&mut self) {
        let _ = self.unload();
    }
}

impl<T: Transport> Guest for Session<T> {
    fn call(&mut self, function: &str, args: &[i32], times: u32) -> Result<Out> {
        let module = self.loaded.clone().context("no module loaded")?;
        let req = Request::Call {
            module: &module,
            function,
            args: values(function, args)?,
        };
        let mut last = Out::Int(0);
        for _ in 0..times {
            match self.request(&req)? {
                Response::Called { results, .. } => {
                    last = out_of(results.first().context("no result")?)?;
                }
                other => bail!("unexpected answer to call: {other:?}"),
            }
        }
        Ok(last)
    }
}
