//! JavaScript in the kernel: the Boa engine runs the script given as the first argument
//! (`wasmctl load js.wasm --arg "print(1 + 1)"`); `print(...)` writes a line to stdout.

use boa_engine::{js_string, native_function::NativeFunction, Context, JsResult, JsValue, Source};

/// `print(a, b, ...)`: the arguments as strings, space-separated, on one line.
fn print(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let parts = args
        .iter()
        .map(|a| a.to_string(ctx).map(|s| s.to_std_string_escaped()))
        .collect::<JsResult<Vec<_>>>()?;
    println!("{}", parts.join(" "));
    Ok(JsValue::undefined())
}

fn main() {
    let Some(script) = std::env::args().nth(1) else {
        eprintln!("usage: js SCRIPT");
        std::process::exit(2);
    };
    let mut context = Context::default();
    if let Err(e) = context.register_global_builtin_callable(
        js_string!("print"),
        1,
        NativeFunction::from_fn_ptr(print),
    ) {
        eprintln!("cannot define print: {e}");
        std::process::exit(1);
    }
    if let Err(e) = context.eval(Source::from_bytes(script.as_bytes())) {
        eprintln!("uncaught: {e}");
        std::process::exit(1);
    }
}
