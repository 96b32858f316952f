#!/bin/sh
# VM scenarios for wasm.ko. Each check prints "VMTEST PASS name" or "VMTEST FAIL name: why";
# the last line is "VMTEST SUMMARY passed=N failed=M". The harness (xtask) also fails the run
# on any BUG:/WARNING:/Oops/Call Trace in the console.
W=/bin/wasmctl
G=/guests
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "VMTEST PASS $1"; }
ko() { failed=$((failed + 1)); echo "VMTEST FAIL $1: $2"; }
run() { OUT=$("$@" 2>&1); RC=$?; }
# expect_ok NAME REGEX CMD...: CMD succeeds and its output matches REGEX.
expect_ok() {
	name=$1 pat=$2; shift 2; run "$@"
	if [ "$RC" -eq 0 ] && echo "$OUT" | grep -q -E -- "$pat"; then ok "$name"; else ko "$name" "rc=$RC: $OUT"; fi
}
# expect_fail NAME REGEX CMD...: CMD fails and its output matches REGEX.
expect_fail() {
	name=$1 pat=$2; shift 2; run "$@"
	if [ "$RC" -ne 0 ] && echo "$OUT" | grep -q -E -- "$pat"; then ok "$name"; else ko "$name" "rc=$RC: $OUT"; fi
}
expect_klog() {
	if dmesg | grep -q -F -- "$2"; then ok "$1"; else ko "$1" "kernel log lacks '$2'"; fi
}
modules() { $W stats | awk '/^modules/ { print $2 }'; }
live() { $W stats | awk '/^live allocations/ { print $3 }'; }
finish() { echo "VMTEST SUMMARY passed=$passed failed=$failed"; exit 0; }

# --- module and device --------------------------------------------------------------------
if insmod /lib/wasm.ko; then ok insmod; else ko insmod "insmod failed"; finish; fi
if [ -c /dev/wasm ] && [ "$(stat -c %a /dev/wasm)" = 600 ]; then ok device-root-only; else ko device-root-only "$(ls -l /dev/wasm)"; fi
expect_ok version "protocol v5" $W version
expect_ok version-ebpf-available "^eBPF calls available \(kfuncs registered\)$" $W version
expect_ok version-json-ebpf '"ebpf":\{"available":true' $W version --json
base=$(live)
echo "VMTEST INFO live allocations at start: $base"

# --- hello world --------------------------------------------------------------------------
expect_ok hello-load "loaded hello-world: 2 instances, entrypoint returned 0" \
	$W load $G/hello_world_rust.wasm --name hello-world
expect_klog hello-kernel-log "Hello, world!"
expect_klog hello-command-log "wasm: command load"
expect_klog hello-entrypoint-log "wasm: calling module entrypoint: main"
expect_klog hello-import-log "wasm:     import -> env._debug(2) -> 1"
expect_klog hello-function-log "wasm:     function -> main(2) -> 1"
if [ "$(dmesg | grep -c 'Hello, world!')" = 2 ]; then ok hello-once-per-cpu; else ko hello-once-per-cpu "$(dmesg | grep -c 'Hello, world!') lines"; fi
run $W list
if [ "$RC" = 0 ] && [ "$(echo "$OUT" | grep -c '^  cpu ')" = 2 ] && echo "$OUT" | grep -q '^  cpu 1 '; then
	ok list-per-cpu-instances
else
	ko list-per-cpu-instances "$OUT"
fi
hello_sha=$(sha256sum $G/hello_world_rust.wasm | cut -d' ' -f1)
expect_ok list-sha256 "^  sha256   $hello_sha$" $W list
expect_ok list-json '"imports":\[\{"name":"env._debug","params":\["i32","i32"\],"results":\["i32"\]\}\]' $W list --json

# --- floats and typed calls ---------------------------------------------------------------
expect_ok probe-load "loaded probe: 2 instances" $W load $G/probe.wasm --fuel 20000000
$W run $G/probe.wasm > /tmp/user.txt
dmesg | grep -o 'probe: .*' | head -n "$(wc -l < /tmp/user.txt)" > /tmp/kernel.txt
if [ -s /tmp/user.txt ] && cmp -s /tmp/user.txt /tmp/kernel.txt; then ok float-kernel-equals-user; else ko float-kernel-equals-user "$(cat /tmp/kernel.txt /tmp/user.txt)"; fi
if grep -q -F "probe: 0.1 + 0.2 = 0.30000000000000004" /tmp/kernel.txt &&
	grep -q -F "probe: 1/3 f32 = 0.33333334 bits 0x3eaaaaab" /tmp/kernel.txt &&
	grep -q -F "probe: basel(10000) = 1.644834071848065" /tmp/kernel.txt; then
	ok float-exact
else
	ko float-exact "$(cat /tmp/kernel.txt)"
fi
expect_ok call-i32 "^42$" $W call probe add 2 40
expect_ok call-i32-negative "^-5$" $W call probe add -2 -3
expect_ok call-i64 "^12884901888$" $W call probe mul64 4294967296 3
expect_ok call-i128-high "^4611686018427387903$" $W call probe mul_hi 9223372036854775807 9223372036854775807
expect_ok call-i128-high-of-min "^4611686018427387904$" $W call probe mul_hi -9223372036854775808 -9223372036854775808
expect_ok call-i128-high-negative "^-1$" $W call probe mul_hi -3 7
expect_ok call-f64 "^5.0$" $W call probe hypot 3 4
expect_ok call-f32 "^0.25$" $W call probe quarter 1
expect_ok call-json '"results":\[\{"type":"i32","value":42\}\]' $W --json call probe add 2 40
# --repeat makes N calls (the instances count them), --time summarises their durations.
probe_calls() { $W list | awk '/^[^ ]/ { p = ($1 == "probe") } p && $1 == "cpu" { n += $4 } END { print n }'; }
c0=$(probe_calls)
expect_ok call-repeat-time "^time: 5 request\(s\), median [0-9]+ ns, min [0-9]+ ns, max [0-9]+ ns$" \
	$W call probe add 2 40 --repeat 5 --time
c1=$(probe_calls)
if [ $((c1 - c0)) -eq 5 ] && [ "$(echo "$OUT" | head -1)" = 42 ]; then ok call-repeat-counts; else ko call-repeat-counts "calls $c0 -> $c1: $OUT"; fi
expect_ok call-cpu-import "^[01]$" $W call probe cpu
expect_fail call-bad-arity "takes 2 argument" $W call probe add 1
expect_fail call-unknown-function "exports no function 'nope'" $W call probe nope
expect_fail call-unknown-module "no module named 'nosuch'" $W call nosuch f
expect_fail unload-unknown "no module named 'nosuch' is loaded \(ENOENT\)" $W unload nosuch

# --- runaway, trapping and deep guests ------------------------------------------------------
expect_fail endless-out-of-fuel "ran out of fuel \(budget 20000000\) \(ETIME\)" $W call probe spin
expect_ok responsive-after-endless "^2$" $W call probe add 1 1
if $W list | grep -q -E 'traps 1 '; then ok endless-counted-as-trap; else ko endless-counted-as-trap "$($W list)"; fi
expect_fail trap-unreachable "trapped.*unreachable.*\(EFAULT\)" $W call probe boom
expect_fail trap-out-of-bounds "trapped: out of bounds memory access \(EFAULT\)" $W call probe peek 2147483647
expect_ok in-bounds-read "^-?[0-9]+$" $W call probe peek 1024
mem=$($W stats --prometheus | awk '/^wasm_instance_memory_bytes\{module="probe",cpu="0"\}/ { print $2 }')
expect_ok last-word-in-bounds "^-?[0-9]+$" $W call probe peek $((mem - 4))
expect_fail one-past-the-end-traps "out of bounds memory access" $W call probe peek $((mem - 3))
# memory.grow in a callee, then a write and read of the new last word: in bounds at once.
expect_ok grow-then-use-the-new-end "^$((mem + 65536))$" $W call probe grow 1
expect_ok grow-past-the-memory-limit-fails "^-1$" $W call probe grow 2000
expect_fail deep-recursion-traps "call stack exhausted" $W call probe recurse 100000
expect_ok recursion-5000 "^5000$" $W call probe recurse 5000
expect_ok forever-load "loaded forever" $W load $G/probe.wasm --name forever --entrypoint "" --fuel 1000000000000000
$W call forever spin > /tmp/spin.txt 2>&1 &
pid=$!
sleep 3
if kill -0 "$pid" 2>/dev/null; then ok endless-still-running; else ko endless-still-running "$(cat /tmp/spin.txt)"; fi
expect_ok responsive-during-endless "^7$" $W call probe add 3 4
kill -9 "$pid"
wait "$pid"
rc=$?
if [ "$rc" = 137 ]; then ok endless-killable; else ko endless-killable "exit $rc"; fi
sleep 1
expect_ok instance-free-after-kill "^3$" $W call forever add 1 2

# --- bad input changes nothing ------------------------------------------------------------
n=$(modules)
head -c 4096 /dev/urandom > /tmp/garbage.wasm
expect_fail malformed-module "invalid WebAssembly module.*\(ENOEXEC\)" $W load /tmp/garbage.wasm --name garbage
printf '\000asm\001\000\000\000\001\377' > /tmp/truncated.wasm
expect_fail truncated-module "invalid WebAssembly module" $W load /tmp/truncated.wasm --name truncated
expect_fail duplicate-name "already loaded \(EEXIST\)" $W load $G/hello_world_rust.wasm --name hello-world
expect_fail bad-name "invalid module name" $W load $G/hello_world_rust.wasm --name "bad name"
expect_fail memory-limit "memory limit.*\(ENOMEM\)" $W load $G/probe.wasm --name small --memory 64K
dd if=/dev/zero of=/tmp/big.wasm bs=1M count=17 2>/dev/null
expect_fail oversized-client "larger than the kernel accepts" $W load /tmp/big.wasm --name big
expect_fail oversized-kernel "Argument list too long" dd if=/tmp/big.wasm of=/dev/wasm bs=17M count=1
expect_fail garbage-frame "Invalid argument" dd if=/tmp/garbage.wasm of=/dev/wasm bs=4096 count=1
if [ "$(modules)" = "$n" ]; then ok bad-input-changes-nothing; else ko bad-input-changes-nothing "$(modules) modules, was $n"; fi
expect_ok still-callable "^42$" $W call probe add 40 2

# --- access control -----------------------------------------------------------------------
mkdir -p /etc
echo "nobody:x:65534:65534:nobody:/:/bin/sh" > /etc/passwd
echo "nogroup:x:65534:" > /etc/group
expect_fail nonroot-refused "permission denied.*root-only" su -s /bin/sh nobody -c "$W list"
chmod 666 /dev/wasm
expect_fail nonroot-needs-cap-sys-admin "permission denied" su -s /bin/sh nobody -c "$W list"
chmod 600 /dev/wasm

# --- unload frees everything --------------------------------------------------------------
expect_ok unload "unloaded hello-world" $W unload hello-world
if $W list | grep -q hello-world; then ko unload-gone "hello-world still listed"; else ok unload-gone; fi
$W unload probe > /dev/null
$W unload forever > /dev/null
if [ "$(live)" = "$base" ] && [ "$(modules)" = 0 ]; then ok unload-frees-everything; else ko unload-frees-everything "live $(live), was $base"; fi

# --- kernel stack budget ------------------------------------------------------------------
# "stack peak load   task 3400   work 21000": task-stack and dedicated-stack peaks per request.
$W stats | sed -n 's/^stack peak /VMTEST STACK /p'
for op in version load unload list call stats; do
	task=$($W stats | awk -v op="$op" '$1 == "stack" && $3 == op { print $5 }')
	work=$($W stats | awk -v op="$op" '$1 == "stack" && $3 == op { print $7 }')
	if [ "$task" -gt 0 ] && [ "$task" -lt 10240 ]; then ok "stack-$op-task-under-10k"; else ko "stack-$op-task-under-10k" "$task bytes"; fi
	if [ "$work" -gt 0 ] && [ "$work" -lt 49152 ]; then ok "stack-$op-work-under-48k"; else ko "stack-$op-work-under-48k" "$work bytes"; fi
done

# --- eBPF: kfuncs -------------------------------------------------------------------------
B=/bin/wasm-bpf
K=/bpf/kfunc_test.bpf.o
if [ -e /sys/kernel/btf/wasm ]; then ok kfunc-module-btf; else ko kfunc-module-btf "/sys/kernel/btf/wasm missing"; fi
$W load $G/probe.wasm --name probe --bpf-fuel 5000000 > /dev/null
expect_ok bpf-call-i32 "ret=1 results=42$" $B call $K --module probe --function add 40 2
expect_ok bpf-call-i32-negative "ret=1 results=-5$" $B call $K --module probe --function add -2 -3
expect_ok bpf-call-i64 "ret=1 results=42$" $B call $K --module probe --function inc 41
# hypot(3.0, 4.0) = 5.0, passed as IEEE-754 bits
expect_ok bpf-call-f64 "ret=1 results=4617315517961601024$" \
	$B call $K --module probe --function hypot 4613937818241073152 4616189618054758400
expect_ok bpf-buffer-in-out "ret=0 result=11 buf=HELLO WORLD$" $B call-buf $K --module probe --function upper --data "hello world"
expect_ok bpf-unknown-module "handle=-2 ret=-2" $B call $K --module nosuch --function add 1 2
expect_ok bpf-unknown-function "handle=-2 ret=-2" $B call $K --module probe --function nope
expect_ok bpf-wrong-arity "ret=-22" $B call $K --module probe --function add 1
expect_ok bpf-buffer-too-big "ret=-7" $B call-buf $K --module probe --function upper \
	--data "0123456789012345678901234567890123456789012345678901234567890123456789"
expect_ok bpf-no-buffer-function "ret=-22" $B call-buf $K --module probe --function add --data "x"
expect_ok bpf-trap "ret=-14" $B call $K --module probe --function boom
expect_ok bpf-endless-out-of-fuel "ret=-62" $B call $K --module probe --function spin
expect_ok bpf-deep-recursion-traps "ret=-14" $B call $K --module probe --function recurse 100000
expect_ok bpf-still-callable "ret=1 results=7$" $B call $K --module probe --function add 3 4
if $W list | awk '/^[^ ]/ { p = ($1 == "probe") } p' | grep -q -E 'traps [1-9]'; then ok bpf-traps-counted; else ko bpf-traps-counted "$($W list)"; fi
handle=$($B call $K --module probe --function inc 1 | sed -n 's/^handle=\([0-9]*\) .*/\1/p')
expect_ok bpf-handle-reuse "ret=1 results=6$" $B call $K --module x --function y --handle "$handle" 5
$W unload probe > /dev/null
expect_ok bpf-unloaded-module "ret=-2" $B call $K --module x --function y --handle "$handle" 5
$W load $G/probe.wasm --name probe > /dev/null
expect_ok bpf-stale-handle-after-reload "ret=-2" $B call $K --module x --function y --handle "$handle" 5
case "$(uname -r)" in
6.1.*) expect_fail bpf-lookup-str-needs-6.12 "bpf_wasm_lookup_str" $B call /bpf/kfunc_str.bpf.o --prog call_str --module - --function - 41 ;;
*) expect_ok bpf-lookup-str "ret=1 results=42$" $B call /bpf/kfunc_str.bpf.o --prog call_str --module - --function - 41 ;;
esac
# Unload and reload while another CPU calls the module from XDP in a tight loop: the RCU
# table must keep every call on live memory (any oops fails the run).
$W load $G/packet_filter.wasm --name packet-filter > /dev/null
taskset -c 1 $B xdp /bpf/packet_filter.bpf.o --prog xdp_filter --packet tcp:10.0.0.1:1-10.0.0.2:23 --repeat 300000 > /tmp/xdp.txt 2>&1 &
pid=$!
n=0
while kill -0 "$pid" 2>/dev/null && [ $n -lt 20 ]; do
	taskset -c 0 $W unload packet-filter > /dev/null 2>&1
	taskset -c 0 $W load $G/packet_filter.wasm --name packet-filter > /dev/null 2>&1
	n=$((n + 1))
done
wait "$pid"
if grep -q "verdict=" /tmp/xdp.txt && [ $n -gt 0 ]; then ok bpf-unload-during-calls; else ko bpf-unload-during-calls "$n cycles: $(cat /tmp/xdp.txt)"; fi
$W unload packet-filter > /dev/null
$W load $G/probe.wasm --name busy --entrypoint "" --fuel 1000000000000000 > /dev/null
taskset -c 0 $W call busy spin > /dev/null 2>&1 &
pid=$!
sleep 2
expect_ok bpf-nested-call-busy "ret=-16" taskset -c 0 $B call $K --module busy --function add 1 2
expect_ok bpf-other-cpu-free "ret=1 results=3$" taskset -c 1 $B call $K --module busy --function add 1 2
kill -9 "$pid"
wait "$pid"
$W unload busy > /dev/null
# Calls from every CPU at once on one compiled module: each CPU runs its own instance, and none
# waits for or fails because of another (exact call counts, no traps).
calls() { $W list | awk -v m="$1" '/^[^ ]/ { name = $1 } name == m && $1 == "cpu" { printf "%s:%s:%s ", $2, $4, $6 }'; }
$W load $G/probe.wasm --name probe > /dev/null 2>&1
before=$(calls probe)
for c in 0 1; do
	taskset -c $c $B xdp $K --prog xdp_wasm_call --packet udp:10.0.0.1:1000-10.0.0.2:2000 --repeat 100000 > /tmp/cpu$c.txt 2>&1 &
done
wait
after=$(calls probe)
want=$(echo "$before" | awk '{ for (i = 1; i <= NF; i++) { split($i, f, ":"); printf "%s:%d:%s ", f[1], f[2] + 100000, f[3] } }')
if [ "$after" = "$want" ] && grep -q "verdict=2" /tmp/cpu0.txt && grep -q "verdict=2" /tmp/cpu1.txt; then
	ok bpf-every-cpu-at-once
else
	ko bpf-every-cpu-at-once "before $before, after $after, want $want: $(cat /tmp/cpu0.txt /tmp/cpu1.txt)"
fi

# --- live operations: hot replace ---------------------------------------------------------
# policy(N).wasm exports version(i64) -> i64 returning N; policy-i32.wasm exports
# version(i32) -> i32: a signature change.
# Arguments: N, the value type and the const opcode, in octal.
policy() {
	printf "\\000asm\\001\\000\\000\\000\\001\\006\\001\\140\\001\\$2\\001\\$2\\003\\002\\001\\000"
	printf "\\007\\013\\001\\007version\\000\\000\\012\\006\\001\\004\\000\\$3\\$1\\013"
}
before_replace=$(live)
policy 001 176 102 > /tmp/policy1.wasm
policy 002 176 102 > /tmp/policy2.wasm
policy 003 177 101 > /tmp/policy-i32.wasm
expect_fail replace-needs-a-module "no module named 'policy'.*\(ENOENT\)" $W load /tmp/policy1.wasm --name policy --replace
expect_ok replace-first-load "loaded policy: 2 instances" $W load /tmp/policy1.wasm --name policy
expect_fail replace-second-load-refused "already loaded.*\(EEXIST\)" $W load /tmp/policy2.wasm --name policy
handle=$($B call $K --module policy --function version 0 | sed -n 's/^handle=\([0-9]*\) .*/\1/p')
expect_ok replace-swaps "replaced policy \(version 2\): 2 instances" $W load /tmp/policy2.wasm --name policy --replace
expect_ok replace-new-code-answers "^2$" $W call policy version 0
expect_ok replace-handle-still-valid "ret=1 results=2$" $B call $K --module x --function y --handle "$handle" 0
expect_ok replace-listed-version "^  version  2, granted " $W list
expect_fail replace-signature-change-refused "export version would change from \(i64\) -> \(i64\) to \(i32\) -> \(i32\).*\(EINVAL\)" \
	$W load /tmp/policy-i32.wasm --name policy --replace
expect_ok replace-refused-changes-nothing "^2$" $W call policy version 0
expect_klog replace-logged "wasm: replaced module: policy (version 2)"
# Under load: an XDP program calls policy.version on every CPU with one handle each, looked
# up once, while the policy is replaced 100 times between versions 1 and 2. Every call must
# be answered, by version 1 or 2 only.
rm -f /tmp/stop
for c in 0 1; do
	taskset -c $c $B xdp $K --prog xdp_versions --packet udp:10.0.0.1:1000-10.0.0.2:2000 --repeat 2000 \
		--stop-file /tmp/stop --for-secs 600 --dump-map answers > /tmp/answers$c.txt 2>&1 &
done
sleep 1
n=0 failed_replaces=0
while [ $n -lt 100 ]; do
	n=$((n + 1))
	$W load /tmp/policy$((n % 2 + 1)).wasm --name policy --replace > /dev/null 2>&1 || failed_replaces=$((failed_replaces + 1))
done
touch /tmp/stop
wait
for c in 0 1; do
	a=$(sed -n 's/^answers=//p' /tmp/answers$c.txt)
	calls=$(sed -n 's/^runs=[0-9]* calls=//p' /tmp/answers$c.txt)
	echo "VMTEST INFO replace under load, cpu $c: $calls calls, answers (failed,v1,v2,other) $a"
	echo "$a" | { IFS=, read -r fail v1 v2 other
		if [ "$failed_replaces" = 0 ] && [ "$fail" = 0 ] && [ "$other" = 0 ] && [ "$v1" -gt 0 ] && [ "$v2" -gt 0 ] &&
			[ $((v1 + v2)) = "$calls" ]; then exit 0; fi; exit 1; }
	if [ $? = 0 ]; then ok "replace-under-load-cpu$c"; else ko "replace-under-load-cpu$c" "$failed_replaces failed replaces: $(cat /tmp/answers$c.txt)"; fi
done
expect_ok replace-versions-counted "^  version  102, " $W list
$W unload policy > /dev/null
if [ "$(live)" = "$before_replace" ]; then ok replace-nothing-leaked; else ko replace-nothing-leaked "live $(live), was $before_replace"; fi

# --- live operations: capabilities ---------------------------------------------------------
expect_fail grant-refused-names-import "imports env._debug, which needs the capability 'debug': not granted.*\(EACCES\)" \
	$W load $G/hello_world_rust.wasm --name granted --allow wasi:clocks,wasi:random
if $W list | grep -q '^granted '; then ko grant-refused-changes-nothing "granted is listed"; else ok grant-refused-changes-nothing; fi
expect_fail grant-unknown "unknown capability 'network' \(known: debug, env, wasi:io" $W load $G/hello_world_rust.wasm --name granted --allow network
expect_ok grant-accepted "loaded granted" $W load $G/hello_world_rust.wasm --name granted --allow debug
expect_ok grant-listed "^  version  1, granted debug$" $W list
$W unload granted > /dev/null
expect_ok grant-defaults-listed "granted debug,env,wasi:io,wasi:args,wasi:clocks,wasi:random,wasi:proc$" \
	sh -c "$W load $G/hello_world_rust.wasm --name granted > /dev/null && $W list"
$W unload granted > /dev/null
expect_fail grant-user-space-same "imports env._debug, which needs the capability 'debug'" $W run $G/hello_world_rust.wasm --allow env

# --- live operations: observability --------------------------------------------------------
$W load $G/probe.wasm --name seen --bpf-fuel 1000000 > /dev/null
$W call seen add 1 2 --repeat 25 > /dev/null
$W call seen boom > /dev/null 2>&1
for i in 1 2 3; do $B call $K --module seen --function add 1 2 > /dev/null; done
$B call $K --module seen --function spin > /dev/null
run $W stats --prometheus
echo "$OUT" > /tmp/metrics.txt
# The entrypoint (main) ran once per instance: 2 calls more than the 26 made.
user=$(grep '^wasm_calls_total{module="seen",.*caller="user"' /tmp/metrics.txt | awk '{ s += $NF } END { print s }')
bpf=$(grep '^wasm_calls_total{module="seen",.*caller="bpf"' /tmp/metrics.txt | awk '{ s += $NF } END { print s }')
traps=$(grep '^wasm_traps_total{module="seen",.*caller="bpf"' /tmp/metrics.txt | awk '{ s += $NF } END { print s }')
fuel=$(grep '^wasm_fuel_exhausted_total{module="seen",.*caller="bpf"' /tmp/metrics.txt | awk '{ s += $NF } END { print s }')
if [ "$user" = 28 ] && [ "$bpf" = 4 ] && [ "$traps" = 1 ] && [ "$fuel" = 1 ]; then ok metrics-counters-match-calls; else ko metrics-counters-match-calls "user $user bpf $bpf traps $traps fuel $fuel"; fi
hcount=$(sed -n 's/^wasm_call_duration_seconds_count{module="seen",caller="user"} //p' /tmp/metrics.txt)
hinf=$(sed -n 's/^wasm_call_duration_seconds_bucket{module="seen",caller="user",le="+Inf"} //p' /tmp/metrics.txt)
hlast=$(grep '^wasm_call_duration_seconds_bucket{module="seen",caller="user",le="[0-9]' /tmp/metrics.txt | tail -n 1 | awk '{ print $NF }')
if [ "$hcount" = 28 ] && [ "$hinf" = 28 ] && [ "$hlast" -le 28 ]; then ok metrics-histogram-consistent; else ko metrics-histogram-consistent "count $hcount +Inf $hinf last $hlast"; fi
if grep -q '^# TYPE wasm_call_duration_seconds histogram$' /tmp/metrics.txt && ! grep -v '^#' /tmp/metrics.txt | grep -q -v -E '^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$'; then
	ok metrics-exposition-format
else
	ko metrics-exposition-format "$(grep -v '^#' /tmp/metrics.txt | grep -v -E '^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$' | head -3)"
fi
$B xdp $K --prog xdp_wasm_call --packet udp:10.0.0.1:1000-10.0.0.2:2000 --repeat 1 > /dev/null
(sleep 1; for i in 1 2 3 4 5 6 7 8 9 10; do $W call seen add 1 2 > /dev/null; done) &
expect_ok top-shows-module "^seen +interp +1 +[0-9]+ +[0-9]+ " $W top -n 1 -d 2 -b
echo "$OUT" | sed 's/^/VMTEST INFO top: /'
wait
expect_ok top-header "^MODULE +TIER +VER +CALLS/S +BPF/S" $W top -n 1 -d 0.2 -b
# Tracepoints: load, unload, traps and fuel exhaustion, from user space and from eBPF.
T=/sys/kernel/tracing
mount -t tracefs tracefs $T 2>/dev/null
if [ -d $T/events/wasm ]; then ok trace-events-registered; else ko trace-events-registered "$(ls $T/events | head)"; fi
echo > $T/trace
echo 1 > $T/events/wasm/enable
$W call seen boom > /dev/null 2>&1
$B call $K --module seen --function spin > /dev/null
$W load $G/hello_world_rust.wasm --name traced > /dev/null
$W unload traced > /dev/null
echo 0 > $T/events/wasm/enable
cat $T/trace > /tmp/trace.txt
if grep -q 'wasm_trap: module=seen cpu=[0-9] caller=user errno=14' /tmp/trace.txt; then ok trace-user-trap; else ko trace-user-trap "$(grep wasm_ /tmp/trace.txt)"; fi
if grep -q 'wasm_fuel_exhausted: module=seen cpu=[0-9] caller=bpf errno=62 fuel=1000000' /tmp/trace.txt; then ok trace-bpf-fuel-exhausted; else ko trace-bpf-fuel-exhausted "$(grep wasm_ /tmp/trace.txt)"; fi
if grep -q 'wasm_load: module=traced version=1 instances=2' /tmp/trace.txt && grep -q 'wasm_unload: module=traced' /tmp/trace.txt; then ok trace-load-unload; else ko trace-load-unload "$(grep wasm_ /tmp/trace.txt)"; fi
$W unload seen > /dev/null

# --- live operations: a BPF map shared by Wasm and XDP -------------------------------------
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
L=/bpf/blocklist.bpf.o
MAPOK="--allow default,bpf-maps --map /sys/fs/bpf/blocked"
expect_ok maps-xdp-pins-map "verdict=2$" $B xdp $L --prog xdp_blocklist --packet udp:10.9.9.9:1000-10.0.0.2:53
expect_fail maps-need-grant "imports bpf.map_update, which needs the capability 'bpf-maps'.*\(EACCES\)" \
	$W load $G/blocklist.wasm --map /sys/fs/bpf/blocked
expect_fail maps-type-refused "map 0 \(fd [0-9]+\): a map type the guests may not use.*\(EINVAL\)" \
	$W load $G/blocklist.wasm --allow default,bpf-maps --map /sys/fs/bpf/events
expect_fail maps-missing-refused "cannot open the pinned BPF map /sys/fs/bpf/nothing" \
	$W load $G/blocklist.wasm --allow default,bpf-maps --map /sys/fs/bpf/nothing
expect_ok maps-load "loaded blocklist" $W load $G/blocklist.wasm $MAPOK
expect_ok maps-listed "^  map 0    id [0-9]+ hash key 4 value 8$" $W list
expect_ok maps-block "^0$" $W call blocklist block 10 9 9 9
expect_ok maps-xdp-drops-blocked "verdict=1$" $B xdp $L --prog xdp_blocklist --packet udp:10.9.9.9:1000-10.0.0.2:53
expect_ok maps-xdp-count-read-by-wasm "^1$" $W call blocklist hits 10 9 9 9
expect_ok maps-xdp-passes-others "verdict=2$" $B xdp $L --prog xdp_blocklist --packet udp:10.9.9.8:1000-10.0.0.2:53
expect_ok maps-unblock "^0$" $W call blocklist unblock 10 9 9 9
expect_ok maps-unblock-missing-enoent "^-2$" $W call blocklist unblock 10 9 9 9
expect_ok maps-xdp-passes-unblocked "verdict=2$" $B xdp $L --prog xdp_blocklist --packet udp:10.9.9.9:1000-10.0.0.2:53
expect_ok maps-key-size-checked "^-22$" $W call blocklist wrong_key_size
expect_ok maps-index-checked "^-9$" $W call blocklist no_such_map
# From eBPF context: observe, called through the kfunc for each packet of a source not
# blocked, blocks it after 100 packets on one CPU. Of 300 packets on CPU 1, 100 pass and the
# XDP program drops and counts the other 200.
expect_ok maps-written-from-kfunc "verdict=1$" \
	taskset -c 1 $B xdp $L --prog xdp_blocklist --packet udp:10.7.7.7:1000-10.0.0.2:53 --repeat 300
expect_ok maps-kfunc-block-then-drops "^200$" $W call blocklist hits 10 7 7 7
expect_ok maps-user-space-no-maps "^-9$" $W run $G/blocklist.wasm --allow bpf-maps --invoke hits 10 7 7 7
$W unload blocklist > /dev/null
rm -f /sys/fs/bpf/blocked /sys/fs/bpf/events

# --- eBPF sample: packet filter (XDP and TC) ------------------------------------------------
P=/bpf/packet_filter.bpf.o
expect_ok filter-load "loaded packet-filter" $W load $G/packet_filter.wasm --name packet-filter
expect_ok xdp-drops-telnet "verdict=1$" $B xdp $P --prog xdp_filter --packet tcp:10.0.0.1:40000-10.0.0.2:23
expect_ok xdp-passes-ssh "verdict=2$" $B xdp $P --prog xdp_filter --packet tcp:10.0.0.1:40000-10.0.0.2:22
expect_ok xdp-drops-denied-network "verdict=1$" $B xdp $P --prog xdp_filter --packet udp:10.66.1.2:5000-10.0.0.2:9999
expect_ok xdp-drops-dns-to-host "verdict=1$" $B xdp $P --prog xdp_filter --packet udp:10.0.0.1:5000-192.0.2.1:53
expect_ok xdp-passes-dns-elsewhere "verdict=2$" $B xdp $P --prog xdp_filter --packet udp:10.0.0.1:5000-192.0.2.2:53
expect_ok xdp-passes-icmp "verdict=2$" $B xdp $P --prog xdp_filter --packet icmp:10.0.0.1-10.0.0.2
expect_ok tc-drops-telnet "verdict=2$" $B tc $P --prog tc_filter --packet tcp:10.0.0.1:40000-10.0.0.2:23
expect_ok tc-passes-ssh "verdict=0$" $B tc $P --prog tc_filter --packet tcp:10.0.0.1:40000-10.0.0.2:22

# --- eBPF sample: authorisation (BPF LSM) -------------------------------------------------
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
if grep -q bpf /sys/kernel/security/lsm; then ok lsm-bpf-active; else ko lsm-bpf-active "$(cat /sys/kernel/security/lsm)"; fi
ip link set lo up
expect_ok authz-load "loaded connect-authz" $W load $G/connect_authz.wasm --name connect-authz
run $B attach /bpf/connect_authz.bpf.o --prog check_connect -- \
	sh -c 'nc 127.0.0.1 81 </dev/null; echo "port 81 rc=$?"; nc 127.0.0.1 80 </dev/null; echo "port 80 rc=$?"'
if echo "$OUT" | grep -q "Operation not permitted"; then ok lsm-denied-connect-eperm; else ko lsm-denied-connect-eperm "$OUT"; fi
if echo "$OUT" | grep -q "Connection refused"; then ok lsm-allowed-connect-proceeds; else ko lsm-allowed-connect-proceeds "$OUT"; fi
run sh -c 'nc 127.0.0.1 81 </dev/null'
if echo "$OUT" | grep -q "Connection refused"; then ok lsm-detached-no-effect; else ko lsm-detached-no-effect "$OUT"; fi
denied=$(( $(taskset -c 0 $W call connect-authz denied) + $(taskset -c 1 $W call connect-authz denied) ))
if [ "$denied" = 1 ]; then ok authz-counted-denial; else ko authz-counted-denial "$denied denials"; fi

# --- eBPF sample: tracing (fentry on 6.1, kprobe on 6.12) ---------------------------------
expect_ok stats-load "loaded syscall-stats" $W load $G/syscall_stats.wasm --name syscall-stats
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
case "$(uname -r)" in
6.1.*) progs="getpgid_fentry getpgid_fexit" ;;
*) progs="getpgid_kprobe getpgid_tracepoint getpgid_fentry getpgid_fexit" ;;
esac
for prog in $progs; do
	before=$(taskset -c 1 $W call syscall-stats count)
	if taskset -c 1 $B attach /bpf/syscall_stats.bpf.o --prog "$prog" -- $B getpgid 500; then
		after=$(taskset -c 1 $W call syscall-stats count)
		if [ $((after - before)) -ge 500 ]; then ok "tracing-$prog-aggregates"; else ko "tracing-$prog-aggregates" "$before -> $after"; fi
	else
		ko "tracing-$prog-aggregates" "attach failed"
	fi
done
$W unload packet-filter > /dev/null
$W unload connect-authz > /dev/null
$W unload syscall-stats > /dev/null
$W unload probe > /dev/null

# --- guests in other languages (WASI) -------------------------------------------------------
# Each /languages/NAME.wasm is a WASI command: its lines in the kernel log ("NAME: ...") must be
# those of expected.txt, and wasmctl run in user space must print the very same lines. An
# interpreter gets its script, /languages/NAME.script, as its argument.
for f in /languages/*.wasm; do
	name=$(basename "$f" .wasm)
	grep "^$name: " /languages/expected.txt > /tmp/expected.txt
	set -- --fuel 20000000000
	case "$name" in lua-*) set -- "$@" --arg -e ;; esac
	[ -f "/languages/$name.script" ] && set -- "$@" --instances 1 --arg "$(cat "/languages/$name.script")"
	if ! $W load "$f" --name "$name" "$@" > /tmp/load.txt 2>&1; then
		ko "wasi-$name-kernel" "$(cat /tmp/load.txt)"
		continue
	fi
	dmesg | grep -o "$name: .*" | awk '!seen[$0]++' > /tmp/kernel.txt
	if cmp -s /tmp/expected.txt /tmp/kernel.txt; then ok "wasi-$name-kernel"; else ko "wasi-$name-kernel" "$(cat /tmp/kernel.txt)"; fi
	$W run "$f" "$@" > /tmp/user.txt 2>&1
	if cmp -s /tmp/kernel.txt /tmp/user.txt; then ok "wasi-$name-user-same"; else ko "wasi-$name-user-same" "$(cat /tmp/user.txt)"; fi
	$W unload "$name" > /dev/null
done
$W load /languages/c-primes.wasm --name c-args --arg one --arg "two words" --env A=1 > /dev/null
if dmesg | grep -q "c-args: args = 3"; then ok wasi-args-from-load; else ko wasi-args-from-load "$(dmesg | grep c-args)"; fi
$W unload c-args > /dev/null

# --- native tier: the same scenarios on guests compiled ahead of time ----------------------
# /native/*.ko were built for this kernel by `wasmctl compile`: each registers with wasm.ko at
# insmod (entrypoint run on every instance), then is listed, called and unloaded like a load.
N=/native
base=$(live)
mods=$(modules)
expect_fail native-abi-refused "Protocol error" insmod $N/abi_native.ko
expect_klog native-abi-refused-logged "wasm: abi-native was compiled for native ABI"
if [ "$(modules)" = "$mods" ] && ! grep -q "^abi_native " /proc/modules; then ok native-abi-refused-nothing-left; else ko native-abi-refused-nothing-left "$($W list)"; fi
expect_fail native-memory-limit "Cannot allocate memory" insmod $N/hello_native.ko memory=65536
expect_klog native-memory-limit-logged "registration of native module 'hello-native' failed: memory limit"
hello=$(dmesg | grep -c 'Hello, world!')
expect_ok native-insmod "" insmod $N/hello_native.ko
expect_klog native-registered "wasm: registering native module: hello-native"
if [ "$(dmesg | grep -c 'Hello, world!')" = $((hello + 2)) ]; then ok native-hello-once-per-cpu; else ko native-hello-once-per-cpu "$(dmesg | grep -c 'Hello, world!') lines"; fi
expect_ok native-list-tier "^hello-native  \(native, [0-9]+ bytes, entrypoint main" $W list
expect_ok native-list-json '"name":"hello-native","sha256":null,"signer":null,"tier":"native"' $W list --json
expect_fail native-replace-refused "'hello-native' is a native module: rmmod its kernel module and insmod the new one \(EOPNOTSUPP\)" \
	$W load $G/hello_world_rust.wasm --name hello-native --replace
expect_fail native-name-taken "already loaded \(EEXIST\)" $W load $G/hello_world_rust.wasm --name hello-native
expect_ok native-probe-insmod "" insmod $N/probe_native.ko fuel=20000000 bpf_fuel=5000000
# The entrypoint's lines, printed by each of the 2 instances: the first instance's.
$W run $G/probe.wasm > /tmp/probe-user.txt
lines=$(wc -l < /tmp/probe-user.txt)
dmesg | grep -o 'probe: .*' | tail -n $((2 * lines)) | head -n "$lines" > /tmp/native.txt
if [ -s /tmp/probe-user.txt ] && cmp -s /tmp/probe-user.txt /tmp/native.txt; then ok native-float-equals-user; else ko native-float-equals-user "$(cat /tmp/native.txt)"; fi
expect_ok native-call-i32 "^42$" $W call probe-native add 2 40
expect_ok native-call-i32-negative "^-5$" $W call probe-native add -2 -3
expect_ok native-call-i64 "^12884901888$" $W call probe-native mul64 4294967296 3
# 128-bit products: the guest's __multi3 runs as one multiplication (crates/aot/src/multi3.rs).
expect_ok native-call-i128-high "^4611686018427387903$" $W call probe-native mul_hi 9223372036854775807 9223372036854775807
expect_ok native-call-i128-high-of-min "^4611686018427387904$" $W call probe-native mul_hi -9223372036854775808 -9223372036854775808
expect_ok native-call-i128-high-negative "^-1$" $W call probe-native mul_hi -3 7
expect_ok native-call-f64 "^5.0$" $W call probe-native hypot 3 4
expect_ok native-call-f32 "^0.25$" $W call probe-native quarter 1
expect_ok native-call-cpu-import "^[01]$" $W call probe-native cpu
expect_fail native-call-unknown-function "exports no function 'nope'" $W call probe-native nope
expect_fail native-endless-out-of-fuel "ran out of fuel \(budget 20000000\) \(ETIME\)" $W call probe-native spin
expect_ok native-responsive-after-endless "^2$" $W call probe-native add 1 1
expect_fail native-trap-unreachable "trapped.*unreachable.*\(EFAULT\)" $W call probe-native boom
expect_fail native-trap-out-of-bounds "trapped: out of bounds memory access \(EFAULT\)" $W call probe-native peek 2147483647
expect_ok native-in-bounds-read "^-?[0-9]+$" $W call probe-native peek 1024
# The last four bytes of linear memory are in bounds; one byte further is not.
mem=$($W stats --prometheus | awk '/^wasm_instance_memory_bytes\{module="probe-native",cpu="0"\}/ { print $2 }')
expect_ok native-last-word-in-bounds "^-?[0-9]+$" $W call probe-native peek $((mem - 4))
expect_fail native-one-past-the-end-traps "out of bounds memory access" $W call probe-native peek $((mem - 3))
expect_ok native-grow-then-use-the-new-end "^$((mem + 65536))$" $W call probe-native grow 1
expect_ok native-grow-past-the-memory-limit-fails "^-1$" $W call probe-native grow 2000
expect_fail native-deep-recursion-traps "call stack exhausted" $W call probe-native recurse 100000
expect_ok native-recursion-300 "^300$" $W call probe-native recurse 300
if $W list | awk '/^[^ ]/ { p = ($1 == "probe-native") } p' | grep -q -E 'traps [1-9]'; then ok native-traps-counted; else ko native-traps-counted "$($W list)"; fi
# A memory that cannot grow (the bounds guest has no memory.grow): the native tier checks
# against a constant size; its edges are the same on both tiers.
$W load $G/bounds.wasm > /dev/null
expect_ok native-bounds-insmod "" insmod $N/bounds_native.ko
for m in bounds bounds-native; do
	end=$($W call $m size)
	expect_ok "$m-size" "^1114112$" $W call $m size
	expect_ok "$m-last-word" "^0$" $W call $m peek $((end - 4))
	expect_fail "$m-word-across-the-end-traps" "out of bounds memory access" $W call $m peek $((end - 3))
	expect_ok "$m-last-byte" "^0$" $W call $m peek8 $((end - 1))
	expect_fail "$m-byte-at-the-end-traps" "out of bounds memory access" $W call $m peek8 "$end"
	expect_fail "$m-far-past-the-end-traps" "out of bounds memory access" $W call $m peek 2147483647
	expect_ok "$m-last-i64-stored-and-read-after-a-call" "^-2$" $W call $m poke $((end - 8)) -2
	expect_fail "$m-i64-across-the-end-traps" "out of bounds memory access" $W call $m poke $((end - 7)) 1
	expect_ok "$m-loops-to-the-end" "^136$" $W call $m fill_sum $((end - 16)) 16
	expect_fail "$m-loop-one-past-the-end-traps" "out of bounds memory access" $W call $m fill_sum $((end - 16)) 17
done
if $W unload bounds > /dev/null && $W unload bounds-native > /dev/null && rmmod bounds_native; then ok native-bounds-unloaded; else ko native-bounds-unloaded "$($W list)"; fi
# WASI programs compiled ahead of time print what they print on the interpreter, once per
# instance at insmod, and again when called.
for prog in c-primes rust-primes zig-hello; do
	nat=$prog-native obj=$(echo "$prog" | tr - _)_native
	grep "^$prog: " /languages/expected.txt | sed "s/^$prog: /$nat: /" > /tmp/expected.txt
	before=$(dmesg | grep -c "$nat: ")
	expect_ok "native-wasi-$prog-insmod" "" insmod "$N/$obj.ko"
	dmesg | grep -o "$nat: .*" | tail -n +$((before + 1)) > /tmp/native.txt
	if [ "$(sort -u /tmp/native.txt)" = "$(sort -u /tmp/expected.txt)" ] &&
		[ "$(wc -l < /tmp/native.txt)" = $((2 * $(wc -l < /tmp/expected.txt))) ]; then
		ok "native-wasi-$prog-output"
	else
		ko "native-wasi-$prog-output" "$(cat /tmp/native.txt)"
	fi
	if $W unload "$nat" > /dev/null && rmmod "$obj"; then ok "native-wasi-$prog-unloaded"; else ko "native-wasi-$prog-unloaded" "$($W list)"; fi
done
insmod $N/zig_hello_native.ko
expect_ok native-wasi-proc-exit "^exited with 0$" $W call zig-hello-native _start
n=$(dmesg | grep -c 'zig-hello-native: Hello, world!')
if [ "$n" = 5 ]; then ok native-wasi-called-again; else ko native-wasi-called-again "$n lines"; fi
$W unload zig-hello-native > /dev/null
rmmod zig_hello_native
$W load $G/hello_world_rust.wasm --name forever-native > /dev/null
expect_fail native-registration-name-taken "File exists" insmod $N/forever_native.ko
$W unload forever-native > /dev/null
expect_ok native-forever-insmod "" insmod $N/forever_native.ko fuel=1000000000000000
$W call forever-native spin > /tmp/spin.txt 2>&1 &
pid=$!
sleep 3
if kill -0 "$pid" 2>/dev/null; then ok native-endless-still-running; else ko native-endless-still-running "$(cat /tmp/spin.txt)"; fi
expect_ok native-responsive-during-endless "^7$" $W call probe-native add 3 4
kill -9 "$pid"
wait "$pid"
rc=$?
if [ "$rc" = 137 ]; then ok native-endless-killable; else ko native-endless-killable "exit $rc"; fi
sleep 1
expect_ok native-instance-free-after-kill "^3$" $W call forever-native add 1 2
expect_ok native-bpf-call-i32 "ret=1 results=42$" $B call $K --module probe-native --function add 40 2
expect_ok native-bpf-call-f64 "ret=1 results=4617315517961601024$" \
	$B call $K --module probe-native --function hypot 4613937818241073152 4616189618054758400
expect_ok native-bpf-buffer-in-out "ret=0 result=11 buf=HELLO WORLD$" $B call-buf $K --module probe-native --function upper --data "hello world"
expect_ok native-bpf-trap "ret=-14" $B call $K --module probe-native --function boom
expect_ok native-bpf-out-of-bounds "ret=-14" $B call $K --module probe-native --function peek 2147483647
expect_ok native-bpf-endless-out-of-fuel "ret=-62" $B call $K --module probe-native --function spin
expect_ok native-bpf-deep-recursion-traps "ret=-14" $B call $K --module probe-native --function recurse 100000
expect_ok native-bpf-still-callable "ret=1 results=7$" $B call $K --module probe-native --function add 3 4
expect_fail native-rmmod-while-registered "in use|unavailable" rmmod probe_native
for m in hello forever probe; do
	expect_ok "native-unload-$m" "unloaded $m-native" $W unload "$m-native"
	tries=0
	until rmmod "${m}_native" 2>/dev/null || [ $tries -ge 10 ]; do tries=$((tries + 1)); sleep 1; done
	if [ ! -e "/sys/module/${m}_native" ]; then ok "native-rmmod-$m"; else ko "native-rmmod-$m" "still loaded"; fi
done
if [ "$(live)" = "$base" ] && [ "$(modules)" = "$mods" ]; then ok native-unload-frees-everything; else ko native-unload-frees-everything "live $(live), was $base, $(modules) modules"; fi

# --- rmmod with modules loaded ------------------------------------------------------------
$W load $G/hello_world_rust.wasm --name left-behind > /dev/null
$W load $G/probe.wasm --name left-behind-too > /dev/null
# Programs that called the kfuncs release the module asynchronously: allow a few seconds.
tries=0
until rmmod wasm 2>/dev/null || [ $tries -ge 10 ]; do tries=$((tries + 1)); sleep 1; done
if [ ! -e /sys/module/wasm ]; then ok rmmod; else ko rmmod "rmmod failed"; fi
expect_klog rmmod-frees-everything "wasm: module unloaded, 2 wasm modules freed, 0 live allocations (0 bytes)"
if [ -e /dev/wasm ]; then ko device-removed "/dev/wasm remains"; else ok device-removed; fi
expect_fail missing-device-explained "does not exist: load the kernel module first" $W list

# --- the global memory cap and shared instances -------------------------------------------
# probe's linear memory is 17 pages (1114112 bytes): two per-CPU instances fit in 4 MiB,
# four do not, three (two + one shared) do.
if insmod /lib/wasm.ko memory_cap_mb=4; then ok insmod-memory-cap; else ko insmod-memory-cap "insmod failed"; fi
expect_ok memory-cap-shown "linear memory +0 of 4194304 bytes" $W stats
expect_ok memory-cap-first-fits "loaded cap1: 2 instances" $W load $G/probe.wasm --name cap1
expect_ok memory-use-shown "linear memory +2228224 of 4194304 bytes" $W stats
expect_fail memory-cap-enforced "memory limit.*\(ENOMEM\)" $W load $G/probe.wasm --name cap2
expect_ok shared-instance-fits "loaded cap3: 1 instances" $W load $G/probe.wasm --name cap3 --instances 1
expect_ok shared-instance-from-cpu1 "^42$" taskset -c 1 $W call cap3 add 40 2
expect_ok shared-instance-from-bpf "ret=1 results=42$" taskset -c 1 /bin/wasm-bpf call /bpf/kfunc_test.bpf.o --module cap3 --function add 40 2
$W unload cap1 > /dev/null
$W unload cap3 > /dev/null
expect_ok memory-returned "linear memory +0 of 4194304 bytes" $W stats
tries=0
until rmmod wasm 2>/dev/null || [ $tries -ge 10 ]; do tries=$((tries + 1)); sleep 1; done
expect_klog rmmod-again-frees-everything "wasm: module unloaded, 0 wasm modules freed, 0 live allocations (0 bytes)"

# --- live operations: signed guests ---------------------------------------------------------
$W keygen /tmp/guests.key > /dev/null
$W keygen /tmp/other.key > /dev/null
pub=$(cat /tmp/guests.key.pub)
id=$(echo "$pub" | cut -c1-16)
expect_fail trusted-keys-malformed-refused "" insmod /lib/wasm.ko trusted_keys=0123
expect_klog trusted-keys-malformed-logged "wasm: bad trusted_keys parameter: trusted key 1 is not 64 hex digits"
if insmod /lib/wasm.ko require_signature=1 trusted_keys="$pub"; then ok insmod-require-signature; else ko insmod-require-signature "insmod failed"; fi
expect_klog signature-policy-logged "wasm: 1 trusted keys, signatures required"
cp $G/hello_world_rust.wasm /tmp/signed.wasm
expect_fail unsigned-refused "requires signed guests \(require_signature=1\).*\(EKEYREJECTED\)" $W load /tmp/signed.wasm --name signed
expect_ok sign "^signed /tmp/signed.wasm: /tmp/signed.wasm.sig$" $W sign /tmp/signed.wasm --key /tmp/guests.key
expect_ok signed-accepted "loaded signed: 2 instances" $W load /tmp/signed.wasm --name signed
expect_ok signed-listed "^  version  1, granted .*, signed by $id$" $W list
cp /tmp/signed.wasm /tmp/tampered.wasm
cp /tmp/signed.wasm.sig /tmp/tampered.wasm.sig
printf '\000\002\001a' >> /tmp/tampered.wasm
expect_fail tampered-refused "not signed by a trusted key, or was changed after signing \(EKEYREJECTED\)" $W load /tmp/tampered.wasm --name tampered
$W sign /tmp/signed.wasm --key /tmp/other.key --output /tmp/other.sig > /dev/null
expect_fail untrusted-key-refused "not signed by a trusted key.*\(EKEYREJECTED\)" $W load /tmp/signed.wasm --name other --signature /tmp/other.sig
printf 12345 > /tmp/short.sig
expect_fail malformed-signature-refused "is not a signature: 5 bytes" $W load /tmp/signed.wasm --name other --signature /tmp/short.sig
expect_ok signed-replace "replaced signed \(version 2\)" $W load /tmp/signed.wasm --name signed --replace
cp $G/hello_world_rust.wasm /tmp/unsigned.wasm
expect_fail unsigned-replace-refused "requires signed guests.*\(EKEYREJECTED\)" $W load /tmp/unsigned.wasm --name signed --replace
expect_ok refused-replace-keeps-signed "^  version  2, .*signed by $id$" $W list
$W unload signed > /dev/null
tries=0
until rmmod wasm 2>/dev/null || [ $tries -ge 10 ]; do tries=$((tries + 1)); sleep 1; done
expect_klog signed-rmmod-frees-everything "wasm: module unloaded, 0 wasm modules freed, 0 live allocations (0 bytes)"

# --- declarative configuration: wasmctl apply ------------------------------------------------
insmod /lib/wasm.ko
mkdir -p /tmp/wasm.d
cfg() { printf '%s\n' "$@" > "/tmp/wasm.d/$CFG.toml"; }
A="$W apply --config-dir /tmp/wasm.d"
CFG=cfg-probe cfg "path = \"$G/probe.wasm\"" "fuel = 20000000"
CFG=hello cfg "path = \"$G/hello_world_rust.wasm\"" 'name = "cfg-hello"' "instances = 1"
expect_fail apply-check-before "cfg-probe: not loaded: would load" $A --check
expect_ok apply-loads "^apply: 2 changed, 0 unchanged, 0 failed$" $A
expect_ok apply-loaded-as-configured "^42$" $W call cfg-probe add 40 2
ncpu=$($W list | awk '/^[^ ]/ { p = ($1 == "cfg-hello") } p && $1 == "cpu"' | wc -l)
if [ "$ncpu" = 1 ]; then ok apply-instances-as-configured; else ko apply-instances-as-configured "$ncpu instances"; fi
expect_ok apply-idempotent "^apply: 0 changed, 2 unchanged, 0 failed$" $A
expect_ok apply-check-clean "^apply: 0 to change, 2 unchanged" $A --check
CFG=cfg-probe cfg "path = \"$G/probe.wasm\"" "fuel = 30000000"
expect_fail apply-drift-reported "cfg-probe: drift: fuel 20000000 → 30000000: would reload" $A --check
expect_ok apply-drift-replaced "cfg-probe: replaced \(drift: fuel 20000000 → 30000000\)" $A
expect_ok apply-drift-limit-in-force "^cfg-probe .*fuel/call 30000000," $W list
CFG=hello cfg "path = \"$G/probe.wasm\"" 'name = "cfg-hello"' "instances = 1"
expect_ok apply-binary-drift "cfg-hello: replaced \(drift: sha256 [0-9a-f]{12}… → [0-9a-f]{12}…" $A
CFG=hello cfg "path = \"$G/hello_world_rust.wasm\"" 'name = "cfg-hello"' "instances = 1" 'allow = ["debug"]'
expect_ok apply-exports-changed-reloads "cfg-hello: reloaded, exports changed: eBPF programs must look them up again \(drift: sha256 [0-9a-f]{12}… → [0-9a-f]{12}…, grants debug,env,wasi:io,wasi:args,wasi:clocks,wasi:random,wasi:proc → debug\)" $A
expect_ok apply-grants-in-force "^  version  1, granted debug$" $W list
before=$($W list --json)
CFG=zz-bad cfg 'path = "nowhere.wasm"' "fule = 1"
expect_fail apply-bad-config "unknown field .fule." $A
if [ "$($W list --json)" = "$before" ]; then ok apply-bad-config-changes-nothing; else ko apply-bad-config-changes-nothing "list changed"; fi
rm /tmp/wasm.d/zz-bad.toml /tmp/wasm.d/hello.toml
expect_ok apply-unmanaged-left "cfg-hello: not configured \(left loaded\)" $A
expect_ok apply-prune "cfg-hello: unloaded \(not configured\)" $A --prune
expect_fail apply-pruned-gone "no module named 'cfg-hello'" $W call cfg-hello add 1 2
expect_ok apply-json '"changed":0,"check":false,"failed":0,"modules":\[\{"name":"cfg-probe","outcome":"unchanged"\}\]' $A --json
$W load $G/hello_world_rust.wasm --name unmanaged > /dev/null
expect_ok apply-remove "^cfg-probe: unloaded$" $A --remove
expect_ok apply-remove-leaves-others "^unmanaged " $W list
expect_fail apply-removed-gone "no module named 'cfg-probe'" $W call cfg-probe add 1 2
$W unload unmanaged > /dev/null
rmmod wasm
expect_klog apply-rmmod-frees-everything "wasm: module unloaded, 0 wasm modules freed, 0 live allocations (0 bytes)"

# --- wasm.ko without usable module BTF: /dev/wasm works, eBPF calls are reported unavailable --
for variant in nobtf:" has no BTF" unresolved:"'s kfunc BTF ids are unresolved"; do
	v=${variant%%:*} why=${variant#*:}
	dmesg -c > /dev/null
	if insmod /lib/wasm-$v.ko; then ok "insmod-$v"; else ko "insmod-$v" "insmod failed"; continue; fi
	expect_klog "kfuncs-$v-logged" "wasm: eBPF calls unavailable: wasm.ko$why"
	if [ "$(dmesg | grep -c 'wasm: eBPF calls')" = 1 ]; then ok "kfuncs-$v-one-line"; else ko "kfuncs-$v-one-line" "$(dmesg | grep 'wasm:')"; fi
	expect_ok "version-ebpf-$v" "^eBPF calls unavailable: wasm.ko$why.*rebuild" $W version
	expect_ok "version-json-ebpf-$v" '"ebpf":\{"available":false' $W version --json
	expect_ok "device-works-$v" "^42$" sh -c "$W load $G/probe.wasm > /dev/null && $W call probe add 40 2"
	expect_fail "bpf-refused-$v" "." /bin/wasm-bpf call /bpf/kfunc_test.bpf.o --module probe --function add 40 2
	$W unload probe > /dev/null
	rmmod wasm
	expect_klog "rmmod-$v" "wasm: module unloaded, 0 wasm modules freed, 0 live allocations (0 bytes)"
done

# --- the container image's node agent: loads wasm.ko as DKMS installs it (xz-compressed),
# applies its configuration, unloads it when stopped -------------------------------------------
mkdir -p "/lib/modules/$(uname -r)/updates/dkms" /tmp/agent.d
cp /lib/wasm.ko.xz "/lib/modules/$(uname -r)/updates/dkms/"
printf 'path = "%s"\nname = "agent-hello"\n' "$G/hello_world_rust.wasm" > /tmp/agent.d/hello.toml
WASM_DEVICE=/dev/wasm WASM_CONFIG_DIR=/tmp/agent.d WASM_APPLY_INTERVAL=1 /bin/wasm-node-agent > /tmp/agent.log 2>&1 &
agent=$!
tries=0
until $W list 2>/dev/null | grep -q '^agent-hello ' || [ $tries -ge 100 ]; do sleep 0.2; tries=$((tries + 1)); done
expect_ok agent-loads-module-and-config "^agent-hello " $W list
sleep 2
expect_ok agent-reapplies "^agent-hello: unchanged$" cat /tmp/agent.log
kill -TERM $agent
wait $agent
expect_ok agent-removes-on-stop "^no modules loaded$" $W list
rmmod wasm
finish
