// SPDX-License-Identifier: GPL-2.0
// Sum of the primes below 10000 (5736396) and their mean gap, with the C++ library.
#include <cstdio>
#include <numeric>
#include <vector>

int main(int argc, char **)
{
	std::vector<bool> composite(10000);
	std::vector<long> primes;
	for (long i = 2; i < 10000; i++) {
		if (composite[i])
			continue;
		primes.push_back(i);
		for (long j = i * i; j < 10000; j += i)
			composite[j] = true;
	}
	long sum = std::accumulate(primes.begin(), primes.end(), 0L);
	std::printf("sum of primes below 10000 = %ld\n", sum);
	std::printf("mean gap = %.9f\n",
		    double(primes.back() - 2) / double(primes.size() - 1));
	std::printf("args = %d\n", argc);
	return 0;
}
