#!/bin/bash
# bench/run.sh: runs the benchmark suite (make bench, make bench-quick,
# make demo call it with the paths of the built binaries).  It builds
# nothing: it creates the data files in a temporary directory, warms the page
# cache, runs bench/aiobench for every engine on every workload (each
# workload's engines interleaved, --reps rounds, the median kept), and prints
# a table with the machine it ran on.  The full run also runs fio as an
# outside referee and callgrind for instructions per request, and with
# --docs DIR writes DIR/performance.md (between its bench:begin/bench:end
# marks; the whole file when DIR has none) and DIR/performance.png.  make
# bench gives it the build tree's bench-results/ as DIR.
#
#   run.sh --bin AIOBENCH --lib LIBAIOPOOL_SO [--quick | --demo --aiocopy AIOCOPY]
#          [--docs DIR] [--results FILE] [--dir PARENT] [--secs S] [--warm S]
#          [--reps N] [--no-fio] [--no-callgrind]
#   run.sh --from RESULTS [--docs DIR]: renders the tables (and with --docs,
#          DIR/performance.md and the plot) from an earlier run's --results.
#   run.sh --copy-docs RUNDIR --docs DIR (make bench-docs): copies the
#          bench:begin/bench:end block of an earlier full run's
#          RUNDIR/performance.md into DIR/performance.md, and its plot into
#          DIR/performance.png.  Runs nothing.
set -u

BIN='' LIB='' DOCS='' RESULTS='' AIOCOPY='' PARENT=${TMPDIR:-/var/tmp}
MODE=full SECS='' WARM='' REPS='' FROM='' COPY='' FIO=1 CALLGRIND=1
while [ $# -gt 0 ]; do
	case $1 in
	--bin) BIN=$2; shift ;;
	--lib) LIB=$2; shift ;;
	--docs) DOCS=$2; shift ;;
	--results) RESULTS=$2; shift ;;
	--aiocopy) AIOCOPY=$2; shift ;;
	--from) FROM=$2; shift ;;
	--copy-docs) COPY=$2; shift ;;
	--dir) PARENT=$2; shift ;;
	--secs) SECS=$2; shift ;;
	--warm) WARM=$2; shift ;;
	--reps) REPS=$2; shift ;;
	--quick) MODE=quick ;;
	--demo) MODE=demo ;;
	--no-fio) FIO=0 ;;
	--no-callgrind) CALLGRIND=0 ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
die() { echo "run.sh: $*" >&2; exit 1; }
# has_block FILE: FILE has the bench:begin and bench:end marks.
has_block() { [ -f "$1" ] && grep -q '^<!-- bench:begin' "$1" && grep -q '^<!-- bench:end' "$1"; }
# splice BLOCK MD TMP: MD with its bench:begin..bench:end block replaced by
# the file BLOCK (through TMP; MD keeps its inode and mode).
splice() {
	awk -v gen="$1" '
		/^<!-- bench:begin/ { while ((getline l < gen) > 0) print l; skip = 1; next }
		/^<!-- bench:end/ { skip = 0; next }
		!skip' "$2" > "$3" && cat "$3" > "$2"
}

if [ -n "$COPY" ]; then
	[ -n "$DOCS" ] || die "--copy-docs needs --docs DIR"
	SRC=$COPY/performance.md MD=$DOCS/performance.md
	[ -f "$SRC" ] || die "no results in $COPY (no performance.md): run make bench first"
	has_block "$SRC" || die "$SRC has no bench:begin/bench:end block"
	has_block "$MD" || die "$MD has no bench:begin/bench:end block to replace"
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/aiobench-docs.XXXXXX") || die "cannot create a temporary directory"
	trap 'rm -rf "$TMP"' EXIT
	awk '/^<!-- bench:begin/ { p = 1 } p { print } /^<!-- bench:end/ { p = 0 }' "$SRC" > "$TMP/block.md"
	# A run without gnuplot shows no plot: DIR's own is then left alone.
	if grep -q '](performance\.png)' "$TMP/block.md"; then
		[ -f "$COPY/performance.png" ] || die "$SRC shows performance.png, but $COPY has none"
		cp "$COPY/performance.png" "$DOCS/performance.png" || die "cannot write $DOCS/performance.png"
		echo "wrote $DOCS/performance.png"
	fi
	splice "$TMP/block.md" "$MD" "$TMP/performance.md" || die "cannot write $MD"
	echo "wrote $MD: the results of $SRC ($(sed -n 's/^Measured \(.* UTC\) on .*/\1/p' "$TMP/block.md" | head -n 1))"
	exit 0
fi

if [ -n "$FROM" ]; then
	[ -f "$FROM" ] || die "--from $FROM: no such file"
else
	[ -x "$BIN" ] || die "no benchmark binary (--bin): run it through make bench"
	[ -f "$LIB" ] || die "no shared libaiopool (--lib $LIB): configure with shared libraries"
fi
[ "$MODE" != demo ] || [ -x "$AIOCOPY" ] || die "--demo needs --aiocopy"
if [ "$MODE" = full ]; then
	: "${SECS:=1}" "${WARM:=0.5}" "${REPS:=3}"
else
	: "${SECS:=0.7}" "${WARM:=0.3}" "${REPS:=3}"
	FIO=0 CALLGRIND=0
fi
NPROC=$(nproc)
CELL_TIMEOUT=300
# The short run keeps its own results file, so the full run's stays.
[ "$MODE" = full ] || [ -z "$RESULTS" ] || RESULTS=${RESULTS%.tsv}-quick.tsv

# ---- the machine -------------------------------------------------------
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
KERNEL=$(uname -r)
MACHINE="$NPROC cores ($CPU), Linux $KERNEL, $(getconf GNU_LIBC_VERSION 2>/dev/null || echo "unknown libc"), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
LOAD=$(cut -d ' ' -f 1-3 /proc/loadavg)
LOAD_END='?'

DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
FIOVER=$(fio --version 2>/dev/null | sed 's/^fio-//')
declare -A LABEL=(
	[aiopool]="aiopool POSIX" [glibc]="glibc POSIX" [aiopool-libaio]="aiopool libaio"
	[kaio]="kernel AIO (libaio)" [uring]="io_uring (liburing)" [psync]="psync"
)
ALL_ENGINES="aiopool glibc aiopool-libaio kaio uring psync"
# callgrind: the difference between CG_BIG and CG_SMALL QD1 reads, so that
# start-up and set-up cancel out.
CG_SMALL=2000 CG_BIG=22000
# The large reads of the submit-call rows.
BIG=$((16 << 20))
# fio's engines, keyed as in the results.
declare -A FLABEL=(
	[posixaio-glibc]="fio posixaio, glibc" [posixaio-aiopool]="fio posixaio, aiopool"
	[libaio-kernel]="fio libaio, kernel AIO" [libaio-aiopool]="fio libaio, aiopool"
	[io_uring]="fio io_uring" [psync]="fio psync"
)

# ---- data files ---------------------------------------------------------
DIR=$(mktemp -d "$PARENT/aiobench.XXXXXX") || die "cannot create a directory in $PARENT"
cleanup() { rm -rf "$DIR"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
RAW=$DIR/raw.tsv MED=$DIR/med.tsv
: > "$RAW"
FSTYPE=$(findmnt -n -o FSTYPE -T "$DIR" 2>/dev/null || stat -f -c %T "$DIR")

# measure: everything that runs; its results go to $RAW.  (Not run with
# --from, which renders the results of an earlier run.)
measure() {
echo "aiopool benchmark ($MODE): $MACHINE"
echo "data in $DIR ($FSTYPE), load average $LOAD, ${SECS}s per run after ${WARM}s warm-up, median of $REPS"
if awk -v l="${LOAD%% *}" -v n="$NPROC" 'BEGIN { exit !(l >= n) }'; then
	echo "note: the machine is busy (load average ${LOAD%% *} on $NPROC cores): expect noisy figures"
fi

if [ "$MODE" = demo ]; then
	echo
	echo "== demo: copy a 64 MiB file through aiopool's POSIX AIO, compare byte for byte"
	head -c $((64 << 20)) /dev/urandom > "$DIR/demo.src" || die "cannot write $DIR"
	"$AIOCOPY" "$DIR/demo.src" "$DIR/demo.dst" || die "aiocopy failed"
	cmp "$DIR/demo.src" "$DIR/demo.dst" || die "the copy differs from its source"
	echo "copy verified: identical"
	rm -f "$DIR/demo.src" "$DIR/demo.dst"
	MODE=quick
fi

mkfile() { dd if=/dev/zero of="$1" bs=1M count="$2" status=none || die "cannot write $1"; }
echo
printf 'creating data files and warming the page cache...'
mkfile "$DIR/one.dat" 1024
EIGHT=
for i in 0 1 2 3 4 5 6 7; do
	mkfile "$DIR/eight$i.dat" 128
	EIGHT="$EIGHT $DIR/eight$i.dat"
done
[ "$MODE" = full ] && mkfile "$DIR/mixed.dat" 256
cat "$DIR"/*.dat > /dev/null
echo " done"
if command -v fincore > /dev/null; then
	fincore -n -b -o RES,SIZE "$DIR"/*.dat 2>/dev/null |
		awk '{ r += $1; s += $2 } END { if (s) printf "page cache holds %.0f%% of the data\n", 100 * r / s }'
fi

PROBE=$(env LD_PRELOAD="$LIB" "$BIN" -P)
case $PROBE in *libaio=1*) HAVE_LIBAIO=1 ;; *) HAVE_LIBAIO=0 ;; esac
case $PROBE in *posix=1*) ;; *) die "LD_PRELOAD=$LIB does not take aio_read: is it libaiopool?" ;; esac

# ---- running cells ------------------------------------------------------
# engine_cmd ENGINE: sets ENVS (environment) and ARGS (aiobench's engine
# options) for that engine, and CMD to the whole command.  XENV: more
# environment (the knob sweeps).
XENV=()
engine_cmd() {
	ENVS=("${XENV[@]}")
	case $1 in
	aiopool) ENVS+=(LD_PRELOAD="$LIB"); ARGS=(-x aiopool -e posix) ;;
	glibc) ARGS=(-x native -e posix) ;;
	aiopool-libaio) ENVS+=(LD_PRELOAD="$LIB"); ARGS=(-x aiopool -e libaio) ;;
	kaio) ARGS=(-x native -e libaio) ;;
	uring) ARGS=(-e uring) ;;
	psync) ARGS=(-e psync) ;;
	*) die "engine $1?" ;;
	esac
	CMD=(env "${ENVS[@]}" "$BIN" "${ARGS[@]}")
}

# record WORKLOAD ENGINE REP OUTPUT RC: aiobench's output to raw lines
# (workload, engine, rep, ops/s, mean us, p99 us, note).  The submit-call
# workloads (sub-*) keep the p50 of the call in the mean's place.
record() {
	printf '%s\n' "$4" | awk -v w="$1" -v e="$2" -v r="$3" -v rc="$5" '
		function kv(k,   i) { for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) return substr($i, length(k) + 2); return "" }
		/^RESULT/ { cls = kv("cls"); n++
			printf "%s\t%s\t%s\t%s\t%s\t%s\t\n", w, (cls == "all" ? e : e ":" cls), r, kv("ops"),
				kv(w ~ /^sub-/ ? "p50_us" : "mean_us"), kv("p99_us") }
		/^NA / { na = substr($0, 4) }
		{ last = $0 }
		END {
			if (na != "") printf "%s\t%s\t%s\tNA\t\t\t%s\n", w, e, r, na
			else if (!n || rc != 0) printf "%s\t%s\t%s\tFAIL\t\t\t%s\n", w, e, r, "exit " rc ": " last
		}' >> "$RAW"
	if [ "$5" != 0 ]; then
		echo
		echo "run.sh: $1 on $2 failed (exit $5):" >&2
		printf '%s\n' "$4" | tail -n 3 >&2
	fi
}

# cell WORKLOAD ENGINE REP AIOBENCH-ARGS...
cell() {
	local w=$1 e=$2 r=$3 out rc
	shift 3
	engine_cmd "$e"
	out=$(timeout "$CELL_TIMEOUT" "${CMD[@]}" "$@" 2>&1)
	rc=$?
	record "$w" "$e" "$r" "$out" "$rc"
	printf .
}

# group LABEL ENGINES WORKLOAD:ARGS... : every engine on each workload,
# interleaved, $REPS rounds.  psync gets -t min(QD, cores) (-T N forces N).
group() {
	local label=$1 engines=$2 spec w args e r q t
	shift 2
	printf '%-44s' "$label"
	for r in $(seq "$REPS"); do
		for spec in "$@"; do
			w=${spec%%:*} args=${spec#*:}
			for e in $engines; do
				if [ "$e" = psync ]; then
					# shellcheck disable=SC2086
					q=$(printf '%s\n' $args | sed -n '/^-q$/{n;p}')
					# shellcheck disable=SC2086
					t=$(printf '%s\n' $args | sed -n '/^-T$/{n;p}')
					[ -n "$t" ] || t=$(( ${q:-1} < NPROC ? ${q:-1} : NPROC ))
					# shellcheck disable=SC2086,SC2046
					cell "$w" "$e" "$r" $(printf '%s\n' $args | sed '/^-T$/,+1d') -t "$t"
				else
					# shellcheck disable=SC2086,SC2046
					cell "$w" "$e" "$r" $(printf '%s\n' $args | sed '/^-T$/,+1d')
				fi
			done
		done
	done
	echo
}

T=(-d "$SECS" -W "$WARM")
ONE=$DIR/one.dat
echo
echo "running (each dot is one run):"
if [ "$MODE" = quick ]; then
	E="aiopool glibc psync"
	group "4K random reads, 1 file, QD1 and QD32" "$E" \
		"r1-q1:-w read -q 1 ${T[*]} $ONE" "r1-q32:-w read -q 32 ${T[*]} $ONE"
	group "4K random reads, 8 files, QD32" "$E" "r8-q32:-w read -q 32 ${T[*]} $EIGHT"
	group "lio_listio batches of 64" "$E" "lio:-w lio -q 64 -T $NPROC ${T[*]} $ONE"
	group "SIGEV_THREAD completions, QD32" "aiopool glibc" "sigthread:-w sigthread -q 32 ${T[*]} $ONE"
else
	E=$ALL_ENGINES
	for q in 1 8 32 128; do
		group "4K random reads, 1 file, QD$q" "$E" "r1-q$q:-w read -q $q ${T[*]} $ONE"
	done
	for q in 1 8 32 128; do
		group "4K random reads, 8 files, QD$q" "$E" "r8-q$q:-w read -q $q ${T[*]} $EIGHT"
	done
	group "4K random reads, O_DIRECT, QD32" "$E" "direct:-w read -D -q 32 -T 32 ${T[*]} $ONE"
	group "64K O_APPEND writes, QD8" "$E" "append:-w append -b 65536 -q 8 ${T[*]} $DIR/append.dat"
	group "4K mixed r/w, fsync every 64 writes, QD32" "$E" "mixed:-w mixed -q 32 ${T[*]} $DIR/mixed.dat"
	group "lio_listio batches of 64" "$E" "lio:-w lio -q 64 -T $NPROC ${T[*]} $ONE"
	group "SIGEV_THREAD and SIGEV_SIGNAL, QD32" "aiopool glibc" \
		"sigthread:-w sigthread -q 32 ${T[*]} $ONE" "sigsignal:-w sigsignal -q 32 ${T[*]} $ONE"
	group "priority: 1 high vs 128 low, one file" "aiopool glibc" "prio:-w prio -q 128 ${T[*]} $ONE"
	group "4K random reads, QD32, 2 us of work per I/O" "$E" "work-q32:-w read -q 32 -c 2 ${T[*]} $ONE"
	group "SIGEV_THREAD, batches of 32 awaited whole" "aiopool glibc" "sigbatch:-w sigbatch -q 32 ${T[*]} $ONE"
	# -t for aiobench's engines, -T (psync's thread count) for psync.
	group "QD1: 1 thread on 1 file, 2 threads on 2" "aiopool psync" \
		"ts1:-w read -q 1 -t 1 -T 1 ${T[*]} $DIR/eight0.dat" \
		"ts2:-w read -q 1 -t 2 -T 2 ${T[*]} $DIR/eight0.dat $DIR/eight1.dat"
	group "time inside the submit call" "aiopool glibc aiopool-libaio kaio" \
		"sub-direct:-w submit -D -q 32 ${T[*]} $ONE" \
		"sub-big:-w submit -b $BIG -q 4 ${T[*]} $ONE" \
		"sub-biglist:-w submit -l -b $BIG -q 10 ${T[*]} $ONE" \
		"sub-list:-w submit -l -q 64 ${T[*]} $ONE"
	printf '%-44s' "aiopool threads, 8 files, QD128"
	for r in $(seq "$REPS"); do
		for n in 1 2 4 8 20 64; do
			XENV=(AIOPOOL_THREADS="$n")
			# shellcheck disable=SC2086,SC2046
			cell "thr-$n" aiopool "$r" -w read -q 128 "${T[@]}" $EIGHT
		done
	done
	echo
	printf '%-44s' "aiopool per-fd concurrency, 1 file, QD32"
	for r in $(seq "$REPS"); do
		for n in 1 2 4 8 16 32; do
			XENV=(AIOPOOL_FD_CONCURRENCY="$n")
			cell "fdc-$n" aiopool "$r" -w read -q 32 "${T[@]}" "$ONE"
		done
	done
	echo
	printf '%-44s' "aiopool fast path off and on, QD1, QD32"
	for r in $(seq "$REPS"); do
		for q in 1 32; do
			for v in 0 1; do
				XENV=(AIOPOOL_FASTPATH="$v")
				cell "fp$v-q$q" aiopool "$r" -w read -q "$q" "${T[@]}" "$ONE"
			done
		done
	done
	XENV=()
	echo
	printf '%-44s' "100,000 requests in flight"
	for e in aiopool glibc; do
		engine_cmd "$e"
		out=$(timeout "$CELL_TIMEOUT" "${CMD[@]}" -w mem 2>&1)
		rc=$?
		printf '%s\n' "$out" | awk -v e="$e" -v rc="$rc" '
			function kv(k,   i) { for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) return substr($i, length(k) + 2); return "" }
			/cls=mem/ { m = sprintf("mem\t%s\t1\t%s\t%s\t%s", e, kv("bytes_per_req"), kv("submit_ns_per_req"), kv("drain_ms")) }
			/cls=idle/ { idle = kv("threads_after_idle") " after " kv("idle_ms") " ms" }
			END { if (m != "" && rc == 0) print m "\t" idle; else print "mem\t" e "\t1\tFAIL\t\t\texit " rc }' >> "$RAW"
		[ "$rc" = 0 ] || printf '\n%s\n' "$out" | tail -n 3 >&2
		printf .
	done
	echo
fi

# ---- fio, the outside referee ------------------------------------------
# fio_cell WORKLOAD ENGINE-LABEL PRELOAD FIO-ARGS...
fio_cell() {
	local w=$1 e=$2 pre=$3 out rc
	shift 3
	if [ -n "$pre" ]; then
		out=$(LD_PRELOAD=$pre timeout "$CELL_TIMEOUT" fio "$@" 2>&1)
	else
		out=$(timeout "$CELL_TIMEOUT" fio "$@" 2>&1)
	fi
	rc=$?
	# From fio's JSON, the read side: iops, the 99th percentile of
	# completion latency (clat_ns), the mean of total latency (lat_ns).
	printf '%s\n' "$out" | awk -v w="$w" -v e="$e" -v rc="$rc" '
		function val() { v = $0; sub(/.*: */, "", v); sub(/,$/, "", v); return v + 0 }
		/"read" : \{/ && !state { state = 1; next }
		/"write" : \{/ { state = state ? 2 : 0 }
		state == 1 && /"iops" :/ && iops == "" { iops = val() }
		state == 1 && /"99\.000000" :/ && p99 == "" { p99 = val() / 1000 }
		state == 1 && /"lat_ns" :/ { inlat = 1 }
		state == 1 && inlat && /"mean" :/ && mean == "" { mean = val() / 1000 }
		END { if (iops != "" && rc == 0) printf "%s\t%s\t1\t%.0f\t%.2f\t%.2f\t\n", w, e, iops, mean, p99
		      else printf "%s\t%s\t1\tFAIL\t\t\texit %s\n", w, e, rc }' >> "$RAW"
	[ "$rc" = 0 ] || printf '\n%s\n' "$out" | tail -n 3 >&2
	printf .
}

# fio_row WORKLOAD QD FILES DIRECT: fio's engines on one workload.
fio_row() {
	local w=$1 q=$2 f=$3 jobs
	local F=(--filename="$f" --size=1g --file_service_type=random --iodepth="$q" --direct="$4")
	jobs=$(( q < NPROC ? q : NPROC ))
	fio_cell "$w" posixaio-glibc "" "${FIOT[@]}" "${F[@]}" --ioengine=posixaio
	fio_cell "$w" posixaio-aiopool "$LIB" "${FIOT[@]}" "${F[@]}" --ioengine=posixaio
	fio_cell "$w" libaio-kernel "" "${FIOT[@]}" "${F[@]}" --ioengine=libaio
	if [ "$HAVE_LIBAIO" = 1 ]; then
		fio_cell "$w" libaio-aiopool "$LIB" "${FIOT[@]}" "${F[@]}" --ioengine=libaio
	else
		printf '%s\t%s\t1\tNA\t\t\t%s\n' "$w" libaio-aiopool "no libaio front end yet" >> "$RAW"
	fi
	fio_cell "$w" io_uring "" "${FIOT[@]}" "${F[@]}" --ioengine=io_uring
	[ "$4" = 1 ] || fio_cell "$w" psync "" "${FIOT[@]}" "${F[@]}" --ioengine=psync --numjobs="$jobs"
}

if [ "$FIO" = 1 ]; then
	if command -v fio > /dev/null; then
		printf '%-44s' "fio: posixaio, libaio, io_uring, psync"
		FIOT=(--name=bench --rw=randread --bs=4k --invalidate=0 --time_based
		      --runtime=3 --ramp_time=1 --output-format=json --group_reporting)
		fio_row fio-r1-q1 1 "$ONE" 0
		fio_row fio-r1-q32 32 "$ONE" 0
		fio_row fio-r8-q32 32 "$(printf '%s' "${EIGHT# }" | tr ' ' ':')" 0
		if dd if="$ONE" of=/dev/null bs=4k count=1 iflag=direct status=none 2> /dev/null; then
			fio_row fio-direct 32 "$ONE" 1
		else
			for e in posixaio-glibc posixaio-aiopool libaio-kernel libaio-aiopool io_uring; do
				printf 'fio-direct\t%s\t1\tNA\t\t\tO_DIRECT not supported by this filesystem\n' "$e" >> "$RAW"
			done
		fi
		echo
	else
		echo "fio not installed: no referee rows"
	fi
fi

# ---- callgrind: instructions per request --------------------------------
# User-space instructions only: the system calls' own cost is not counted.
if [ "$CALLGRIND" = 1 ]; then
	if command -v valgrind > /dev/null; then
		printf '%-44s' "callgrind: instructions per QD1 read"
		for e in aiopool glibc aiopool-libaio kaio uring psync; do
			if [ "$e" = aiopool-libaio ] && [ "$HAVE_LIBAIO" = 0 ]; then
				printf 'cg\t%s\t1\tNA\t\t\tno libaio front end yet\n' "$e" >> "$RAW"
				continue
			fi
			engine_cmd "$e"
			ir=()
			for n in $CG_SMALL $CG_BIG; do
				out=$(timeout "$CELL_TIMEOUT" env "${ENVS[@]}" valgrind --tool=callgrind \
					--callgrind-out-file="$DIR/callgrind.out" "$BIN" "${ARGS[@]}" \
					-w read -q 1 -n "$n" "$ONE" 2>&1)
				ir+=("$(printf '%s\n' "$out" | sed -n 's/.*Collected : \([0-9]*\).*/\1/p' | tail -n 1)")
				printf .
			done
			if [ -n "${ir[0]}" ] && [ -n "${ir[1]}" ]; then
				awk -v e="$e" -v a="${ir[0]}" -v b="${ir[1]}" -v n=$((CG_BIG - CG_SMALL)) \
					'BEGIN { printf "cg\t%s\t1\t%.0f\t\t\t\n", e, (b - a) / n }' >> "$RAW"
			else
				printf 'cg\t%s\t1\tFAIL\t\t\tvalgrind run failed\n' "$e" >> "$RAW"
			fi
		done
		rm -f "$DIR/callgrind.out"
		echo
	else
		echo "valgrind not installed: no instruction counts"
	fi
fi

LOAD_END=$(cut -d ' ' -f 1-3 /proc/loadavg)
}

META="MODE SECS WARM REPS NPROC KERNEL MACHINE DATE LOAD LOAD_END FSTYPE FIOVER CG_SMALL CG_BIG"
if [ -n "$FROM" ]; then
	echo "rendering the results in $FROM"
	grep -v '^#meta' "$FROM" > "$RAW"
	while IFS=$'\t' read -r _ k v; do
		case " $META " in *" $k "*) printf -v "$k" '%s' "$v" ;; esac
	done < <(grep '^#meta' "$FROM")
	grep -q '^fio-' "$RAW" && FIO=1 || FIO=0
	grep -q '^cg	' "$RAW" && CALLGRIND=1 || CALLGRIND=0
else
	measure
fi

# ---- medians ------------------------------------------------------------
# Per workload and engine, the run with the median ops/s (the lower middle
# of an even count), for the submit-call rows (sub-*) the run with the
# median p50; NA or FAIL when no run measured.
awk -F'\t' '
	{ k = $1 SUBSEP $2; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
	  if ($4 ~ /^[0-9.]+$/) { m = ++cnt[k]; line[k, m] = $0; ops[k, m] = ($1 ~ /^sub-/ ? $5 : $4) + 0 }
	  else bad[k] = $0 }
	END {
		for (i = 1; i <= n; i++) {
			k = order[i]; m = cnt[k]
			if (!m) { print dash(bad[k]); continue }
			for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++)
				if (ops[k, b] < ops[k, a]) { t = ops[k, a]; ops[k, a] = ops[k, b]; ops[k, b] = t
					t = line[k, a]; line[k, a] = line[k, b]; line[k, b] = t }
			print dash(line[k, int((m + 1) / 2)])
		}
	}
	# Empty fields as "-": read(1) would merge adjacent tabs.
	function dash(l,   f, i, n, o) { n = split(l, f, "\t"); o = f[1] == "" ? "-" : f[1]
		for (i = 2; i <= n; i++) o = o "\t" (f[i] == "" ? "-" : f[i]); return o }' "$RAW" > "$MED"
if [ -n "$RESULTS" ] && [ -z "$FROM" ]; then
	{
		for k in $META; do printf '#meta\t%s\t%s\n' "$k" "${!k}"; done
		cat "$RAW"
	} > "$RESULTS"
fi

# OPS[workload/engine] and so on; the knob sweeps (aiopool only) are also
# keyed by their workload alone.
declare -A OPS MEAN P99 NOTE
while IFS=$'\t' read -r w e _ ops mean p99 note; do
	[ "$note" = - ] && note=
	OPS[$w/$e]=$ops MEAN[$w/$e]=$mean P99[$w/$e]=$p99 NOTE[$w/$e]=$note
	case $w in thr-*|fdc-*|fp*) OPS[$w]=$ops MEAN[$w]=$mean P99[$w]=$p99 ;; esac
done < "$MED"

num() { [[ ${OPS[$1]-} =~ ^[0-9.]+$ ]]; }
# ratio A B: ops of A over ops of B, or -
ratio() {
	if num "$1" && num "$2"; then
		awk -v a="${OPS[$1]}" -v b="${OPS[$2]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'
	else
		printf -- -
	fi
}
# p50_ratio A B: the submit call's p50 (kept as the mean) of A over B's, or -
p50_ratio() {
	if num "$1" && num "$2" && [[ ${MEAN[$1]-} =~ ^[0-9.]+$ ]] && [[ ${MEAN[$2]-} =~ ^[0-9.]+$ ]]; then
		awk -v a="${MEAN[$1]}" -v b="${MEAN[$2]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'
	else
		printf -- -
	fi
}
fmt_ops() { num "$1" && printf '%.0f' "${OPS[$1]}" || printf '%s' "${OPS[$1]:-}"; }
fmt_us() { [[ $1 =~ ^[0-9.]+$ ]] && printf "%.${2:-1}f" "$1" || printf -- -; }

# ---- tables --------------------------------------------------------------
# table_rows STYLE WORKLOAD ENGINE...: one row per engine; STYLE text or md.
# Ratio columns: aiopool POSIX / this, and aiopool libaio / this.
table_rows() {
	local style=$1 w=$2 e k lab r1 r2 o m p
	shift 2
	for e in "$@"; do
		k=$w/$e
		[ -n "${OPS[$k]+x}" ] || continue
		lab=${LABEL[$e]:-$e}
		if [ "$e" = psync ] && [ -n "${PSYNC_T[$w]:-}" ]; then
			lab="psync, ${PSYNC_T[$w]} thread"
			[ "${PSYNC_T[$w]}" = 1 ] || lab="${lab}s"
		fi
		r1=$(ratio "$w/aiopool" "$k") r2=$(ratio "$w/aiopool-libaio" "$k")
		if num "$k"; then
			o=$(fmt_ops "$k") m=$(fmt_us "${MEAN[$k]}") p=$(fmt_us "${P99[$k]}")
		else
			o="n/a" m="" p="" r1="" r2=""
			lab="$lab (${NOTE[$k]})"
		fi
		if [ "$style" = md ]; then
			printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$WLABEL" "$lab" "$o" "$m" "$p" "$r1" "$r2"
			WLABEL=
		else
			printf '  %-52.52s %-30.30s %10s %9s %9s %8s %8s\n' "${WLABEL//µ/u}" "$lab" "$o" "$m" "$p" "$r1" "$r2"
			WLABEL=
		fi
	done
}

declare -A PSYNC_T WNAME
for q in 1 8 32 128; do
	PSYNC_T[r1-q$q]=$(( q < NPROC ? q : NPROC )) PSYNC_T[r8-q$q]=${PSYNC_T[r1-q$q]}
	WNAME[r1-q$q]="4K random reads, 1 file, QD$q" WNAME[r8-q$q]="4K random reads, 8 files, QD$q"
done
PSYNC_T[direct]=32 PSYNC_T[append]=$NPROC PSYNC_T[mixed]=$NPROC PSYNC_T[lio]=$NPROC
PSYNC_T[work-q32]=${PSYNC_T[r1-q32]} PSYNC_T[ts1]=1 PSYNC_T[ts2]=2
WNAME[work-q32]="4K random reads, 1 file, QD32, 2 µs of work per I/O"
WNAME[sigbatch]="SIGEV_THREAD, batches of 32, each awaited whole"
WNAME[ts1]="4K random reads, QD1: 1 thread on 1 file"
WNAME[ts2]="4K random reads, QD1 each: 2 threads on 2 files"
WNAME[sub-direct]="O_DIRECT 4 KiB reads, 32 calls of one: aio_read, io_submit"
WNAME[sub-big]="$((BIG >> 20)) MiB cached reads, 4 calls of one: aio_read, io_submit"
WNAME[sub-biglist]="lists of 10 $((BIG >> 20)) MiB cached reads: lio_listio(LIO_NOWAIT), io_submit"
WNAME[sub-list]="lists of 64 4 KiB cached reads: lio_listio(LIO_NOWAIT), io_submit"
WNAME[direct]="4K random reads, O_DIRECT, QD32"
WNAME[append]="64K O_APPEND writes, QD8"
WNAME[mixed]="4K r/w 50/50, fsync every 64 writes, QD32"
WNAME[lio]="lio_listio batches of 64 (latency: batch)"
WNAME[sigthread]="SIGEV_THREAD notifications, QD32"
WNAME[sigsignal]="SIGEV_SIGNAL notifications, QD32"
if [ "$MODE" = quick ]; then
	MAIN_WL="r1-q1 r1-q32 r8-q32 lio sigthread"
else
	MAIN_WL="r1-q1 r1-q8 r1-q32 r1-q128 r8-q1 r8-q8 r8-q32 r8-q128 direct work-q32 append mixed lio sigthread sigsignal sigbatch ts1 ts2"
fi

main_table() {
	local style=$1 w
	if [ "$style" = md ]; then
		echo "| workload | engine | ops/s | mean µs | p99 µs | aiopool POSIX ÷ this | aiopool libaio ÷ this |"
		echo "|---|---|--:|--:|--:|--:|--:|"
	else
		printf '  %-52s %-30s %10s %9s %9s %8s %8s\n' workload engine ops/s "mean us" "p99 us" "posix÷" "libaio÷"
	fi
	for w in $MAIN_WL; do
		WLABEL=${WNAME[$w]}
		# shellcheck disable=SC2086,SC2046
		table_rows "$style" "$w" $ALL_ENGINES
	done
}

prio_table() {
	local style=$1 e c k
	[ "$style" = md ] && echo "| engine | class | ops/s | mean µs | p99 µs |" && echo "|---|---|--:|--:|--:|"
	for e in aiopool glibc; do
		for c in high low; do
			k=prio/$e:$c
			if num "$k"; then
				if [ "$style" = md ]; then
					printf '| %s | %s | %s | %s | %s |\n' "${LABEL[$e]}" "$c" "$(fmt_ops "$k")" "$(fmt_us "${MEAN[$k]}")" "$(fmt_us "${P99[$k]}")"
				else
					printf '  %-16s %-6s %10s %9s %9s\n' "${LABEL[$e]}" "$c" "$(fmt_ops "$k")" "$(fmt_us "${MEAN[$k]}")" "$(fmt_us "${P99[$k]}")"
				fi
			fi
		done
	done
}

# sweep_table STYLE PREFIX KNOB VALUES...: ops against the best value.
sweep_table() {
	local style=$1 pre=$2 knob=$3 v k best=0
	shift 3
	for v in "$@"; do
		num "$pre$v" && best=$(awk -v a="$best" -v b="${OPS[$pre$v]}" 'BEGIN { printf "%.0f", (b > a ? b : a) }')
	done
	[ "$style" = md ] && echo "| $knob | ops/s | mean µs | p99 µs | ÷ best |" && echo "|--:|--:|--:|--:|--:|"
	for v in "$@"; do
		k=$pre$v
		num "$k" || continue
		r=$(awk -v a="${OPS[$k]}" -v b="$best" 'BEGIN { printf "%.2f", a / b }')
		if [ "$style" = md ]; then
			printf '| %s | %s | %s | %s | %s |\n' "$v" "$(fmt_ops "$k")" "$(fmt_us "${MEAN[$k]}")" "$(fmt_us "${P99[$k]}")" "$r"
		else
			printf '  %-24s %10s %9s %9s %8s\n' "$knob=$v" "$(fmt_ops "$k")" "$(fmt_us "${MEAN[$k]}")" "$(fmt_us "${P99[$k]}")" "$r"
		fi
	done
}

fio_table() {
	local style=$1 w e k lab j
	[ "$style" = md ] && echo "| workload | fio engine | IOPS | mean µs | p99 µs (completion) |" && echo "|---|---|--:|--:|--:|"
	for w in fio-r1-q1 fio-r1-q32 fio-r8-q32 fio-direct; do
		WLABEL=${WNAME[${w#fio-}]}
		while IFS=$'\t' read -r ww e _; do
			[ "$ww" = "$w" ] || continue
			k=$w/$e
			lab=${FLABEL[$e]:-$e}
			if [ "$e" = psync ]; then
				j=$(( ${w#fio-r?-q} < NPROC ? ${w#fio-r?-q} : NPROC ))
				lab="$lab, $j job$([ "$j" = 1 ] || echo s)"
			fi
			if num "$k"; then
				set -- "$(fmt_ops "$k")" "$(fmt_us "${MEAN[$k]}")" "$(fmt_us "${P99[$k]}")"
			else
				set -- "n/a (${NOTE[$k]})" "" ""
			fi
			if [ "$style" = md ]; then
				printf '| %s | %s | %s | %s | %s |\n' "$WLABEL" "$lab" "$1" "$2" "$3"
			else
				printf '  %-32.32s %-26s %10s %9s %9s\n' "$WLABEL" "$lab" "$1" "$2" "$3"
			fi
			WLABEL=
		done < "$MED"
	done
}

cg_table() {
	local style=$1 e k
	[ "$style" = md ] && echo "| engine | instructions per request |" && echo "|---|--:|"
	for e in aiopool glibc aiopool-libaio kaio uring psync; do
		k=cg/$e
		[ -n "${OPS[$k]+x}" ] || continue
		local v=${OPS[$k]}
		num "$k" || v="n/a (${NOTE[$k]})"
		lab=${LABEL[$e]}
		[ "$e" = psync ] && lab="psync, 1 thread"
		if [ "$style" = md ]; then
			printf '| %s | %s |\n' "$lab" "$v"
		else
			printf '  %-30s %s\n' "$lab" "$v"
		fi
	done
}

# The RWF_NOWAIT fast path switched off and on (AIOPOOL_FASTPATH).
fp_table() {
	local style=$1 q k0 k1 r
	[ "$style" = md ] && echo "| 1 file | off: ops/s | mean µs | p99 µs | on: ops/s | mean µs | p99 µs | on ÷ off |" &&
		echo "|---|--:|--:|--:|--:|--:|--:|--:|"
	for q in 1 32; do
		k0=fp0-q$q k1=fp1-q$q
		num "$k0" || num "$k1" || continue
		r=$(ratio "$k1" "$k0")
		if [ "$style" = md ]; then
			printf '| QD%s | %s | %s | %s | %s | %s | %s | %s |\n' "$q" \
				"$(fmt_ops "$k0")" "$(fmt_us "${MEAN[$k0]:-}")" "$(fmt_us "${P99[$k0]:-}")" \
				"$(fmt_ops "$k1")" "$(fmt_us "${MEAN[$k1]:-}")" "$(fmt_us "${P99[$k1]:-}")" "$r"
		else
			printf '  QD%-4s off %10s %9s %9s   on %10s %9s %9s   on÷off %s\n' "$q" \
				"$(fmt_ops "$k0")" "$(fmt_us "${MEAN[$k0]:-}")" "$(fmt_us "${P99[$k0]:-}")" \
				"$(fmt_ops "$k1")" "$(fmt_us "${MEAN[$k1]:-}")" "$(fmt_us "${P99[$k1]:-}")" "$r"
		fi
	done
}

mem_table() {
	local style=$1 e
	[ "$style" = md ] && echo "| engine | resident bytes per queued request | submission ns per request | drain of 100,000 (ms) | workers left after the idle time |" && echo "|---|--:|--:|--:|--:|"
	for e in aiopool glibc; do
		local k=mem/$e
		num "$k" || continue
		if [ "$style" = md ]; then
			printf '| %s | %s | %s | %s | %s |\n' "${LABEL[$e]}" "${OPS[$k]}" "${MEAN[$k]}" "${P99[$k]}" "${NOTE[$k]:-n/a}"
		else
			printf '  %-16s %8s B/request  %8s ns/submission  drain %s ms  workers after idle: %s\n' \
				"${LABEL[$e]}" "${OPS[$k]}" "${MEAN[$k]}" "${P99[$k]}" "${NOTE[$k]:-n/a}"
		fi
	done
}

# The time inside the submit call: p50 and p99 per engine.
submit_table() {
	local style=$1 w e k r
	[ "$style" = md ] && echo "| submit call | engine | p50 µs | p99 µs | aiopool POSIX ÷ this (p50) |" &&
		echo "|---|---|--:|--:|--:|"
	for w in sub-direct sub-big sub-biglist sub-list; do
		WLABEL=${WNAME[$w]}
		[ "$style" = md ] || printf '  %s\n' "$WLABEL"
		for e in aiopool glibc aiopool-libaio kaio; do
			k=$w/$e
			[ -n "${OPS[$k]+x}" ] || continue
			if num "$k"; then
				r=$(p50_ratio "$w/aiopool" "$k")
				set -- "${LABEL[$e]}" "$(fmt_us "${MEAN[$k]}" 2)" "$(fmt_us "${P99[$k]}" 2)" "$r"
			else
				set -- "${LABEL[$e]} (${NOTE[$k]})" "n/a" "" ""
			fi
			if [ "$style" = md ]; then
				printf '| %s | %s | %s | %s | %s |\n' "$WLABEL" "$1" "$2" "$3" "$4"
				WLABEL=
			else
				printf '    %-40.40s p50 %9s us  p99 %9s us  posix÷ %s\n' "$1" "$2" "$3" "$4"
			fi
		done
	done
}

# ---- goals ----------------------------------------------------------------
# goal STYLE WORKLOAD GOAL-TEXT MEASURED-RATIO GOAL ge|le: one row; in the
# short run only the goals it measured.
goal() {
	local style=$1 w=$2 text=$3 r=$4 g=$5 dir=$6 verdict m
	if [ "$r" = - ] || [ -z "$r" ]; then
		[ "$MODE" = full ] || return 0
		verdict="not measured" m=-
	elif awk -v r="$r" -v g="$g" -v d="$dir" 'BEGIN { exit !(d == "ge" ? r >= g : r <= g) }'; then
		verdict=yes m=${r}x
	else
		verdict=no m=${r}x
	fi
	if [ "$style" = md ]; then
		printf '| %s | %s | %s | %s |\n' "$w" "$text" "$m" "$verdict"
	else
		text=${text//≥/>=} text=${text//≤/<=} text=${text//×/x} w=${w//×/x}
		printf '  %-60.60s %-28s %8s  %s\n' "$w" "$text" "$m" "$verdict"
	fi
}

goals() {
	local style=$1 t=${PSYNC_T[r1-q32]}
	if [ "$style" = md ]; then
		echo "| workload | goal | measured | met? |"
		echo "|---|---|--:|---|"
	else
		printf '  %-60s %-28s %8s  %s\n' workload goal measured "met?"
	fi
	goal "$style" "fio posixaio QD32, 1 cached file" "≥ 1.3x io_uring" \
		"$(ratio fio-r1-q32/posixaio-aiopool fio-r1-q32/io_uring)" 1.3 ge
	goal "$style" "fio posixaio QD32, 1 cached file" "≥ 1.8x glibc" \
		"$(ratio fio-r1-q32/posixaio-aiopool fio-r1-q32/posixaio-glibc)" 1.8 ge
	goal "$style" "fio posixaio QD1, 1 cached file" "≥ 0.85x psync" \
		"$(ratio fio-r1-q1/posixaio-aiopool fio-r1-q1/psync)" 0.85 ge
	goal "$style" "fio posixaio QD32, 8 cached files" "≥ 10x glibc" \
		"$(ratio fio-r8-q32/posixaio-aiopool fio-r8-q32/posixaio-glibc)" 10 ge
	goal "$style" "fio libaio QD32 under aiopool, 1 cached file" "≥ 1.3x kernel AIO" \
		"$(ratio fio-r1-q32/libaio-aiopool fio-r1-q32/libaio-kernel)" 1.3 ge
	goal "$style" "fio libaio QD32 under aiopool, 1 cached file" "≥ 1.0x io_uring" \
		"$(ratio fio-r1-q32/libaio-aiopool fio-r1-q32/io_uring)" 1.0 ge
	goal "$style" "fio libaio O_DIRECT QD32 under aiopool" "≥ 0.9x kernel AIO" \
		"$(ratio fio-direct/libaio-aiopool fio-direct/libaio-kernel)" 0.9 ge
	goal "$style" "aiobench QD32, 1 file, aiopool POSIX" "≥ 0.75x psync × $t thread$([ "$t" = 1 ] || echo s)" \
		"$(ratio r1-q32/aiopool r1-q32/psync)" 0.75 ge
	goal "$style" "submit call p50, aio_read O_DIRECT 4 KiB" "≤ 2x glibc's" \
		"$(p50_ratio sub-direct/aiopool sub-direct/glibc)" 2 le
	goal "$style" "submit call p50, lio_listio(LIO_NOWAIT) 10 × $((BIG >> 20)) MiB" "≤ 2x glibc's" \
		"$(p50_ratio sub-biglist/aiopool sub-biglist/glibc)" 2 le
	goal "$style" "submit call p50, lio_listio(LIO_NOWAIT) 64 × 4 KiB" "≤ 2x glibc's" \
		"$(p50_ratio sub-list/aiopool sub-list/glibc)" 2 le
	goal "$style" "lio_listio(LIO_WAIT) batches of 64" "≥ 3x glibc" \
		"$(ratio lio/aiopool lio/glibc)" 3 ge
	goal "$style" "SIGEV_THREAD completions, batches of 32 each awaited whole" "≥ 10x glibc" \
		"$(ratio sigbatch/aiopool sigbatch/glibc)" 10 ge
	goal "$style" "2 submitting threads on 2 files, QD1, aiopool POSIX" "≥ 1.8x 1 thread on 1 file" \
		"$(ratio ts2/aiopool ts1/aiopool)" 1.8 ge
}

# The command that reproduces this run.
reproduce() {
	local f="--secs $SECS --warm $WARM --reps $REPS"
	if [ "$MODE" = full ]; then
		[ "$FIO" = 1 ] || f="$f --no-fio"
		[ "$CALLGRIND" = 1 ] || f="$f --no-callgrind"
		printf 'make bench BENCH_FLAGS="%s"' "$f"
	else
		printf 'make bench-quick BENCH_FLAGS="%s"' "$f"
	fi
}

echo
echo "== results: $MACHINE"
echo "   posix÷ = aiopool POSIX ops/s over this row's; libaio÷ = aiopool libaio over this row's"
main_table text
if [ "$MODE" = full ]; then
	echo
	echo "== priority: one aio_reqprio 0 request in flight while 128 aio_reqprio 20 requests flood the file"
	prio_table text
	echo
	echo "== oversubscription: AIOPOOL_THREADS, 8 files, QD128"
	sweep_table text thr- AIOPOOL_THREADS 1 2 4 8 20 64
	echo
	echo "== per-fd concurrency: AIOPOOL_FD_CONCURRENCY, 1 file, QD32"
	sweep_table text fdc- AIOPOOL_FD_CONCURRENCY 1 2 4 8 16 32
	echo
	echo "== the RWF_NOWAIT fast path: AIOPOOL_FASTPATH=0 and 1, 1 file"
	fp_table text
	echo
	echo "== time inside the submit call (clock_gettime around the call alone)"
	submit_table text
	echo
	echo "== 100,000 one-byte reads queued on an empty pipe"
	mem_table text
	if [ "$FIO" = 1 ]; then
		echo
		echo "== fio (--invalidate=0, page-cached files)"
		fio_table text
	fi
	if [ "$CALLGRIND" = 1 ]; then
		echo
		echo "== instructions per QD1 4K read (callgrind, user space only)"
		cg_table text
	fi
fi
[ -n "$RESULTS" ] && echo && echo "raw results (every run): $RESULTS"
echo
echo "== goals (ratios within this run; reproduce: $(reproduce))"
goals text

[ "$MODE" = full ] && [ -n "$DOCS" ] || exit 0

# ---- docs/performance.md and the plot ------------------------------------

PLOT=$DIR/plot.dat
{
	echo "# qd $ALL_ENGINES"
	for q in 1 8 32 128; do
		for f in 1 8; do
			printf '%s' "$q"
			for e in $ALL_ENGINES; do
				k=r$f-q$q/$e
				if num "$k"; then
					awk -v v="${OPS[$k]}" 'BEGIN { printf " %.1f", v / 1000 }'
				else
					printf ' ?'
				fi
			done
			echo
		done
	done
} > "$PLOT"
PNG_OK=0
if command -v gnuplot > /dev/null; then
	cols=""
	i=2
	for e in $ALL_ENGINES; do
		t=${LABEL[$e]}
		[ "$e" = psync ] && t="psync, min(QD, $NPROC) threads"
		cols="$cols${cols:+, }'$DIR/plot.1' using 1:$i with linespoints lw 2 title '$t'"
		i=$((i + 1))
	done
	awk 'NR == 1 || NR % 2 == 0' "$PLOT" > "$DIR/plot.1"
	awk 'NR > 1 && NR % 2 == 1' "$PLOT" > "$DIR/plot.8"
	if gnuplot <<EOF
set terminal pngcairo size 1200,560 font ",10"
set output '$DOCS/performance.png'
set datafile missing '?'
set logscale x 2
set xtics (1, 8, 32, 128)
set xrange [0.8:160]
set yrange [0:*]
set termoption noenhanced
set xlabel 'queue depth'
set ylabel 'thousand 4 KiB reads per second'
set key below
set grid
set multiplot layout 1,2 title "aiopool benchmark: random 4 KiB reads, page-cached ($NPROC cores, Linux $KERNEL)"
set title 'one 1 GiB file'
plot $cols
set title 'eight 128 MiB files'
plot ${cols//plot.1/plot.8}
unset multiplot
EOF
	then
		PNG_OK=1
	fi
fi

GEN=$DIR/generated.md
{
	echo "<!-- bench:begin: written by bench/run.sh (make bench, then make bench-docs); edits here are lost -->"
	echo
	echo "Measured $DATE on $MACHINE; data on $FSTYPE;"
	echo "load average $LOAD at the start, $LOAD_END at the end.  Each aiobench figure is the median of $REPS runs of"
	echo "${SECS} s (after ${WARM} s of warm-up), the engines of a workload interleaved."
	echo "psync uses min(queue depth, $NPROC) threads (32 for O_DIRECT).  Ratios are aiopool's"
	echo "ops/s over the row's, all from this one run.  To reproduce:"
	echo
	echo "    $(reproduce)"
	echo
	echo "### Goals"
	echo
	echo "Each goal is a ratio of two figures from this run: aiopool's over the"
	echo "reference engine's (for the submit call, aiopool's p50 over glibc's, where"
	echo "lower is better)."
	echo
	goals md
	echo
	echo "### Side by side"
	echo
	main_table md
	echo
	[ "$PNG_OK" = 1 ] && echo "![throughput against queue depth per engine](performance.png)" && echo
	echo "### Time inside the submit call"
	echo
	echo "clock_gettime around the submit call alone (the requests are prepared"
	echo "before it and reaped after); each round submits its requests, then waits"
	echo "for all of them."
	echo
	submit_table md
	echo
	echo "### Priority"
	echo
	echo "One aio_reqprio 0 request in flight (resubmitted as it completes) while 128"
	echo "aio_reqprio 20 requests flood the same file."
	echo
	prio_table md
	echo
	echo "### Worker threads (AIOPOOL_THREADS), 8 files, QD128"
	echo
	sweep_table md thr- threads 1 2 4 8 20 64
	echo
	echo "### Per-fd concurrency (AIOPOOL_FD_CONCURRENCY), 1 file, QD32"
	echo
	sweep_table md fdc- "per-fd concurrency" 1 2 4 8 16 32
	echo
	echo "### The RWF_NOWAIT fast path (AIOPOOL_FASTPATH=0 and 1), 1 file"
	echo
	fp_table md
	echo
	echo "### Memory: 100,000 requests in flight"
	echo
	echo "One-byte reads parked on an empty pipe (one runs, the rest queue behind it);"
	echo "resident memory before and after the last 99,000, then the pipe is fed and"
	echo "every request must read its byte."
	echo
	mem_table md
	if [ "$FIO" = 1 ]; then
		echo
		echo "### fio, the outside referee"
		echo
		echo "fio $FIOVER, --invalidate=0 so that the files stay"
		echo "cached, 3 s after 1 s of ramp, one run each; aiopool through LD_PRELOAD."
		echo "fio does its own work on every I/O (its accounting, its latency"
		echo "histograms), as a real program does; the O_DIRECT rows read the disk."
		echo
		fio_table md
	fi
	if [ "$CALLGRIND" = 1 ]; then
		echo
		echo "### Instructions per request (callgrind)"
		echo
		echo "(Ir of $CG_BIG QD1 4 KiB reads − Ir of $CG_SMALL) / $((CG_BIG - CG_SMALL)), every thread"
		echo "counted, user space only (the system call itself is not).  Valgrind runs one"
		echo "thread at a time, so a waiter that spins before sleeping spins until the"
		echo "scheduler switches: spinning shows up here as instructions it would not"
		echo "cost on real cores."
		echo
		cg_table md
	fi
	echo
	echo "<!-- bench:end -->"
} > "$GEN"

MD=$DOCS/performance.md
if has_block "$MD"; then
	splice "$GEN" "$MD" "$DIR/performance.md"
else
	{
		cat <<'EOF'
# Performance

How aiopool compares with glibc's POSIX AIO, kernel AIO, io_uring and plain
threads, measured side by side by `make bench` (bench/run.sh, bench/aiobench.c).
The part between the `bench:begin` and `bench:end` marks is rewritten by each
full run (`make bench-docs` copies it here); the rest is kept by hand.

## Reproduce

    make bench          # the full suite, into the build tree's bench-results/
    make bench-docs     # then: that run's results into this file and performance.png
    make bench-quick    # the headline rows, about a minute
    make bench BENCH_FLAGS="--secs 2 --reps 5"   # longer, steadier runs

`make bench` writes into the build directory only: `bench-results/`
gets `performance.md` (with the results block that goes here),
`performance.png` and the raw runs, `results.tsv`.
`make bench-docs`, a step of its own, copies the last run's block (between
the `bench:begin` and `bench:end` marks) into this file and its plot into
`docs/performance.png`.
Each full run ends with the goals table (also printed at the end of
`make bench`'s output) and states, at the top of its results, the exact
`make bench` command that reproduces it.
`make bench-quick` (and `make demo`, which first copies a file through
aiopool and compares it) prints the headline rows only and writes nothing
here (its raw runs: `bench-results/results-quick.tsv`).
`bench/run.sh --from build/bench-results/results.tsv --docs DIR` renders
an earlier run again into `DIR/performance.md`.  Timings never go into the
tests: they live here, quoted as ratios from one run.

## How the figures are taken

- **One binary, every engine.**  `bench/aiobench` is built against glibc's
  `<aio.h>`, the system's libaio and liburing, and is not linked with
  aiopool.  "aiopool POSIX" is its POSIX engine under
  `LD_PRELOAD=libaiopool.so`, "glibc POSIX" the same engine without;
  "aiopool libaio" and "kernel AIO" likewise for its libaio engine.  Each
  run checks (`dlvsym` + `dladdr`) that the preload took the entry points,
  or did not, so a missing front end prints n/a rather than measuring the
  wrong library.  Every completed request is checked (bytes transferred,
  no error): an engine that gets it wrong fails instead of scoring.
- **Queue depth held constant.**  QD requests are submitted; each one that
  completes is resubmitted at once, all of one wake-up in one call
  (`io_submit` of the batch, one `io_uring_submit_and_wait`).  The POSIX
  engine waits in `aio_suspend` on the list in flight and then scans it with
  `aio_error`/`aio_return`, as programs do.  psync runs min(QD, cores)
  threads doing `pread`/`pwrite` (32 for O_DIRECT, where threads mostly
  wait for the disk).
- **Latency** is submission to completion as the submitting thread sees it
  (CLOCK_MONOTONIC, read once per wake-up), in a histogram with 1.6 %
  buckets; for lio_listio it is the whole batch's.  ops/s counts what
  completes inside the measured window, after the warm-up.
- **Data**: one 1 GiB file and eight 128 MiB files, written and read once
  before the runs (`fincore` reports how much is cached); random 4 KiB
  aligned offsets.  O_DIRECT reads go to the disk and are skipped where the
  filesystem refuses O_DIRECT.  The O_APPEND file is truncated, after
  draining, every 256 MiB, so that the writes stay in the page cache.  The
  mixed load is 50/50 reads and writes on a 256 MiB file with an fsync after
  every 64th write (`aio_fsync(O_SYNC)`, `IOCB_CMD_FSYNC`, `IORING_OP_FSYNC`
  with `IOSQE_IO_DRAIN`, `fsync`); fsyncs count as operations.
- **Notifications**: SIGEV_THREAD runs a function that records the
  completion and resubmits from the notification thread; SIGEV_SIGNAL sends
  a real-time signal, blocked everywhere and taken by the main thread with
  `sigtimedwait`, which resubmits.
- **Priority**: one `aio_reqprio` 0 read in flight (resubmitted as it
  completes) while 128 `aio_reqprio` 20 reads keep the same file busy.
- **Memory**: 100,000 one-byte reads queued on an empty pipe (one runs, the
  rest wait behind it); the resident set size is read before and after the
  last 99,000, then the pipe is fed and every read must get its byte.
  The first 1,000 start the engine so that threads and caches are not
  counted as per-request cost.
- **Time inside the submit call**: rounds of requests, each round
  submitted and then waited for; `clock_gettime` is read just before and
  just after each submit call (`aio_read`, `lio_listio(LIO_NOWAIT)`,
  `io_submit`), the requests having been prepared before it, and the p50
  and p99 of those calls are kept.  Four cases: O_DIRECT 4 KiB reads
  submitted one per call (32 per round), 16 MiB cached reads one per call
  (4 per round), lists of ten 16 MiB cached reads, lists of 64 4 KiB
  cached reads.  A call that does the read itself shows it here: this is
  the time the program cannot spend on anything else.
- **CPU work per completion**: real programs do something with each
  result.  `aiobench -c USEC` spends that long on every completion in a
  busy loop (calibrated at start-up against CLOCK_MONOTONIC, not a sleep);
  the "2 µs of work per I/O" rows use `-c 2`, psync threads included.
- **SIGEV_THREAD batches**: 32 reads submitted with SIGEV_THREAD, then the
  program waits until all 32 functions have run (the last posts a
  semaphore), and starts the next batch; latency is the batch's.
- **Submitting threads**: `aiobench -t 2` with two files runs two threads,
  each with its own file and its own queue of QD requests (its own aiocb
  list, io_context or ring); against one thread on one file, for aiopool
  POSIX and for psync.
- **fio**, the outside referee: posixaio under aiopool (LD_PRELOAD) and on
  glibc, libaio under aiopool and on the kernel, io_uring and psync, 4 KiB
  random reads at QD1 and QD32 on the cached 1 GiB file and at QD32 over
  the eight files, plus O_DIRECT at QD32 (libaio, posixaio, io_uring), 3 s
  after 1 s of ramp.  fio does its own work on every I/O, as a real program
  does; aiobench's loops do none unless `-c` asks.
- **Goals** are ratios of two figures from the same run, aiopool's over a
  reference engine's (for the submit call, aiopool's p50 over glibc's,
  where lower is better); "met?" reads that one run.
- **Noise**: every workload runs its engines in turn, `--reps` rounds, and
  keeps each engine's median run; the load average at the start and the end
  is recorded with the figures.  On a shared machine absolute figures move
  from run to run more than the ratios inside one workload do.

## Results

EOF
		cat "$GEN"
		cat <<'EOF'

## Reasoning

### Default thread count

_To be written from the worker-thread sweep above._

### Default per-fd concurrency

_To be written from the per-fd concurrency sweep above._

### The RWF_NOWAIT fast path

_To be written: what it does to the QD1 round trip and to the notification rows._

### Goals not met

_To be written: which goal is missed, by how much, and why._
EOF
	} > "$MD"
fi
[ "$PNG_OK" = 1 ] && echo "wrote $MD and $DOCS/performance.png" || echo "wrote $MD (no plot: gnuplot missing or failed)"
