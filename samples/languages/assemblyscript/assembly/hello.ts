// Hello world in AssemblyScript, with the WASI shim.
console.log("Hello, world!");
