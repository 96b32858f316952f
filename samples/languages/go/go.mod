module wasmkm.example/guests

go 1.23
