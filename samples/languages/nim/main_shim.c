// SPDX-License-Identifier: GPL-2.0
/*
 * Nim's generated main takes (argc, argv, env) while WASI's start code calls
 * main(argc, argv): build with --noMain and enter Nim here. WASI programs are
 * single-threaded, so stdio locking is a no-op (wasi-libc has no flockfile).
 * Nim calls them without a prototype, as int f(): they must return int.
 */
#include <stdio.h>

extern int cmdCount;
extern char **cmdLine;
extern char **gEnv;
void NimMain(void);

int flockfile(FILE *f)
{
	(void)f;
	return 0;
}

int funlockfile(FILE *f)
{
	(void)f;
	return 0;
}

int main(int argc, char **argv)
{
	cmdCount = argc;
	cmdLine = argv;
	gEnv = 0;
	NimMain();
	return 0;
}
