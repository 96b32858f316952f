# Sum of the primes below 10000 (5736396) and their mean gap.
composite = [False] * 10000
primes = []
for i in range(2, 10000):
    if composite[i]:
        continue
    primes.append(i)
    for j in range(i * i, 10000, i):
        composite[j] = True
print("sum of primes below 10000 =", sum(primes))
print("mean gap = %.9f" % ((primes[-1] - 2) / (len(primes) - 1)))
