/* SPDX-License-Identifier: GPL-2.0 */
/* <string.h> for wasm2c's output: the kernel's memcpy, memmove and memset. */
#ifndef WASM_NATIVE_STRING_H
#define WASM_NATIVE_STRING_H

#include <linux/string.h>

#endif
