/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Debian's wasi-libc has no setjmp, and wasmi no exception handling: Lua is
 * built with LUAI_THROW = abort() (a Lua error ends the program) and only
 * needs this header to exist for ldo.c.
 */
#ifndef WASM_LUA_SETJMP_H
#define WASM_LUA_SETJMP_H
typedef int jmp_buf[1];
#endif
