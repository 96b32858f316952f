// SPDX-License-Identifier: GPL-2.0

// Sum of the primes below 10000 (5736396) and their mean gap, with a goroutine and a sleep.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	result := make(chan []int)
	go func() {
		composite := make([]bool, 10000)
		var primes []int
		for i := 2; i < 10000; i++ {
			if composite[i] {
				continue
			}
			primes = append(primes, i)
			for j := i * i; j < 10000; j += i {
				composite[j] = true
			}
		}
		time.Sleep(time.Millisecond)
		result <- primes
	}()
	primes := <-result
	sum := 0
	for _, p := range primes {
		sum += p
	}
	fmt.Printf("sum of primes below 10000 = %d\n", sum)
	fmt.Printf("mean gap = %.9f\n", float64(primes[len(primes)-1]-2)/float64(len(primes)-1))
	fmt.Printf("args = %d\n", len(os.Args))
}
