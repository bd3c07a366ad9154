#!/bin/sh
# docs/examples/ev_bench.sh: `make ev-bench`: the example libev file server
# (ev_fileserver.c) reading with aiopool's libev adapter against the same
# server doing a blocking pread in the loop, under the load generator
# (ev_fileclient.c): random ranges of one file, page-cached and with
# O_DIRECT.  The servers: pread (-m pread), aiopool_ev_read (-m aio), the
# same with AIOPOOL_FASTPATH=1 (cached reads done in the loop with
# RWF_NOWAIT), and POSIX aiocbs through aiopool_ev_submit_aiocb (-m posix).
# Prints a Markdown table (for docs/performance.md) and the raw runs.
#
#	ev_bench.sh --bin DIR [--dir DIR] [--size MIB] [--secs S] [--reps N] [--quick]
#
# --bin    where ev_fileserver and ev_fileclient are (the build's docs/examples)
# --dir    where to put the data file (default: $TMPDIR or /tmp; it must be
#          on a disk, not tmpfs, for the O_DIRECT rows)
# --size   the data file in MiB (2048)
# --secs   seconds per run (3); --reps runs per configuration (3), the
#          median is kept; --quick: 1 s, 1 rep, fewer rows
set -eu

BIN= DIR=${TMPDIR:-/tmp} SIZE=2048 SECS=3 REPS=3 QUICK=0
while [ $# -gt 0 ]; do
	case $1 in
	--bin) BIN=$2; shift 2 ;;
	--dir) DIR=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--secs) SECS=$2; shift 2 ;;
	--reps) REPS=$2; shift 2 ;;
	--quick) QUICK=1; SECS=1; REPS=1; shift ;;
	*) echo "usage: ev_bench.sh --bin DIR [--dir DIR] [--size MIB] [--secs S] [--reps N] [--quick]" >&2
	   exit 2 ;;
	esac
done
[ -x "$BIN/ev_fileserver" ] && [ -x "$BIN/ev_fileclient" ] || {
	echo "ev_bench: no ev_fileserver / ev_fileclient in '$BIN' (--bin)" >&2
	exit 2
}

work=$(mktemp -d "$DIR/aiopool-ev-bench.XXXXXX")
spid=
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null || :
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
data=$work/data
raw=$work/raw.tsv

echo "ev_bench: writing a $SIZE MiB file in $DIR ..." >&2
"$BIN/ev_fileclient" -w "$data" $((SIZE * 1048576))
direct=1
dd if="$data" of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null || direct=0
# Page-cached rows need the whole file in memory: read it once.
cat "$data" > /dev/null

# one FLAGS CONNS LEN MODE: one run; appends a line to $raw.
one() {
	flags=$1 conns=$2 len=$3 mode=$4
	fp=0 m=$mode
	[ "$mode" = aio-fp ] && fp=1 m=aio
	: > "$work/port"
	AIOPOOL_FASTPATH=$fp "$BIN/ev_fileserver" $flags -m "$m" "$data" > "$work/port" 2> "$work/server.err" &
	spid=$!
	port= i=0
	while [ -z "$port" ]; do
		port=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$work/port")
		[ -n "$port" ] && break
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "ev_bench: the server did not start" >&2; exit 1; }
		sleep 0.1
	done
	out=$("$BIN/ev_fileclient" -p "$port" -c "$conns" -t "$SECS" -l "$len" -a 4096)
	kill -TERM "$spid"
	wait "$spid" || :
	spid=
	stall=$(sed -n 's/.*loop stall p99 \([0-9.]*\) ms.*/\1/p' "$work/server.err")
	kv() { echo "$out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${flags:-cached}" "$conns" "$len" \
		"$mode" "$(kv req_per_s)" "$(kv MiB_per_s)" "$(kv lat_p99_us)" "${stall:-?}" >> "$raw"
}

# The configurations: cache, connections, request length.
configs="cached:16:4096 cached:16:65536 cached:1:4096"
[ $direct = 1 ] && configs="$configs -d:16:4096 -d:64:4096 -d:16:65536 -d:1:4096"
if [ $QUICK = 1 ]; then
	configs="cached:16:4096"
	[ $direct = 1 ] && configs="$configs -d:16:4096"
fi

: > "$raw"
for c in $configs; do
	flags=${c%%:*}; rest=${c#*:}; conns=${rest%%:*}; len=${rest#*:}
	[ "$flags" = cached ] && flags=
	r=0
	while [ $r -lt "$REPS" ]; do
		for mode in pread aio aio-fp posix; do   # interleaved
			echo "ev_bench: ${flags:-cached} conns $conns len $len $mode (rep $((r + 1)))" >&2
			one "$flags" "$conns" "$len" "$mode"
		done
		r=$((r + 1))
	done
done

# The medians, and the table.
awk -F '\t' -v secs="$SECS" -v reps="$REPS" '
function median(key, col,    n, i, j, t, v) {
	n = cnt[key]
	for (i = 1; i <= n; i++) v[i] = val[key, i, col]
	for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > t + 0; j--) v[j + 1] = v[j]; v[j + 1] = t }
	return v[int((n + 1) / 2)]
}
BEGIN {
	name["pread"] = "blocking pread in the loop"
	name["aio"] = "aiopool_ev_read"
	name["aio-fp"] = "aiopool_ev_read, AIOPOOL_FASTPATH=1"
	name["posix"] = "aiopool_ev_submit_aiocb"
}
{
	cfg = $1 SUBSEP $2 SUBSEP $3
	key = cfg SUBSEP $4
	if (!(cfg in seen)) { seen[cfg] = 1; order[++ncfg] = cfg }
	if (!((cfg, $4) in seenm)) { seenm[cfg, $4] = 1; modes[cfg] = modes[cfg] " " $4 }
	n = ++cnt[key]
	val[key, n, 5] = $5; val[key, n, 6] = $6; val[key, n, 7] = $7; val[key, n, 8] = $8
}
END {
	print "| file | conns | request | server | req/s | vs pread | MiB/s | p99 latency | p99 loop stall |"
	print "|---|---:|---:|---|---:|---:|---:|---:|---:|"
	for (i = 1; i <= ncfg; i++) {
		split(order[i], f, SUBSEP)
		p = median(order[i] SUBSEP "pread", 5)
		nm = split(modes[order[i]], ms, " ")
		for (k = 1; k <= nm; k++) {
			key = order[i] SUBSEP ms[k]
			r = median(key, 5)
			printf "| %s | %d | %d KiB | %s | %.0f | %.2fx | %.0f | %.0f µs | %.3f ms |\n",
				(f[1] == "cached" ? "page-cached" : "O_DIRECT"), f[2], f[3] / 1024,
				name[ms[k]], r, (p > 0 ? r / p : 0), median(key, 6),
				median(key, 7), median(key, 8)
		}
	}
	printf "\nMedians of %d runs of %s s each.\n", reps, secs
}' "$raw"
echo
echo "raw runs (file, conns, length, mode, req/s, MiB/s, p99 latency us, p99 stall ms):"
cat "$raw"
