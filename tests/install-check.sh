#!/usr/bin/env bash
# tests/install-check.sh BUILDDIR: installs aiopool from BUILDDIR into a
# temporary staging root (DESTDIR), then builds and runs a small program
# against the installed copy using only `pkg-config --cflags --libs
# aiopool` (with PKG_CONFIG_SYSROOT_DIR pointing at the staging root): one
# POSIX read and one libaio read of a file, checked; and checks that
# aiopool-run is installed, names the installed library, and runs a
# program with the staged one.  Uninstalls and checks that nothing is left
# behind.
set -euo pipefail

build=$(cd "${1:?usage: install-check.sh BUILDDIR}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root

make -C "$build" -s install DESTDIR="$root" >/dev/null 2>&1
pc=$(find "$root" -name aiopool.pc)
[ -n "$pc" ] || { echo "no aiopool.pc installed" >&2; exit 1; }
export PKG_CONFIG_PATH=${pc%/aiopool.pc} PKG_CONFIG_SYSROOT_DIR=$root
pkg-config --exists aiopool
libdir=$root$(pkg-config --variable=libdir aiopool | sed "s|^$root||")

cat >"$tmp/prog.c" <<'C'
#include <aio.h>
#include <aiopool.h>
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[8] = { 0 }, buf2[8] = { 0 };
	struct aiocb cb;
	struct aiopool_stats st;
	io_context_t ctx = 0;
	struct iocb io, *ios[1] = { &io };
	struct io_event ev;
	int fd = open(argv[argc - 1], O_RDONLY);

	if (fd < 0)
		return 2;
	memset(&cb, 0, sizeof cb);
	cb.aio_fildes = fd;
	cb.aio_buf = buf;
	cb.aio_nbytes = 5;
	if (aio_read(&cb) != 0)
		return 3;
	while (aio_error(&cb) == EINPROGRESS)
		usleep(1000);
	if (aio_return(&cb) != 5 || memcmp(buf, "hello", 5) != 0)
		return 4;
	if (io_setup(1, &ctx) != 0)
		return 5;
	io_prep_pread(&io, fd, buf2, 5, 0);
	if (io_submit(ctx, 1, ios) != 1 || io_getevents(ctx, 1, 1, &ev, NULL) != 1 ||
	    ev.res != 5 || memcmp(buf2, "hello", 5) != 0)
		return 6;
	io_destroy(ctx);
	if (aiopool_stats(&st, sizeof st) != 0 || st.submitted < 2)
		return 7;
	printf("installed aiopool %s served %llu requests\n", AIOPOOL_VERSION, st.submitted);
	return 0;
}
C
printf 'hello, world\n' >"$tmp/data"
# shellcheck disable=SC2046
cc -Wall -Werror -o "$tmp/prog" "$tmp/prog.c" $(pkg-config --cflags --libs aiopool)
LD_LIBRARY_PATH=$libdir "$tmp/prog" "$tmp/data"

# aiopool-run: installed in bindir with its page, naming the installed
# library (the path without the staging root); run with the staged one.
run=$(find "$root" -path '*/bin/aiopool-run')
[ -n "$run" ] && [ -x "$run" ] || { echo "no aiopool-run installed" >&2; exit 1; }
[ -n "$(find "$root" -path '*/man1/aiopool-run.1')" ] ||
	{ echo "no aiopool-run.1 installed" >&2; exit 1; }
lib=$(pkg-config --variable=libdir aiopool | sed "s|^$root||")/libaiopool.so.0
grep -q "^lib='$lib'\$" "$run" || { echo "aiopool-run does not name $lib" >&2; exit 1; }
"$run" --lib "$libdir/libaiopool.so.0" --stats -- sh -c 'exit 3' 2>"$tmp/stats" &&
	status=0 || status=$?
[ "$status" -eq 3 ] || { echo "aiopool-run: exit status $status, not 3" >&2; exit 1; }
grep -q '^aiopool: pid=' "$tmp/stats" || { echo "aiopool-run: no stats line" >&2; exit 1; }

make -C "$build" -s uninstall DESTDIR="$root" >/dev/null
left=$(find "$root" -type f | wc -l)
if [ "$left" -ne 0 ]; then
	echo "uninstall left $left files:" >&2
	find "$root" -type f >&2
	exit 1
fi
echo "install check: ok"
