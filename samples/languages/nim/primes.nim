# SPDX-License-Identifier: GPL-2.0
# Sum of the primes below 10000 (5736396) and their mean gap.
import std/strformat
var composite: array[10000, bool]
var sum, count, last = 0
for i in 2 ..< 10000:
  if composite[i]: continue
  sum += i
  inc count
  last = i
  var j = i * i
  while j < 10000:
    composite[j] = true
    j += i
echo "sum of primes below 10000 = ", sum
echo &"mean gap = {float(last - 2) / float(count - 1):.9f}"
