// SPDX-License-Identifier: GPL-2.0
// Hello world in Zig for WASI (std.debug.print writes to stderr).
const std = @import("std");

pub fn main() void {
    std.debug.print("Hello, world!\n", .{});
}
