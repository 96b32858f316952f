//! Links the Rust half of wasm.ko (`libwasm_kmod.a`, built for `x86_64-unknown-none` with the
//! kernel's flags by `make rust-kmod`) so it can run in user space next to the other engines.

fn main() {
    println!("cargo:rerun-if-env-changed=WASM_KMOD_LIB");
    let lib = std::env::var("WASM_KMOD_LIB").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../kmod/rust/target/x86_64-unknown-none/release/libwasm_kmod.a"
        )
        .to_string()
    });
    let path = std::path::Path::new(&lib);
    if !path.exists() {
        panic!("{lib} does not exist: run `make rust-kmod` first");
    }
    println!("cargo:rerun-if-changed={lib}");
    let dir = path.parent().expect("library directory");
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=wasm_kmod");
}
