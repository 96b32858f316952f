#!/bin/sh
# Hardening scenarios for wasm.ko: memory-cgroup limits, killed loads, allocation-failure
# injection, frame fuzzing and a concurrent stress run. Same output conventions as tests.sh;
# xtask puts STRESS_SECONDS and FRAME_FUZZ_SECONDS before this script.
W=/bin/wasmctl
B=/bin/wasm-bpf
G=/guests
P=/sys/module/wasm/parameters/fail_alloc
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "VMTEST PASS $1"; }
ko() { failed=$((failed + 1)); echo "VMTEST FAIL $1: $2"; }
live() { $W stats | awk '/^live allocations/ { print $3 }'; }
modules() { $W stats | awk '/^modules/ { print $2 }'; }
finish() { echo "VMTEST SUMMARY passed=$passed failed=$failed"; exit 0; }

if insmod /lib/wasm.ko; then ok insmod; else ko insmod "insmod failed"; finish; fi
base=$(live)

# --- memory cgroup limits -----------------------------------------------------------------
# Loads from a process in a cgroup v2 with memory.max from 512K to 16M: each either loads, or
# fails with ENOMEM (wasm.ko never invokes the cgroup's OOM killer; the process's own pages
# may still get it killed). Nothing may stay allocated.
mkdir -p /sys/fs/cgroup
mount -t cgroup2 none /sys/fs/cgroup
echo +memory > /sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/small
loaded=0 enomem=0 killed=0 other=""
for limit in 512K 768K 1M 1536K 2M 3M 4M 6M 8M 12M 16M; do
	for guest in $G/probe.wasm /languages/c-hello.wasm /languages/lua-hello.wasm; do
		echo "$limit" > /sys/fs/cgroup/small/memory.max
		out=$(sh -c 'echo $$ > /sys/fs/cgroup/small/cgroup.procs; exec '"$W"' load '"$guest"' --name m --fuel 20000000000' 2>&1)
		rc=$?
		echo max > /sys/fs/cgroup/small/memory.max
		case "$rc:$out" in
		0:*) loaded=$((loaded + 1)); $W unload m > /dev/null ;;
		137:*) killed=$((killed + 1)) ;;
		*ENOMEM* | *"Cannot allocate memory"*) enomem=$((enomem + 1)) ;;
		*) other="$other [$limit $guest rc=$rc: $out]" ;;
		esac
	done
done
echo "VMTEST INFO memcg: $loaded loaded, $enomem ENOMEM, $killed killed by the cgroup OOM killer"
if [ -z "$other" ]; then ok memcg-clear-outcomes; else ko memcg-clear-outcomes "$other"; fi
if [ "$loaded" -gt 0 ] && [ "$enomem" -gt 0 ]; then ok memcg-both-outcomes; else ko memcg-both-outcomes "$loaded loaded, $enomem ENOMEM"; fi
if [ "$(live)" = "$base" ] && [ "$(modules)" = 0 ]; then ok memcg-nothing-leaked; else ko memcg-nothing-leaked "live $(live), was $base"; fi

# --- loads killed at random moments -------------------------------------------------------
# SIGKILL during the load of a large guest whose entrypoint runs a while: the entrypoint stops
# at its next fuel slice and the load fails (or it had finished: then the module is loaded).
for i in 1 2 3 4 5 6 7 8; do
	$W load /languages/py-hello.wasm --name killed --fuel 20000000000 > /dev/null 2>&1 &
	pid=$!
	usleep $(( ($(head -c 2 /dev/urandom | od -An -tu2) % 3000) * 1000 ))
	kill -9 "$pid" 2> /dev/null
	wait "$pid" 2> /dev/null
	$W unload killed > /dev/null 2>&1
done
if [ "$(live)" = "$base" ] && [ "$(modules)" = 0 ]; then ok killed-loads-nothing-leaked; else ko killed-loads-nothing-leaked "live $(live), was $base"; fi

# --- allocation-failure injection ---------------------------------------------------------
# walk NAME SETUP TEARDOWN CMD...: for N = 1, 2, ... fail the Nth allocation of CMD. Each run
# must fail with ENOMEM, or have succeeded; then TEARDOWN runs and the live allocations and
# modules must be as before. Ends when CMD makes fewer than N allocations.
walk() {
	name=$1 setup=$2 teardown=$3
	shift 3
	n=1 bad=""
	while :; do
		sh -c "$setup"
		m0=$(modules) l0=$(live)
		echo "$n" > $P
		out=$("$@" 2>&1)
		rc=$?
		left=$(cat $P)
		echo 0 > $P
		if [ "$left" != 0 ]; then
			[ "$rc" = 0 ] || bad="$bad [clean run rc=$rc: $out]"
			sh -c "$teardown"
			break
		fi
		if [ "$rc" = 0 ]; then
			sh -c "$teardown"
		elif echo "$out" | grep -q -E "ENOMEM|Cannot allocate memory"; then
			[ "$(modules)" = "$m0" ] && [ "$(live)" = "$l0" ] ||
				bad="$bad [N=$n: modules $(modules) live $(live), were $m0 $l0]"
			sh -c "$teardown"
		else
			bad="$bad [N=$n rc=$rc: $out]"
			sh -c "$teardown"
		fi
		n=$((n + 1))
	done
	echo "VMTEST INFO injection $name: $((n - 1)) allocation sites failed in turn"
	if [ -z "$bad" ] && [ "$n" -gt 1 ]; then ok "inject-$name"; else ko "inject-$name" "$((n - 1)) sites:$bad"; fi
	if [ "$(live)" = "$base" ]; then ok "inject-$name-nothing-leaked"; else ko "inject-$name-nothing-leaked" "live $(live), was $base"; fi
}
walk load-probe true "$W unload p > /dev/null 2>&1" $W load $G/probe.wasm --name p
walk load-wasi true "$W unload w > /dev/null 2>&1" $W load /languages/c-primes.wasm --name w
walk call "$W load $G/probe.wasm --name c > /dev/null" "$W unload c > /dev/null" $W call c add 2 40
walk unload "$W load $G/probe.wasm --name u > /dev/null" "$W unload u > /dev/null 2>&1" $W unload u
walk list "$W load $G/probe.wasm --name l > /dev/null" "$W unload l > /dev/null" $W list
if [ "$(live)" = "$base" ] && [ "$(modules)" = 0 ]; then ok injection-nothing-leaked; else ko injection-nothing-leaked "live $(live), was $base"; fi
$W stats | grep abandoned | sed 's/^/VMTEST INFO /'

# --- allocation failure inside eBPF calls -------------------------------------------------
# A trap makes wasmi allocate its error, a deeper call than any before grows the stack: fail
# those allocations. The call returns -ENOMEM (-12), or still its trap (-14) when the engine
# reported the failure itself; the kernel goes on, the other CPU's instance still works, and
# unloading gives everything back.
K=/bpf/kfunc_test.bpf.o
abandoned=0 bad=""
for fn in boom "recurse 100000"; do
	for n in 1 2 3; do
		$W load $G/probe.wasm --name bpfp --bpf-fuel 50000000 > /dev/null
		echo "$n" > $P
		out=$(taskset -c 0 $B call $K --module bpfp --function $fn 2>&1)
		echo 0 > $P
		case "$out" in
		*"ret=-12"*) abandoned=$((abandoned + 1)) ;;
		*"ret=-14"*) ;;
		*) bad="$bad [$fn N=$n: $out]" ;;
		esac
		other=$(taskset -c 1 $B call $K --module bpfp --function add 3 4 2>&1)
		echo "$other" | grep -q "ret=1 results=7$" || bad="$bad [other cpu after $fn N=$n: $other]"
		$W unload bpfp > /dev/null
	done
done
echo "VMTEST INFO eBPF injection: $abandoned calls returned -ENOMEM"
if [ -z "$bad" ] && [ "$abandoned" -gt 0 ]; then ok inject-bpf; else ko inject-bpf "$abandoned -ENOMEM:$bad"; fi
if [ "$(live)" = "$base" ]; then ok inject-bpf-nothing-leaked; else ko inject-bpf-nothing-leaked "live $(live), was $base"; fi

# --- mutated frames -----------------------------------------------------------------------
# Valid requests with random contents, most of them then mutated, written to /dev/wasm.
out=$(wasm-frame-fuzz "$FRAME_FUZZ_SECONDS" $G/probe.wasm 2>&1)
echo "VMTEST INFO frame fuzzing: ${FRAME_FUZZ_SECONDS}s, $out"
for m in $($W list | awk '/^fz-/ { print $1 }'); do $W unload "$m" > /dev/null; done
if echo "$out" | grep -q -E "^frames [1-9][0-9]*, accepted [1-9]"; then ok frame-fuzz-ran; else ko frame-fuzz-ran "$out"; fi
if [ "$(live)" = "$base" ] && [ "$(modules)" = 0 ]; then ok frame-fuzz-nothing-leaked; else ko frame-fuzz-nothing-leaked "live $(live), was $base; $($W list)"; fi

# --- stress ---------------------------------------------------------------------------------
# Worker processes load, call, list and unload their own modules; XDP programs on both CPUs
# call `probe` in loops of 100000 runs; calls of an endless guest are killed mid-run. Then every
# XDP call must be counted by probe's instances, and everything given back.
$W load $G/probe.wasm --name probe > /dev/null
meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
vmalloc_by_caller() { awk '{ n[$3] += $2 } END { for (c in n) print c, n[c] }' /proc/vmallocinfo | sort; }
# The kernel keeps the XDP dispatcher's JIT image (a 2 MiB program pack) once the first XDP
# program ran through the dispatcher (a test run of more than one repeat): let that happen
# before the baseline.
$B xdp /bpf/kfunc_test.bpf.o --prog xdp_wasm_call --packet udp:10.0.0.1:1000-10.0.0.2:2000 --repeat 2 > /dev/null 2>&1
slab0=$(meminfo Slab) vmalloc0=$(meminfo VmallocUsed)
vmalloc_by_caller > /tmp/vmalloc0
probe_calls() { $W list | awk '/^[^ ]/ { p = ($1 == "probe") } p && $1 == "cpu" { n += $4 } END { print n }'; }
calls0=$(probe_calls)
worker() {
	i=0
	while [ -e /tmp/stress.run ]; do
		$W load $G/probe.wasm --name "w$1" > /dev/null 2>&1
		$W call "w$1" add 1 2 > /dev/null 2>&1
		$W list > /dev/null 2>&1
		$W unload "w$1" > /dev/null 2>&1
		i=$((i + 1))
	done
	echo "$i" > "/tmp/stress.$1"
}
xdp() {
	runs=0 passed=0
	while [ -e /tmp/stress.run ]; do
		taskset -c "$1" $B xdp /bpf/kfunc_test.bpf.o --prog xdp_wasm_call \
			--packet udp:10.0.0.1:1000-10.0.0.2:2000 --repeat 100000 2>&1 | grep -q "verdict=2$" &&
			passed=$((passed + 1))
		runs=$((runs + 1))
	done
	echo "$runs $passed" > "/tmp/stress-xdp.$1"
}
touch /tmp/stress.run
for w in 1 2 3; do worker "$w" & done
for c in 0 1; do xdp "$c" & done
end=$(( $(date +%s) + STRESS_SECONDS ))
kills=0
while [ "$(date +%s)" -lt "$end" ]; do
	$W load $G/probe.wasm --name victim --entrypoint "" --fuel 1000000000000 > /dev/null 2>&1
	$W call victim spin > /dev/null 2>&1 &
	pid=$!
	usleep 300000
	kill -9 "$pid" 2> /dev/null && kills=$((kills + 1))
	wait "$pid" 2> /dev/null
	$W unload victim > /dev/null 2>&1
done
rm /tmp/stress.run
wait
ops=$(cat /tmp/stress.1 /tmp/stress.2 /tmp/stress.3 | awk '{ n += $1 } END { print n * 4 }')
read -r runs0 passed0 < /tmp/stress-xdp.0
read -r runs1 passed1 < /tmp/stress-xdp.1
calls=$(( $(probe_calls) - calls0 ))
echo "VMTEST INFO stress: ${STRESS_SECONDS}s, $ops worker requests, $kills calls killed mid-run, $((runs0 + runs1)) XDP runs of 100000 calls"
if [ $((runs0 + runs1)) -gt 0 ] && [ "$passed0" = "$runs0" ] && [ "$passed1" = "$runs1" ] &&
	[ "$calls" = $(( (runs0 + runs1) * 100000 )) ]; then
	ok stress-every-xdp-call-counted
else
	ko stress-every-xdp-call-counted "runs $runs0/$runs1, passed $passed0/$passed1, calls $calls"
fi
$W unload probe > /dev/null
for w in 1 2 3; do $W unload "w$w" > /dev/null 2>&1; done
if [ "$(live)" = "$base" ] && [ "$(modules)" = 0 ]; then ok stress-nothing-leaked; else ko stress-nothing-leaked "live $(live), was $base; $($W list)"; fi
# Kernel-wide counters move with everything else: a leak of requests' stacks or modules would
# show as megabytes. What the kernel frees after a grace period or from a work queue (BPF
# programs, their JIT images) may still be on its way: allow it 30 s.
settled() {
	slab=$(meminfo Slab) vmalloc=$(meminfo VmallocUsed)
	[ $((slab - slab0)) -lt 2048 ] && [ $((vmalloc - vmalloc0)) -lt 2048 ]
}
waited=0
until settled || [ $waited -ge 30 ]; do sleep 1; waited=$((waited + 1)); done
echo "VMTEST INFO slab ${slab0} -> ${slab} kB, vmalloc ${vmalloc0} -> ${vmalloc} kB (after ${waited}s)"
if settled; then
	ok stress-slab-vmalloc-baseline
else
	vmalloc_by_caller > /tmp/vmalloc1
	grown=$(awk 'NR == FNR { n[$1] = $2; next } $2 > n[$1] { print $1, n[$1] + 0, "->", $2 }' /tmp/vmalloc0 /tmp/vmalloc1 | tr "\n" ";")
	ko stress-slab-vmalloc-baseline "slab ${slab0} -> ${slab} kB, vmalloc ${vmalloc0} -> ${vmalloc} kB; grown: ${grown}"
fi

tries=0
until rmmod wasm 2>/dev/null || [ $tries -ge 10 ]; do tries=$((tries + 1)); sleep 1; done
if dmesg | grep -q "wasm: module unloaded, 0 wasm modules freed, 0 live allocations (0 bytes)"; then ok rmmod-nothing-leaked; else ko rmmod-nothing-leaked "$(dmesg | grep 'module unloaded')"; fi
finish
