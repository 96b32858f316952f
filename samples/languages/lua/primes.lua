local composite, sum, count, last = {}, 0, 0, 0 -- sum of the primes below 10000 (5736396)
for i = 2, 9999 do
  if not composite[i] then
    sum = sum + i; count = count + 1; last = i
    for j = i * i, 9999, i do composite[j] = true end
  end
end
print("sum of primes below 10000 = " .. sum)
print(string.format("mean gap = %.9f", (last - 2) / (count - 1)))
