/* SPDX-License-Identifier: GPL-2.0 */
/* <stdint.h> for wasm2c's output: the kernel's fixed-width types and C's limits. */
#ifndef WASM_NATIVE_STDINT_H
#define WASM_NATIVE_STDINT_H

#include <linux/limits.h>
#include <linux/types.h>

#define INT32_MIN S32_MIN
#define INT32_MAX S32_MAX
#define UINT32_MAX U32_MAX
#define INT64_MIN S64_MIN
#define INT64_MAX S64_MAX
#define UINT64_MAX U64_MAX

#endif
