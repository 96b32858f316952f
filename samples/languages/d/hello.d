// SPDX-License-Identifier: GPL-2.0
// Hello world in D (-betterC) on wasi-libc.
extern (C) int printf(scope const char* format, ...);

extern (C) int main()
{
    printf("Hello, world!\n");
    return 0;
}
