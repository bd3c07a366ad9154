#!/bin/bash
# bench/cost.sh: where one read's CPU time goes, engine by engine.
#
# Runs aiobench's 4 KiB random-read workload at one queue depth on one
# cached file under `perf stat` for every engine, and prints, per read: the
# CPU time of all the process's threads, the system calls (and of them the
# futex and kcmp calls), and the context switches; with the CPUs the
# process kept busy and the cost of a null system call on this machine.  It
# is what explains a throughput ratio of make bench: a pool in user space
# pays at least one system call per read, kernel AIO and io_uring one per
# batch, and a hand-off to a worker costs the system calls it makes.
#
#   bench/cost.sh --bin build/bench/aiobench --lib build/.libs/libaiopool.so
#                 [--dir DIR] [--qd N] [--secs S]
#   (make bench-cost in the build tree)
#
# Needs perf(1) (Debian: linux-perf) with the raw_syscalls tracepoints.
set -eu

die() { echo "cost.sh: $*" >&2; exit 1; }

BIN= LIB= DIR=${TMPDIR:-/tmp} QD=32 SECS=3
while [ $# -gt 0 ]; do
	case $1 in
	--bin) BIN=$2; shift 2 ;;
	--lib) LIB=$2; shift 2 ;;
	--dir) DIR=$2; shift 2 ;;
	--qd) QD=$2; shift 2 ;;
	--secs) SECS=$2; shift 2 ;;
	*) die "unknown option $1" ;;
	esac
done
[ -x "$BIN" ] || die "--bin: no aiobench at '$BIN'"
[ -f "$LIB" ] || die "--lib: no libaiopool.so at '$LIB'"
command -v perf >/dev/null || die "perf(1) is missing (Debian: apt-get install linux-perf)"
perf stat -x, -e raw_syscalls:sys_enter true >/dev/null 2>&1 ||
	die "perf cannot count raw_syscalls:sys_enter here (run as root, or lower kernel.perf_event_paranoid)"

FILE=$(mktemp "$DIR/aiopool-cost.XXXXXX")
OUT=$(mktemp "$DIR/aiopool-cost-perf.XXXXXX")
trap 'rm -f "$FILE" "$OUT"' EXIT
head -c $((256 << 20)) /dev/urandom > "$FILE"
cat "$FILE" > /dev/null

EVENTS=task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_futex,syscalls:sys_enter_kcmp

# row LABEL ENV-ASSIGNMENTS... -- AIOBENCH-ARGS...: one engine's line.
row() {
	local label=$1 envs=() res
	shift
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	res=$(perf stat -x, -o "$OUT" -e "$EVENTS" -- env "${envs[@]}" \
		"$BIN" -w read -q "$QD" -d "$SECS" -W 0 "$@" "$FILE" | grep '^RESULT') ||
		die "$label: aiobench failed"
	awk -F, -v label="$label" -v res="$res" -v secs="$SECS" '
		BEGIN { n = split(res, kv, " ")
			for (i = 1; i <= n; i++) if (kv[i] ~ /^n=/) reads = substr(kv[i], 3) }
		$3 == "task-clock" { ms = $1 }
		$3 == "context-switches" { cs = $1 }
		$3 == "raw_syscalls:sys_enter" { sc = $1 }
		$3 == "syscalls:sys_enter_futex" { fx = $1 }
		$3 == "syscalls:sys_enter_kcmp" { kc = $1 }
		END {
			if (!reads) { print label ": no reads counted" > "/dev/stderr"; exit 1 }
			printf "| %s | %.0f | %.2f | %.2f | %.3f | %.3f | %.3f | %.3f |\n", label,
				reads / secs, ms / 1000 / secs, ms * 1000 / reads,
				sc / reads, fx / reads, kc / reads, cs / reads
		}' "$OUT"
}

null_syscall() {
	perf bench syscall basic --loop 2000000 2>/dev/null | awk '/usecs\/op/ { printf "%.2f", $1 }'
}

echo "4 KiB random reads, 1 cached file of 256 MiB, QD$QD, $SECS s per engine;"
echo "a null system call (getppid) costs $(null_syscall) us on this machine."
echo
echo "| engine | reads/s | CPUs busy | CPU us per read | syscalls per read | futex per read | kcmp per read | context switches per read |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|"
row "aiopool POSIX" LD_PRELOAD="$LIB" -- -x aiopool -e posix
row "aiopool POSIX, AIOPOOL_FASTPATH=0" LD_PRELOAD="$LIB" AIOPOOL_FASTPATH=0 -- -x aiopool -e posix
row "glibc POSIX" -- -x native -e posix
row "aiopool libaio" LD_PRELOAD="$LIB" -- -x aiopool -e libaio
row "aiopool libaio, AIOPOOL_FASTPATH=0" LD_PRELOAD="$LIB" AIOPOOL_FASTPATH=0 -- -x aiopool -e libaio
row "kernel AIO (libaio)" -- -x native -e libaio
row "io_uring (liburing)" -- -e uring
row "psync, 2 threads" -- -e psync -t 2
