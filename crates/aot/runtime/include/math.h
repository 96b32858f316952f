/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <math.h> for wasm2c's output: the few functions Wasm's float instructions
 * need, in SSE2 (the x86-64 baseline: no roundsd, which needs SSE4.1). They
 * run inside kernel_fpu_begin/end, where MXCSR rounds to nearest even.
 * wasm2c handles NaN inputs itself before calling the rounding functions.
 */
#ifndef WASM_NATIVE_MATH_H
#define WASM_NATIVE_MATH_H

#include <linux/types.h>

#define NAN __builtin_nanf("")
#define INFINITY __builtin_inff()
#define isnan(x) __builtin_isnan(x)
#define signbit(x) __builtin_signbit(x)

static inline double fabs(double x)
{
	return __builtin_fabs(x);
}

static inline float fabsf(float x)
{
	return __builtin_fabsf(x);
}

static inline double sqrt(double x)
{
	asm("sqrtsd %1, %0" : "=x" (x) : "xm" (x));
	return x;
}

static inline float sqrtf(float x)
{
	asm("sqrtss %1, %0" : "=x" (x) : "xm" (x));
	return x;
}

/* Values this large (or infinite) are integers already. */
#define WASM_NATIVE_F64_INTEGRAL 4503599627370496.0	/* 2^52 */
#define WASM_NATIVE_F32_INTEGRAL 8388608.0f		/* 2^23 */

static inline double trunc(double x)
{
	if (!(__builtin_fabs(x) < WASM_NATIVE_F64_INTEGRAL))
		return x;
	return __builtin_copysign((double)(s64)x, x);
}

static inline float truncf(float x)
{
	if (!(__builtin_fabsf(x) < WASM_NATIVE_F32_INTEGRAL))
		return x;
	return __builtin_copysignf((float)(s32)x, x);
}

static inline double floor(double x)
{
	double t = trunc(x);

	return t > x ? t - 1.0 : t;
}

static inline float floorf(float x)
{
	float t = truncf(x);

	return t > x ? t - 1.0f : t;
}

static inline double ceil(double x)
{
	double t = trunc(x);

	return t < x ? t + 1.0 : t;
}

static inline float ceilf(float x)
{
	float t = truncf(x);

	return t < x ? t + 1.0f : t;
}

/* Adding and subtracting 2^52 (2^23) rounds to nearest even. */
static inline double nearbyint(double x)
{
	double a = __builtin_fabs(x);

	if (!(a < WASM_NATIVE_F64_INTEGRAL))
		return x;
	a = (a + WASM_NATIVE_F64_INTEGRAL) - WASM_NATIVE_F64_INTEGRAL;
	return __builtin_copysign(a, x);
}

static inline float nearbyintf(float x)
{
	float a = __builtin_fabsf(x);

	if (!(a < WASM_NATIVE_F32_INTEGRAL))
		return x;
	a = (a + WASM_NATIVE_F32_INTEGRAL) - WASM_NATIVE_F32_INTEGRAL;
	return __builtin_copysignf(a, x);
}

#endif
