// SPDX-License-Identifier: GPL-2.0

// Hello world in Go, for wasm.ko's WASI subset (GOOS=wasip1).
package main

import "fmt"

func main() {
	fmt.Println("Hello, world!")
}
