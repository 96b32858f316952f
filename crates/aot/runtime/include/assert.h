/* SPDX-License-Identifier: GPL-2.0 */
/* <assert.h> for wasm2c's output: its asserts check the runtime's own invariants. */
#ifndef WASM_NATIVE_ASSERT_H
#define WASM_NATIVE_ASSERT_H

#include <asm/bug.h>

#define assert(x) WARN_ON_ONCE(!(x))

#endif
