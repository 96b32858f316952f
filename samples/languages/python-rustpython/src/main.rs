//! Python in the kernel: RustPython (without its standard library) runs the script given as
//! the first argument (`wasmctl load python.wasm --arg "print(1 + 1)"`).

use rustpython_vm::{compiler::Mode, Interpreter};

fn main() {
    let Some(source) = std::env::args().nth(1) else {
        eprintln!("usage: python SCRIPT");
        std::process::exit(2);
    };
    let code = Interpreter::without_stdlib(Default::default()).enter(|vm| {
        let scope = vm.new_scope_with_builtins();
        let run = vm
            .compile(&source, Mode::Exec, "<script>".to_owned())
            .map_err(|e| vm.new_syntax_error(&e, Some(&source)))
            .and_then(|code| vm.run_code_obj(code, scope));
        match run {
            Ok(_) => 0,
            Err(e) => {
                vm.print_exception(e);
                1
            }
        }
    });
    std::process::exit(code);
}
