/* SPDX-License-Identifier: GPL-2.0 */
/* <alloca.h> for wasm2c's output. */
#ifndef WASM_NATIVE_ALLOCA_H
#define WASM_NATIVE_ALLOCA_H

#define alloca __builtin_alloca

#endif
