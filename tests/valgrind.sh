#!/bin/sh
# tests/valgrind.sh: runs a chosen set of the Criterion suites, and the fuzz
# target over a set of generated inputs, under valgrind's memcheck.  Fails
# on any memory error and on any definite leak, in any process.
#
#   tests/valgrind.sh [BUILDDIR]
#
# BUILDDIR is a configured build directory (default: the current one); the
# suites are built there if needed and run through its libtool, so that
# valgrind runs the real programs against the build's libaiopool.
#
#   VALGRIND_SUITES="posix_basic ..."  the suites (default: the list below)
#   VALGRIND_EXCLUDE="suite/test ..."  tests left out (default: the list
#                                      below, with the reasons)
#   VALGRIND_FUZZ_INPUTS=N             fuzz inputs to replay (default 1500;
#                                      0: none)
#   VALGRIND_FUZZ_CORPUS=dir           replay this corpus as well (such as
#                                      the one tests/fuzz/run.sh leaves in
#                                      FUZZ_DIR/corpus)
#   VALGRIND_KEEP=1                    keep the logs (they are kept anyway
#                                      when something failed)
#
# Criterion runs each test in a process of its own and ignores how that
# process exits once the test has passed, so valgrind's exit code alone
# would miss an error in a test: every process valgrind follows
# (--trace-children=yes) writes its own log, and the logs are read at the
# end.  CRITERION_NO_EARLY_EXIT=1 lets each test process exit normally, so
# that the leak check sees what was really left.  --jobs 1: one test at a
# time, which also keeps the run's length predictable.
#
# Why these suites and for how long: docs/reliability.md.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=$(cd "${1:-.}" && pwd)

default_suites="posix_basic posix_errors posix_cancel posix_lio posix_notify
	libaio_basic libaio_errors libaio_cancel
	badinput_posix badinput_libaio"
suites=${VALGRIND_SUITES:-$default_suites}
# Left out, and why:
#   badinput_posix/submit_bad_buffer, badinput_libaio/iocb_bad_buffer,
#   libaio_basic/short_read_and_io_errors_come_in_the_event: they hand the
#     kernel a NULL buffer on purpose, which memcheck reports (rightly).
#   libaio_errors/full_completion_queue_is_eagain: expects one of two
#     events that complete together first; valgrind's scheduling reorders
#     them (a race in the test, not the library).
default_exclude="badinput_posix/submit_bad_buffer badinput_libaio/iocb_bad_buffer
	libaio_basic/short_read_and_io_errors_come_in_the_event
	libaio_errors/full_completion_queue_is_eagain"
exclude=${VALGRIND_EXCLUDE-$default_exclude}
fuzz_inputs=${VALGRIND_FUZZ_INPUTS:-1500}
fuzz_corpus=${VALGRIND_FUZZ_CORPUS:-}
if [ -n "$fuzz_corpus" ]; then
	fuzz_corpus=$(cd "$fuzz_corpus" && pwd)
fi

if [ ! -x "$build/libtool" ] || [ ! -f "$build/Makefile" ]; then
	echo "valgrind.sh: $build is not a configured build directory" >&2
	exit 2
fi
command -v valgrind >/dev/null || { echo "valgrind.sh: no valgrind" >&2; exit 2; }

logs=$(mktemp -d "${TMPDIR:-/tmp}/aiopool-valgrind.XXXXXX")
keep=${VALGRIND_KEEP:-0}
cleanup() {
	if [ "$keep" = 1 ]; then
		echo "valgrind: logs kept in $logs"
	else
		rm -rf "$logs"
	fi
}
trap cleanup EXIT

targets=
for s in $suites; do
	targets="$targets tests/$s"
done
# shellcheck disable=SC2086
make -C "$build" -s libaiopool.la $targets >"$logs/build.out" 2>&1 || {
	cat "$logs/build.out" >&2
	echo "valgrind.sh: build failed" >&2
	exit 2
}

# The checks.  The programs a test runs (a shell, env) are not followed.
vg="valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite
    --errors-for-leak-kinds=definite --error-exitcode=1 --num-callers=30
    --trace-children=yes --trace-children-skip=/bin/*,/usr/bin/*,/sbin/*,/usr/sbin/*"

# What make check's AM_TESTS_ENVIRONMENT gives the suites.
AIOPOOL_TEST_LIBDIR=$build/.libs
AIOPOOL_TEST_BUILDDIR=$build
AIOPOOL_TEST_SRCDIR=$top
CRITERION_NO_EARLY_EXIT=1
export AIOPOOL_TEST_LIBDIR AIOPOOL_TEST_BUILDDIR AIOPOOL_TEST_SRCDIR CRITERION_NO_EARLY_EXIT

status=0
for s in $suites; do
	start=$(date +%s)
	mkdir -p "$logs/$s"
	# Criterion's extended glob: every test but the excluded ones.
	skip=
	for x in $exclude; do
		case $x in "$s"/*) skip="$skip${skip:+|}${x#*/}" ;; esac
	done
	filter="$s/*"
	[ -z "$skip" ] || filter="$s/!(@($skip))"
	# shellcheck disable=SC2086
	if "$build/libtool" --mode=execute $vg --log-file="$logs/$s/%p.log" \
		"$build/tests/$s" --jobs 1 --filter "$filter" >"$logs/$s.out" 2>&1; then
		result=ok
	else
		result="FAILED (exit $?)"
		status=1
	fi
	echo "valgrind: $s: $result, $(($(date +%s) - start)) s," \
	     "$(grep -h 'Synthesis' "$logs/$s.out" | sed 's/.*Synthesis: //')"
	[ "$result" = ok ] || tail -n 30 "$logs/$s.out"
done

# The fuzz target, built without sanitizers (valgrind cannot run them) and
# replayed over inputs from a fixed seed: every call sequence it makes runs
# under memcheck, which also sees what the kernel is given (a buffer or an
# iovec array that was freed), where the sanitizers cannot look.
if [ "$fuzz_inputs" -gt 0 ] || [ -n "$fuzz_corpus" ]; then
	start=$(date +%s)
	mkdir -p "$logs/fuzz/inputs" "$logs/fuzz/tmp"
	srcs=$(cd "$top" && cat Makefile.am ./*/*.am 2>/dev/null |
		awk '/^libaiopool_la_SOURCES[ \t]*\+?=/ { f = 1 }
		     f { for (i = 1; i <= NF; i++) if ($i ~ /\.c$/) print $i
		         if ($0 !~ /\\$/) f = 0 }' | sort -u)
	printf '#define _GNU_SOURCE 1\n#define HAVE_PREADV2 1\n#define HAVE_PWRITEV2 1\n' \
		>"$logs/fuzz/config.h"
	# shellcheck disable=SC2086
	(cd "$top" && ${CC:-cc} -g -O1 -pthread -DFUZZ_STANDALONE -DFUZZ_VALGRIND \
		-I"$logs/fuzz" -Iinclude -Iinclude/aiopool $srcs tests/fuzz/fuzz_api.c \
		-o "$logs/fuzz/fuzz_api") >"$logs/fuzz/build.out" 2>&1 || {
		cat "$logs/fuzz/build.out" >&2
		echo "valgrind.sh: building the fuzz target failed" >&2
		exit 2
	}
	# N inputs of 8 to 200 bytes, the same every run.
	LC_ALL=C awk -v n="$fuzz_inputs" -v dir="$logs/fuzz/inputs" 'BEGIN {
		srand(20240501)
		for (i = 0; i < n; i++) {
			len = 8 + int(rand() * 193)
			f = sprintf("%s/%04d", dir, i)
			s = ""
			for (j = 0; j < len; j++)
				s = s sprintf("%c", 1 + int(rand() * 255))
			printf "%s", s > f
			close(f)
		}
	}' </dev/null
	# shellcheck disable=SC2086
	if (cd "$logs/fuzz" && TMPDIR="$logs/fuzz/tmp" $vg --log-file="$logs/fuzz/%p.log" \
		./fuzz_api inputs $fuzz_corpus) >"$logs/fuzz.out" 2>&1; then
		result=ok
	else
		result="FAILED (exit $?)"
		status=1
	fi
	echo "valgrind: fuzz replay: $result, $(($(date +%s) - start)) s, $(tail -n 1 "$logs/fuzz.out")"
	[ "$result" = ok ] || tail -n 30 "$logs/fuzz.out"
fi

# Every process's own verdict.
bad=$(grep -l 'ERROR SUMMARY: [1-9]' "$logs"/*/*.log 2>/dev/null || true)
procs=$(find "$logs" -mindepth 2 -name '*.log' | wc -l)
if [ -n "$bad" ]; then
	status=1
	for f in $bad; do
		echo "==== $f"
		grep -v '^==[0-9]*== *$' "$f" | head -n 80
	done
fi
echo "valgrind: $procs processes checked, $(echo "$bad" | grep -c . || true) with errors"
if [ $status -ne 0 ]; then
	keep=1
	echo "valgrind: FAILED" >&2
	exit 1
fi
echo "valgrind: no memory errors, no definite leaks"
