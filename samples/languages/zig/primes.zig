// SPDX-License-Identifier: GPL-2.0
// Sum of the primes below 10000 (5736396) and their mean gap.
const std = @import("std");

pub fn main() void {
    var composite: [10000]bool = @splat(false);
    var sum: u64 = 0;
    var count: u64 = 0;
    var last: u64 = 0;
    var i: usize = 2;
    while (i < 10000) : (i += 1) {
        if (composite[i]) continue;
        sum += i;
        count += 1;
        last = i;
        var j: usize = i * i;
        while (j < 10000) : (j += i) composite[j] = true;
    }
    const gap = @as(f64, @floatFromInt(last - 2)) / @as(f64, @floatFromInt(count - 1));
    std.debug.print("sum of primes below 10000 = {d}\n", .{sum});
    std.debug.print("mean gap = {d:.9}\n", .{gap});
}
