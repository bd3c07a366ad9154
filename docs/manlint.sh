#!/bin/sh
# docs/manlint.sh: the man page check run by `make check` (docs/docs.am).
#
# Every page in docs/man must lint clean with `mandoc -Tlint -Wwarning`
# (no message at all), carry "aiopool VERSION" in its .TH line, and be
# listed in docs/docs.am; every page docs/docs.am lists must exist.  A
# .so link must be a single line naming a page of its section that exists
# here (mandoc cannot follow such links outside an installed tree, so the
# link is checked and its target linted instead).
#
# Exits 0 when all is well, 1 on any problem, 77 (skip) without mandoc.
set -u

here=$(cd "$(dirname "$0")" && pwd)
mandir=$here/man
# The pages' lists: docs/docs.am, and src/ev.am for the libev adapter's.
ams="$here/docs.am $here/../src/ev.am"

if ! command -v mandoc >/dev/null 2>&1; then
	echo "manlint: mandoc not found; skipping"
	exit 77
fi

version=$(sed -n 's/^AC_INIT(\[aiopool\], *\[\([^]]*\)\].*/\1/p' \
	"$here/../configure.ac" 2>/dev/null)
# shellcheck disable=SC2086
listed=$(cat $ams 2>/dev/null | grep -v '^[[:space:]]*#' | grep -o 'docs/man/[A-Za-z0-9_.-]*')
status=0
npages=0

bad() {
	echo "manlint: $*"
	status=1
}

for page in "$mandir"/*.[0-9]; do
	[ -e "$page" ] || continue
	name=${page##*/}
	sect=${name##*.}
	npages=$((npages + 1))

	case " $(echo $listed) " in
	*" docs/man/$name "*) ;;
	*) bad "$name: not listed in docs/docs.am (or src/ev.am)" ;;
	esac

	if grep -q '^\.so ' "$page"; then
		target=$(sed -n 's/^\.so //p' "$page")
		if [ "$(wc -l <"$page")" -ne 1 ]; then
			bad "$name: a .so link must be a single line"
		fi
		case $target in
		"man$sect/"*) ;;
		*) bad "$name: .so target '$target' is not in man$sect/" ;;
		esac
		[ -f "$mandir/${target##*/}" ] ||
			bad "$name: .so target '$target' does not exist"
		continue
	fi

	if [ -n "$version" ] &&
	   ! grep -q "^\.TH .*\"aiopool $version\"" "$page"; then
		bad "$name: .TH does not say \"aiopool $version\""
	fi
	out=$(mandoc -Tlint -Wwarning "$page" 2>&1)
	rc=$?
	if [ $rc -ne 0 ] || [ -n "$out" ]; then
		echo "$out"
		bad "$name: mandoc -Tlint -Wwarning exit status $rc"
	fi
done

for f in $listed; do
	[ -f "$here/../$f" ] || bad "$f: listed but missing"
done

[ $npages -gt 0 ] || bad "no pages found in $mandir"
[ $status -eq 0 ] && echo "manlint: $npages pages clean"
exit $status
