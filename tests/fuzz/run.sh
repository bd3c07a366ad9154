#!/bin/sh
# tests/fuzz/run.sh: builds the fuzz target tests/fuzz/fuzz_api.c with clang
# (libFuzzer, AddressSanitizer, UndefinedBehaviorSanitizer) straight from the
# library's sources, and runs it.
#
#   tests/fuzz/run.sh [SECONDS] [LIBFUZZER-ARGS...]
#
# SECONDS (default 60) bounds the run.  Everything lives in a temporary
# directory that is removed afterwards, unless FUZZ_KEEP=1, or unless the
# run found a crash: then the directory is kept and its path printed, with
# the input that crashed (crash-*) to give back to the target as
#   FUZZ_DIR/fuzz_api FUZZ_DIR/crash-...
# FUZZ_DIR=dir uses (and keeps) dir instead.  FUZZ_CORPUS=dir starts from,
# and adds to, a corpus of your own.  CC=... picks the compiler (clang).
#
# Exit status: 0 when the run ended without a crash, 1 when the target
# crashed or broke an invariant (its message is in the log), 2 when it
# could not be built.
set -eu

secs=${1:-60}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cc=${CC:-clang}

if [ -n "${FUZZ_DIR:-}" ]; then
	dir=$FUZZ_DIR
	mkdir -p "$dir"
	keep=1
else
	dir=$(mktemp -d "${TMPDIR:-/tmp}/aiopool-fuzz.XXXXXX")
	keep=${FUZZ_KEEP:-0}
fi
cleanup() {
	if [ "$keep" = 1 ]; then
		echo "fuzz: kept $dir"
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT

# The library's sources, as Makefile.am and its fragments list them in
# libaiopool_la_SOURCES (other libraries, such as the libev adapter, are not
# part of it).
srcs=$(cd "$top" && cat Makefile.am ./*/*.am 2>/dev/null |
	awk '/^libaiopool_la_SOURCES[ \t]*\+?=/ { f = 1 }
	     f { for (i = 1; i <= NF; i++) if ($i ~ /\.c$/) print $i
	         if ($0 !~ /\\$/) f = 0 }' | sort -u)
[ -n "$srcs" ] || { echo "fuzz: no library sources found" >&2; exit 2; }

# configure's config.h is not needed: the sources want _GNU_SOURCE from it.
cat >"$dir/config.h" <<'EOF'
/* config.h for the fuzz build (tests/fuzz/run.sh) */
#define _GNU_SOURCE 1
#define HAVE_PREADV2 1
#define HAVE_PWRITEV2 1
EOF

flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -fno-omit-frame-pointer -pthread -I$dir -I$top/include -I$top/include/aiopool"
echo "fuzz: building $dir/fuzz_api with $cc"
# shellcheck disable=SC2086
if ! (cd "$top" && $cc $flags $srcs tests/fuzz/fuzz_api.c -o "$dir/fuzz_api") \
	>"$dir/build.log" 2>&1; then
	cat "$dir/build.log" >&2
	echo "fuzz: build failed" >&2
	exit 2
fi

# A few seeds: each byte picks a call, the next ones its arguments.
corpus=${FUZZ_CORPUS:-$dir/corpus}
mkdir -p "$corpus" "$dir/tmp"
i=0
for seed in '\000\001\002\003\004\005\006\007' \
	'\150\000\001\162\000\001\000\003\004\005\006' \
	'\030\000\001\002\003\004\050\001\002\003\004\005\006\007\010' \
	'\150\001\002\162\001\001\002\003\004\270\001\002\003\004\310\001' \
	'\352\353\120\001\002\003\004\005\006\007\070\001\002\003' ; do
	# shellcheck disable=SC2059
	printf "$seed" >"$corpus/seed-$i"   # the octal escapes are the point
	i=$((i + 1))
done

echo "fuzz: running for $secs s (log: $dir/fuzz.log)"
set +e
# The target's temporary files go to $dir/tmp.  libFuzzer's -timeout is per
# input: the target's own deadlines are 30 s.
(cd "$dir" && TMPDIR="$dir/tmp" \
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
	./fuzz_api -max_total_time="$secs" -timeout=60 -max_len=1024 \
	-rss_limit_mb=4096 -print_final_stats=1 "$@" "$corpus") >"$dir/fuzz.log" 2>&1
rc=$?
set -e
grep -E '^(#[0-9]+ +DONE|stat::)' "$dir/fuzz.log" || tail -n 5 "$dir/fuzz.log"
if [ $rc -ne 0 ]; then
	keep=1
	tail -n 60 "$dir/fuzz.log" >&2
	echo "fuzz: FAILED (exit $rc); the crashing input is $dir/crash-* or $dir/timeout-*" >&2
	exit 1
fi
echo "fuzz: no crash"
