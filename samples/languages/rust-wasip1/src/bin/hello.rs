//! Hello world with Rust's standard library on WASI.
fn main() {
    println!("Hello, world!");
}
