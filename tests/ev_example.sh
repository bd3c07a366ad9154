#!/bin/sh
# tests/ev_example.sh: the libev file server example (docs/examples) end to
# end: the server in each mode (aiopool_ev_read, POSIX aiocbs, blocking
# pread; O_DIRECT too where the file system allows it) serves a few
# thousand random ranges, some running past the end of the file, to the
# load generator, which checks every byte.  Every step has a deadline.
set -u

bin=${AIOPOOL_TEST_BUILDDIR:-.}/docs/examples
server=$bin/ev_fileserver
client=$bin/ev_fileclient
STEP=60   # seconds any one step may take

tmp=$(mktemp -d "${TMPDIR:-/tmp}/aiopool-ev-example.XXXXXX") || exit 99
spid=
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' HUP INT TERM

fail() {
	echo "ev_example: FAIL: $*"
	for f in "$tmp"/*.err; do
		[ -s "$f" ] && { echo "--- $f"; cat "$f"; }
	done
	exit 1
}

# A file whose size is not a multiple of anything the client asks for.
timeout $STEP "$client" -w "$tmp/data" 5000001 || fail "cannot write the data file"

# run MODE CLIENT-ARGS...: starts the server, runs the client, stops the
# server and checks its summary.
run() {
	mode=$1
	shift
	: > "$tmp/port"
	"$server" $mode "$tmp/data" > "$tmp/port" 2> "$tmp/server.err" &
	spid=$!
	port=
	i=0
	while [ -z "$port" ]; do
		port=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$tmp/port")
		[ -n "$port" ] && break
		kill -0 "$spid" 2>/dev/null || fail "server ($mode) exited before listening"
		i=$((i + 1))
		[ $i -gt $((STEP * 10)) ] && fail "server ($mode) did not listen within $STEP s"
		sleep 0.1
	done
	out=$(timeout $STEP "$client" -p "$port" -v "$@" 2> "$tmp/client.err") ||
		fail "client against server $mode ($*): $out"
	echo "ev_example: server $mode, client $*: $out"
	kill -TERM "$spid"
	i=0
	while kill -0 "$spid" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt $((STEP * 10)) ]; then
			kill -KILL "$spid"
			fail "server ($mode) did not exit within $STEP s of SIGTERM"
		fi
		sleep 0.1
	done
	wait "$spid"
	rc=$?
	spid=
	[ $rc -eq 0 ] || fail "server ($mode) exited with status $rc"
	grep -q 'requests (0 errors)' "$tmp/server.err" ||
		fail "server ($mode) summary: $(cat "$tmp/server.err")"
	cat "$tmp/server.err"
}

for mode in "-m aio" "-m posix" "-m pread"; do
	run "$mode" -c 8 -n 3000 -l 10000 -a 1
	run "$mode" -c 3 -n 300 -l 200000 -a 4096
done

# O_DIRECT: lengths and offsets in whole blocks.  Not every file system
# takes it (tmpfs does not): then only this part is skipped.
if dd if="$tmp/data" of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null; then
	run "-d -m aio" -c 8 -n 1000 -l 8192 -a 4096
	run "-d -m posix" -c 8 -n 1000 -l 8192 -a 4096
	run "-d -m pread" -c 8 -n 1000 -l 8192 -a 4096
else
	echo "ev_example: O_DIRECT is not available here; skipped that part"
fi
echo "ev_example: all passed"
exit 0
