// SPDX-License-Identifier: GPL-2.0
/* Sum of the primes below 10000 (5736396) and their mean gap, as a check. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	static char composite[10000];
	long sum = 0, count = 0, last = 0;

	memset(composite, 0, sizeof(composite));
	for (int i = 2; i < 10000; i++) {
		if (composite[i])
			continue;
		sum += i;
		count++;
		last = i;
		for (int j = i * i; j < 10000; j += i)
			composite[j] = 1;
	}
	printf("sum of primes below 10000 = %ld\n", sum);
	printf("mean gap = %.9f\n", (double)(last - 2) / (double)(count - 1));
	printf("args = %d\n", argc);
	return 0;
}
