// Sum of the primes below 10000 (5736396) and their mean gap.
const composite = new StaticArray<bool>(10000);
let sum: i64 = 0;
let count: i64 = 0;
let last: i64 = 0;
for (let i = 2; i < 10000; i++) {
  if (composite[i]) continue;
  sum += i;
  count++;
  last = i;
  for (let j = i * i; j < 10000; j += i) composite[j] = true;
}
console.log("sum of primes below 10000 = " + sum.toString());
const gap = <f64>(last - 2) / <f64>(count - 1);
console.log("mean gap = " + gap.toString());
