# SPDX-License-Identifier: GPL-2.0
# Reads `objdump -d` of the Rust object and prints the interpreter handlers that make calls.
# The handlers use the preserve_none calling convention (r12-r15 carry arguments and are not
# preserved), so where they call out objtool, which assumes the C ABI, sees callee-saved
# registers that are never restored. Like the kernel's BPF interpreter, they are annotated
# STACK_FRAME_NON_STANDARD.
/^[0-9a-f]+ <.*>:$/ {
	name = substr($2, 2, length($2) - 3)
	handler = (name ~ /executor7handler4exec/)
	next
}
handler && $2 == "call" && !(name in seen) {
	seen[name] = 1
	print name
}
