//! The whole compilation: Wasm in, a kernel module (`.ko`) out.
//!
//! 1. [`crate::fuel::instrument`] validates the module and inserts fuel metering;
//! 2. wabt's `wasm2c` translates the result to C (`m.c`, `m.h`), and
//!    [`crate::wasm2c::adapt`] rewrites what costs the kernel's code its speed;
//! 3. [`crate::glue::generate`] writes `native.c` around it;
//! 4. Kbuild builds the module against the given kernel tree, with the kernel runtime of
//!    [`RUNTIME`] and the symbol versions of wasm.ko (its `Module.symvers`);
//! 5. the module is stripped of debug information and, given a key, signed.
//!
//! Everything happens in a build directory of the caller's choosing, which keeps the
//! generated sources for inspection.

use crate::{fuel, glue, wasm2c};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The kernel runtime of the generated code: `(path in the build directory, contents)`.
pub const RUNTIME: &[(&str, &str)] = &[
    ("wasm-rt.h", include_str!("../runtime/wasm-rt.h")),
    ("wasm-rt-impl.h", include_str!("../runtime/wasm-rt-impl.h")),
    ("wasm_native.h", include_str!("../../../kmod/wasm_native.h")),
    (
        "include/alloca.h",
        include_str!("../runtime/include/alloca.h"),
    ),
    (
        "include/assert.h",
        include_str!("../runtime/include/assert.h"),
    ),
    ("include/math.h", include_str!("../runtime/include/math.h")),
    (
        "include/stddef.h",
        include_str!("../runtime/include/stddef.h"),
    ),
    (
        "include/stdint.h",
        include_str!("../runtime/include/stdint.h"),
    ),
    (
        "include/string.h",
        include_str!("../runtime/include/string.h"),
    ),
];

/// The object holding the generated code; no module may take its name.
const OBJECT: &str = "wasm_native_code";

/// Flags the kernel compiles with that forbid floating point, removed for modules that use it.
const NO_FPU_FLAGS: &str = "-mno-sse -mno-mmx -mno-sse2 -mno-3dnow -mno-avx -mno-80387 \
                            -mno-fp-ret-in-387";

/// What to compile and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Wasm module.
    pub wasm: Vec<u8>,
    /// The registry name the module registers under.
    pub name: String,
    /// The kernel module's name (`[A-Za-z0-9_]`), which is the `.ko` file's stem.
    pub module: String,
    /// The kernel build tree (`/lib/modules/$(uname -r)/build`).
    pub kdir: PathBuf,
    /// wasm.ko's `Module.symvers`, for the versions of the symbols the module uses.
    pub symvers: PathBuf,
    /// The build directory (created; its previous contents are replaced).
    pub build_dir: PathBuf,
    /// The `wasm2c` to run.
    pub wasm2c: PathBuf,
    /// A private key and its X.509 certificate to sign the module with (the kernel's
    /// `scripts/sign-file`), as for any module on a host that enforces signatures.
    pub sign: Option<(PathBuf, PathBuf)>,
    /// Keep the debug information Kbuild compiles in (ten times the module's size), as
    /// distributions ship modules without it.
    pub keep_debug: bool,
}

/// Why a compilation failed.
#[derive(Debug)]
pub enum Error {
    /// A name that cannot be used.
    BadName(String),
    /// The module cannot be instrumented (invalid, or importing the reserved module).
    Fuel(fuel::Error),
    /// `native.c` cannot be generated.
    Glue(glue::Error),
    /// wasm2c's output is not what [`wasm2c::adapt`] rewrites.
    Wasm2c(wasm2c::Error),
    /// A tool failed: what ran, and its output.
    Tool(String, String),
    /// Reading or writing a file failed.
    Io(PathBuf, io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadName(why) => f.write_str(why),
            Error::Fuel(e) => e.fmt(f),
            Error::Glue(e) => e.fmt(f),
            Error::Wasm2c(e) => e.fmt(f),
            Error::Tool(what, output) => write!(f, "{what} failed:\n{output}"),
            Error::Io(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

/// The result of a compilation.
#[derive(Debug)]
pub struct Compiled {
    /// The kernel module built (in the build directory).
    pub ko: PathBuf,
    /// Whether the code uses floating point (calls then run inside `kernel_fpu_begin/end`).
    pub fpu: bool,
    /// Bytes of C that wasm2c and the generator wrote.
    pub c_bytes: u64,
    /// The size of the module's memory in bytes, if it cannot grow (its accesses are then
    /// checked against a constant, [`wasm2c`]'s rewrite 6).
    pub fixed_memory: Option<u64>,
    /// Whether the module was signed.
    pub signed: bool,
}

fn write(path: &Path, contents: &[u8]) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
    }
    fs::write(path, contents).map_err(|e| Error::Io(path.to_path_buf(), e))
}

fn run(cmd: &mut Command, what: &str) -> Result<(), Error> {
    let out = cmd
        .output()
        .map_err(|e| Error::Tool(what.to_string(), e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Err(Error::Tool(what.to_string(), text))
    }
}

/// Checks a kernel module name: 1 to 55 bytes of `[A-Za-z0-9_]`, not one wasm.ko uses.
pub fn check_module_name(module: &str) -> Result<(), Error> {
    if module.is_empty()
        || module.len() > 55
        || !module
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(Error::BadName(format!(
            "the kernel module name {module:?} must be 1 to 55 letters, digits or underscores"
        )));
    }
    if module == "wasm" || module == OBJECT {
        return Err(Error::BadName(format!(
            "the kernel module name {module:?} is taken by wasm.ko"
        )));
    }
    Ok(())
}

/// Compiles `opts.wasm` into `opts.build_dir/<module>.ko`.
///
/// # Errors
///
/// See [`Error`]: the message says which step failed and why.
pub fn compile(opts: &Options) -> Result<Compiled, Error> {
    check_module_name(&opts.module)?;
    let instrumented = fuel::instrument(&opts.wasm).map_err(Error::Fuel)?;
    let dir = &opts.build_dir;
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| Error::Io(dir.clone(), e))?;
    }
    write(&dir.join("m.wasm"), &instrumented)?;
    run(
        Command::new(&opts.wasm2c)
            .arg(dir.join("m.wasm"))
            .args(["-n", glue::PREFIX, "-o"])
            .arg(dir.join("m.c")),
        "wasm2c",
    )?;
    let source_path = dir.join("m.c");
    let source = fs::read_to_string(&source_path).map_err(|e| Error::Io(source_path.clone(), e))?;
    let fixed_memory = wasm2c::fixed_sizes(&source).first().map(|(_, size)| *size);
    let source = wasm2c::adapt(&source).map_err(Error::Wasm2c)?;
    write(&source_path, source.as_bytes())?;
    let header_path = dir.join("m.h");
    let header = fs::read_to_string(&header_path).map_err(|e| Error::Io(header_path.clone(), e))?;
    let glue = glue::generate(&instrumented, &header, &opts.name, opts.wasm.len() as u64)
        .map_err(Error::Glue)?;
    write(&dir.join(format!("{OBJECT}.c")), glue.source.as_bytes())?;
    for (path, contents) in RUNTIME {
        write(&dir.join(path), contents.as_bytes())?;
    }
    let mut kbuild = format!(
        "# SPDX-License-Identifier: GPL-2.0\n\
         obj-m := {module}.o\n\
         {module}-y := {OBJECT}.o\n\
         # wasm2c's helpers are defined whether the module uses them or not. Small functions\n\
         # are inlined more readily: WebAssembly 1.0 makes calls to compiler-rt's few-line\n\
         # functions of what a native build does in instructions (128-bit multiplication).\n\
         ccflags-y := -O3 --param=max-inline-insns-auto=40 -I$(src)/include \\\n\
         \t-Wno-unused-function -Wno-unused-value -Wno-unused-but-set-variable \\\n\
         \t-Wno-missing-prototypes -Wno-missing-declarations\n",
        module = opts.module
    );
    if glue.fpu {
        kbuild.push_str(&format!(
            "CFLAGS_REMOVE_{OBJECT}.o := {NO_FPU_FLAGS}\nCFLAGS_{OBJECT}.o := -msse -msse2\n"
        ));
    }
    write(&dir.join("Kbuild"), kbuild.as_bytes())?;
    let c_bytes = [dir.join("m.c"), dir.join(format!("{OBJECT}.c"))]
        .iter()
        .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let abs = |p: &Path| fs::canonicalize(p).map_err(|e| Error::Io(p.to_path_buf(), e));
    run(
        Command::new("make")
            .arg("-C")
            .arg(abs(&opts.kdir)?)
            .arg(format!("M={}", abs(dir)?.display()))
            .arg(format!(
                "KBUILD_EXTRA_SYMBOLS={}",
                abs(&opts.symvers)?.display()
            ))
            .arg("modules"),
        "the kernel build",
    )?;
    let ko = dir.join(format!("{}.ko", opts.module));
    if !opts.keep_debug {
        run(Command::new("strip").arg("--strip-debug").arg(&ko), "strip")?;
    }
    if let Some((key, cert)) = &opts.sign {
        run(
            Command::new(abs(&opts.kdir)?.join("scripts/sign-file"))
                .arg("sha256")
                .arg(key)
                .arg(cert)
                .arg(&ko),
            "scripts/sign-file",
        )?;
        if !signed(&ko)? {
            return Err(Error::Tool(
                "scripts/sign-file".to_string(),
                format!("{} carries no signature afterwards", ko.display()),
            ));
        }
    }
    Ok(Compiled {
        ko,
        fpu: glue.fpu,
        c_bytes,
        fixed_memory,
        signed: opts.sign.is_some(),
    })
}

/// The marker the kernel's module signature ends with.
const SIGNATURE_MARKER: &[u8] = b"~Module signature appended~\n";

/// Whether the module file `ko` carries an appended signature.
///
/// # Errors
///
/// [`Error::Io`] if it cannot be read.
pub fn signed(ko: &Path) -> Result<bool, Error> {
    let bytes = fs::read(ko).map_err(|e| Error::Io(ko.to_path_buf(), e))?;
    Ok(bytes.ends_with(SIGNATURE_MARKER))
}
