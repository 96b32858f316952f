// Sum of the primes below 10000 (5736396) and their mean gap.
const composite = new Array(10000).fill(false);
let sum = 0, count = 0, last = 0;
for (let i = 2; i < 10000; i++) {
  if (composite[i]) continue;
  sum += i; count++; last = i;
  for (let j = i * i; j < 10000; j += i) composite[j] = true;
}
print("sum of primes below 10000 = " + sum);
print("mean gap = " + ((last - 2) / (count - 1)).toFixed(9));
