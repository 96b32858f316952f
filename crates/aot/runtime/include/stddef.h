/* SPDX-License-Identifier: GPL-2.0 */
/* <stddef.h> for wasm2c's output: the kernel's definitions. */
#ifndef WASM_NATIVE_STDDEF_H
#define WASM_NATIVE_STDDEF_H

#include <linux/stddef.h>
#include <linux/types.h>

#endif
