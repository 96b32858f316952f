// SPDX-License-Identifier: GPL-2.0
// Sum of the primes below 10000 (5736396) and their mean gap, in D (-betterC).
extern (C) int printf(scope const char* format, ...);

__gshared bool[10_000] composite;

extern (C) int main(int argc, char** argv)
{
    long sum = 0, count = 0, last = 0;
    foreach (i; 2 .. 10_000)
    {
        if (composite[i])
            continue;
        sum += i;
        count++;
        last = i;
        for (int j = i * i; j < 10_000; j += i)
            composite[j] = true;
    }
    printf("sum of primes below 10000 = %lld\n", sum);
    printf("mean gap = %.9f\n", cast(double)(last - 2) / cast(double)(count - 1));
    printf("args = %d\n", argc);
    return 0;
}
