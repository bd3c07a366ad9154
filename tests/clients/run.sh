#!/usr/bin/env bash
# tests/clients/run.sh: make check-clients.  Real, unchanged programs from
# Debian run on aiopool through LD_PRELOAD of the built libaiopool.so, and
# each step checks that aiopool, not the kernel or glibc, served their
# asynchronous I/O:
#   noaio-filter      the seccomp wrapper (tests/clients/noaio) makes the
#                     kernel's AIO and io_uring calls fail: fio's libaio and
#                     io_uring engines fail under it without aiopool
#   mariadb           mariadbd with innodb_use_native_aio=ON and
#                     innodb_linux_aio=aio, under strace: 100,000 rows,
#                     restart and check, SIGKILL during writes, crash
#                     recovery and check; no kernel AIO system call made
#   mariadb-noaio     the same inside the seccomp filter
#   fio-*             fio's posixaio and libaio engines (libaio also with
#                     userspace_reap), buffered and O_DIRECT, crc32c verify
#   sysbench-fileio   sysbench fileio --file-io-mode=async, rndrw
#   stress-ng-aio     stress-ng --aio (POSIX AIO) with --verify
#   stress-ng-aiol    stress-ng --aiol (raw io_* system calls) with
#                     --verify and AIOPOOL_SYSCALL_SETUP=1
# Every step but noaio-filter and mariadb runs inside the seccomp filter,
# so kernel AIO cannot have served it; and every program runs with
# AIOPOOL_STATS, whose line at each process's exit shows the requests
# aiopool accepted (a step passes only if they are more than none).
#
#   AIOPOOL_CLIENTS_BUILDDIR=BUILD run.sh [STEP...]
# BUILD is the build directory (make check-clients sets it); STEP names or
# shell patterns choose steps (default: all).  Logs are kept in
# AIOPOOL_CLIENTS_WORKDIR (default BUILD/tests/clients/work).
# A program that is not installed is a FAIL (.ci/deps installs them all);
# with AIOPOOL_CLIENTS_SKIP_MISSING=1 it is a SKIP instead, except when CI
# is set.  A filesystem refusing O_DIRECT makes the direct steps SKIP.
# Prints PASS/FAIL/SKIP and the reason for each step, then
# "clients: N passed, N failed, N skipped"; exits 1 if any step failed.
set -u

build=${AIOPOOL_CLIENTS_BUILDDIR:?set AIOPOOL_CLIENTS_BUILDDIR to the build directory}
lib=$build/.libs/libaiopool.so
noaio=$build/tests/clients/noaio
work=${AIOPOOL_CLIENTS_WORKDIR:-$build/tests/clients/work}
skip_missing=${AIOPOOL_CLIENTS_SKIP_MISSING:-0}
[ -n "${CI:-}" ] && [ "$CI" != false ] && skip_missing=0
aiocalls=io_setup,io_destroy,io_submit,io_cancel,io_getevents,io_pgetevents
aiocalls=$aiocalls,io_uring_setup,io_uring_enter,io_uring_register
user=$(id -un)

npass=0 nfail=0 nskip=0
why=   # each step function sets the reason it passed, failed or skipped

# ---- helpers ------------------------------------------------------------------

# need TOOL...: 0 if all are installed; else sets why, returns 1 (a FAIL)
# or 77 (a SKIP under AIOPOOL_CLIENTS_SKIP_MISSING=1).
need() {
	local t
	for t; do
		command -v "$t" >/dev/null 2>&1 && continue
		why="$t is not installed (.ci/deps installs it)"
		[ "$skip_missing" = 1 ] && return 77
		return 1
	done
	return 0
}

# preload STATS: sets pre_env to the environment assignments that load
# aiopool and have each process append its stats line to STATS at exit.
preload() {
	pre_env=("LD_PRELOAD=$lib" "AIOPOOL_STATS=$1")
}

# served STATS [PROCS]: 0 if at least PROCS (default 1) processes reported
# requests submitted to aiopool in STATS; sets why either way.
served() {
	local stats=$1 want=${2:-1} procs total
	if [ ! -s "$stats" ]; then
		why="no process reported aiopool's stats (AIOPOOL_STATS=$stats: empty)"
		return 1
	fi
	procs=$(awk '{ if (match($0, / submitted=[0-9]+/) &&
	                   substr($0, RSTART + 11, RLENGTH - 11) + 0 > 0) n++ }
	             END { print n + 0 }' "$stats")
	total=$(awk '{ if (match($0, / submitted=[0-9]+/))
	                   s += substr($0, RSTART + 11, RLENGTH - 11) }
	             END { print s + 0 }' "$stats")
	if [ "$procs" -lt "$want" ]; then
		why="aiopool served no requests in $((want - procs)) of the $want processes expected (stats: $(tr '\n' ' ' <"$stats"))"
		return 1
	fi
	why="aiopool served $total requests in $procs processes"
	return 0
}

# no_kernel_aio STRACE_OUTPUT: 0 if strace saw no kernel AIO or io_uring
# system call; else sets why.
no_kernel_aio() {
	if grep -Eq '^[0-9]+ +io_' "$1"; then
		why="kernel AIO system calls were made: $(grep -E '^[0-9]+ +io_' "$1" | sed 's/^[0-9]* *//' | cut -c1-70 | sort | uniq -c | sort -rn | head -3 | tr -s ' \n' ' ')"
		return 1
	fi
	return 0
}

direct_ok() {   # direct_ok DIR: can files in DIR be opened with O_DIRECT?
	dd if=/dev/zero of="$1/direct.probe" bs=4096 count=1 oflag=direct \
		>/dev/null 2>&1
	local rc=$?
	rm -f "$1/direct.probe"
	return $rc
}

# step NAME FUNCTION [ARG]...: runs FUNCTION in the step's fresh directory
# $dir, prints its result and how long it took.
step() {
	local name=$1 rc t0=$SECONDS
	shift
	selected "$name" || return 0
	dir=$work/$name
	if ! { rm -rf "$dir" && mkdir -p "$dir"; }; then
		echo "FAIL: $name: cannot make $dir"
		nfail=$((nfail + 1))
		return
	fi
	why=
	"$@"
	rc=$?
	case $rc in
	0)  echo "PASS: $name ($((SECONDS - t0)) s): $why"; npass=$((npass + 1))
	    rm -rf "$dir/data" "$dir"/*.dat ;;   # the logs stay
	77) echo "SKIP: $name: $why"; nskip=$((nskip + 1)) ;;
	*)  echo "FAIL: $name ($((SECONDS - t0)) s): $why (logs in $dir)"; nfail=$((nfail + 1)) ;;
	esac
}

selected() {
	local p
	[ ${#patterns[@]} -eq 0 ] && [ -z "${explicit:-}" ] && return 0
	for p in "${patterns[@]}"; do
		# shellcheck disable=SC2053
		[[ $1 == $p ]] && return 0
	done
	return 1
}

# ---- noaio-filter: the seccomp wrapper does refuse kernel AIO ------------------

run_noaio_filter() {
	local e
	need fio || return
	for e in libaio io_uring; do
		"$noaio" fio --name=ctl-$e --ioengine=$e --filename="$dir/ctl.dat" \
			--size=1m --rw=write >"$dir/$e.log" 2>&1
		if ! grep -q 'Function not implemented' "$dir/$e.log"; then
			why="fio's $e engine did not fail with ENOSYS under noaio without aiopool: the filter does not work"
			return 1
		fi
	done
	why="without aiopool, fio's libaio and io_uring engines fail with ENOSYS under noaio"
}

# ---- MariaDB -----------------------------------------------------------------

# The server's options: a scratch datadir, socket and pid file in $dir, no
# TCP, a buffer pool small enough that pages are written and read back
# while the test runs, and native AIO through libaio.
mdb_opts() {
	printf '%s\n' --no-defaults --datadir="$dir/data" --socket="$dir/sock" \
		--pid-file="$dir/pid" --skip-networking --user="$user" \
		--log-error="$dir/err.log" --innodb-buffer-pool-size=8M \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
		--innodb-buffer-pool-load-at-startup=OFF \
		--innodb-buffer-pool-dump-at-shutdown=OFF \
		--innodb-use-native-aio=ON --innodb-linux-aio=aio
}

sql() {   # sql STATEMENTS: runs them, prints the results tab-separated
	sql_stdin -e "$1"
}

sql_stdin() {   # sql_stdin [OPTION]...: runs the statements on stdin
	timeout 300 mariadb --no-defaults --socket="$dir/sock" -uroot \
		--default-character-set=utf8mb4 -N -B "$@"
}

# mdb_start: starts mariadbd ($mdb_mode: "strace" on aiopool under strace,
# "noaio" on aiopool inside the seccomp filter, "kernel" without aiopool)
# and waits until it answers; sets mdb_pid (the process started) and
# mdb_run (a counter naming this run's logs).
mdb_start() {
	local opts i
	mapfile -t opts < <(mdb_opts)
	mdb_run=$((mdb_run + 1))
	: >"$dir/err.log"
	rm -f "$dir/pid"
	preload "$dir/stats.$mdb_run"
	if [ "$mdb_mode" = strace ]; then
		timeout 600 strace -f --seccomp-bpf -qq -o "$dir/strace.$mdb_run" \
			-e trace="$aiocalls" -E "${pre_env[0]}" -E "${pre_env[1]}" \
			mariadbd "${opts[@]}" >"$dir/out.$mdb_run" 2>&1 &
	elif [ "$mdb_mode" = noaio ]; then
		timeout 600 "$noaio" env "${pre_env[@]}" \
			mariadbd "${opts[@]}" >"$dir/out.$mdb_run" 2>&1 &
	else
		timeout 600 mariadbd "${opts[@]}" >"$dir/out.$mdb_run" 2>&1 &
	fi
	mdb_pid=$!
	for ((i = 0; i < 1200; i++)); do
		mariadb-admin --no-defaults --socket="$dir/sock" -uroot ping \
			>/dev/null 2>&1 && break
		if ! kill -0 "$mdb_pid" 2>/dev/null; then
			wait "$mdb_pid" 2>/dev/null
			mdb_died "mariadbd exited at start-up (status $?)"
			return 1
		fi
		sleep 0.1
	done
	if ((i == 1200)); then
		why="mariadbd did not answer within 120 s"
		return 1
	fi
	cp "$dir/err.log" "$dir/err.$mdb_run"
	if grep -q 'falling back' "$dir/err.log" ||
	   ! grep -q 'Using Linux native AIO' "$dir/err.log"; then
		why="InnoDB is not using native AIO: $(grep -E 'AIO|io_setup' "$dir/err.log" | head -2 | tr '\n' ' ')"
		return 1
	fi
}

# mdb_died MESSAGE: sets why to MESSAGE and what the error log says.
mdb_died() {
	cp "$dir/err.log" "$dir/err.$mdb_run"
	why="$1: $(grep -E 'ERROR|returned|failed|signal' "$dir/err.log" | head -3 | tr '\n' ' ')"
	if grep -q 'io_getevents returned' "$dir/err.log"; then
		why="$why -- mariadbd calls syscall(SYS_io_getevents) itself on the context libaio's io_setup gave it: aiopool must serve the raw AIO system calls on its own contexts (the syscall(3) interposer)"
	fi
}

# mdb_stop: a clean shutdown; checks the exit status, the stats and the
# system calls of this run.
mdb_stop() {
	local rc
	mariadb-admin --no-defaults --socket="$dir/sock" -uroot shutdown \
		>/dev/null 2>&1
	wait "$mdb_pid" 2>/dev/null
	rc=$?
	cp "$dir/err.log" "$dir/err.$mdb_run"
	if [ $rc -ne 0 ]; then
		mdb_died "mariadbd exited with status $rc at shutdown"
		return 1
	fi
	mdb_checked
}

mdb_checked() {   # this run made no kernel AIO call and used aiopool
	[ "$mdb_mode" = kernel ] && return 0
	if [ "$mdb_mode" = strace ]; then
		no_kernel_aio "$dir/strace.$mdb_run" || return 1
	fi
	served "$dir/stats.$mdb_run" || { why="run $mdb_run: $why"; return 1; }
}

# expect WHAT WANT GOT: sets why and fails unless GOT is WANT.
expect() {
	[ "$2" = "$3" ] && return 0
	why="$1: expected $2, got $3"
	return 1
}

mdb_check_t() {   # the 100,000-row table is whole and as written
	local res
	res=$(sql 'CHECK TABLE clients.t' | awk '{ print $NF }' | tail -1)
	expect "CHECK TABLE t" OK "$res" || return 1
	expect "rows in t" 100000 "$(sql 'SELECT COUNT(*) FROM clients.t')" || return 1
	expect "rows in t's secondary index" 100000 \
		"$(sql 'SELECT COUNT(v) FROM clients.t FORCE INDEX (v)')" || return 1
	expect "rows of t not as written" 0 "$(sql "SELECT COUNT(*) FROM clients.t
		WHERE v <> md5(id) OR pad <> repeat(md5(id), 6)")"
}

# The table written while the server is killed: transaction i inserts rows
# i*100+1 .. i*100+100 into c and adds 1 to n in 100 rows of t, so a
# consistent database has whole transactions only: COUNT(c) = MAX(c.id) =
# SUM(t.n), a multiple of 100.
mdb_writer_sql="
CREATE TABLE clients.c (id INT PRIMARY KEY, tx INT NOT NULL,
	v CHAR(64) NOT NULL) ENGINE=InnoDB//
CREATE PROCEDURE clients.w()
BEGIN
	DECLARE i INT DEFAULT 0;
	LOOP
		START TRANSACTION;
		INSERT INTO clients.c SELECT i * 100 + seq, i, sha2(i * 100 + seq, 256)
			FROM seq_1_to_100;
		UPDATE clients.t SET n = n + 1
			WHERE id BETWEEN (i * 100) % 100000 + 1 AND (i * 100) % 100000 + 100;
		COMMIT;
		SET i = i + 1;
	END LOOP;
END//"

# mdb_crash: runs the writer, waits until 20,000 rows of c are committed,
# reads the count committed and kills the server with SIGKILL; sets
# mdb_committed.
mdb_crash() {
	local i n pid rc
	printf 'USE clients\nDELIMITER //\n%s\n' "$mdb_writer_sql" |
		sql_stdin >"$dir/writer.log" 2>&1 ||
		{ why="cannot create the writer: $(head -c 300 "$dir/writer.log")"; return 1; }
	sql 'CALL clients.w()' >>"$dir/writer.log" 2>&1 &
	for ((i = 0; i < 1200; i++)); do
		n=$(sql 'SELECT COUNT(*) FROM clients.c') || n=0
		((n >= 20000)) && break
		sleep 0.1
	done
	if ((n < 20000)); then
		why="the writer committed only $n rows in 120 s"
		return 1
	fi
	mdb_committed=$(sql 'SELECT COUNT(*) FROM clients.c')
	pid=$(cat "$dir/pid")
	kill -KILL "$pid"
	wait "$mdb_pid" 2>/dev/null
	rc=$?
	wait   # the writer, now cut off
	cp "$dir/err.log" "$dir/err.$mdb_run"
	# timeout reports its child's death by SIGKILL as 137.
	expect "mariadbd's exit status after SIGKILL" 137 $rc || return 1
	if [ "$mdb_mode" = strace ]; then
		no_kernel_aio "$dir/strace.$mdb_run" || return 1
	fi
}

mdb_check_recovered() {   # whole transactions, none committed lost
	local res n
	for res in t c; do
		res=$(sql "CHECK TABLE clients.$res" | awk '{ print $NF }' | tail -1)
		expect "CHECK TABLE after recovery" OK "$res" || return 1
	done
	n=$(sql 'SELECT COUNT(*) FROM clients.c')
	if ((n < mdb_committed)); then
		why="crash recovery lost committed rows: $mdb_committed committed before SIGKILL, $n after"
		return 1
	fi
	expect "rows of c in whole transactions (count % 100)" 0 $((n % 100)) || return 1
	expect "MAX(c.id) (no gap)" "$n" "$(sql 'SELECT COALESCE(MAX(id), 0) FROM clients.c')" || return 1
	expect "SUM(t.n), t's updates of the same transactions" "$n" \
		"$(sql 'SELECT SUM(n) FROM clients.t')" || return 1
	expect "rows of c not as written" 0 \
		"$(sql 'SELECT COUNT(*) FROM clients.c WHERE v <> sha2(id, 256) OR tx <> (id - 1) DIV 100')" || return 1
	expect "rows in t" 100000 "$(sql 'SELECT COUNT(*) FROM clients.t')" || return 1
	mdb_recovered=$n
}

# The initialised datadir, made once (without aiopool: that is
# mariadb-install-db's bootstrap, not the test) and copied for each step.
mdb_template() {
	local t=$work/mariadb-datadir
	[ -d "$t/mysql" ] && return 0
	rm -rf "$t"
	if ! timeout 300 mariadb-install-db --no-defaults --datadir="$t" \
		--user="$user" --auth-root-authentication-method=normal \
		--skip-test-db >"$work/mariadb-install-db.log" 2>&1; then
		why="mariadb-install-db failed: $(tail -3 "$work/mariadb-install-db.log" | tr '\n' ' ')"
		rm -rf "$t"
		return 1
	fi
}

run_mariadb() {
	local sum1 sum2
	mdb_mode=$1 mdb_run=0
	need mariadbd mariadb mariadb-admin mariadb-install-db || return
	[ "$mdb_mode" = strace ] && { need strace || return; }
	mdb_template || return 1
	cp -a "$work/mariadb-datadir" "$dir/data" || { why="cannot copy the datadir"; return 1; }

	mdb_start || return 1
	sql "CREATE DATABASE clients; USE clients;
	     CREATE TABLE clients.t (id INT PRIMARY KEY, v CHAR(32) NOT NULL,
		n INT NOT NULL DEFAULT 0, pad VARCHAR(255) NOT NULL, KEY (v)) ENGINE=InnoDB;
	     INSERT INTO clients.t (id, v, pad)
		SELECT seq, md5(seq), repeat(md5(seq), 6) FROM seq_1_to_100000" \
		>"$dir/create.log" 2>&1 || { why="creating the table failed: $(head -c 300 "$dir/create.log")"; mdb_stop; return 1; }
	mdb_check_t || { mdb_stop; return 1; }
	sum1=$(sql 'CHECKSUM TABLE clients.t' | awk '{ print $2 }')
	mdb_stop || return 1

	mdb_start || return 1   # restart: everything read back from the files
	mdb_check_t || { mdb_stop; return 1; }
	sum2=$(sql 'CHECKSUM TABLE clients.t' | awk '{ print $2 }')
	expect "CHECKSUM TABLE t after a restart" "$sum1" "$sum2" || { mdb_stop; return 1; }
	mdb_crash || return 1

	mdb_start || return 1   # crash recovery
	if ! grep -qiE 'recovery|Starting crash recovery|Starting final batch' "$dir/err.log"; then
		why="no crash recovery in the error log after SIGKILL"
		mdb_stop
		return 1
	fi
	mdb_check_recovered || { mdb_stop; return 1; }
	mdb_stop || return 1
	why="100,000 rows checked after a restart (checksum $sum1); SIGKILL with $mdb_committed rows committed, $mdb_recovered after recovery, consistent; $why"
	[ "$mdb_mode" = strace ] && why="$why; strace: no kernel AIO system call"
	[ "$mdb_mode" = kernel ] && why="$why (kernel AIO, without aiopool)"
	return 0
}

# ---- fio ---------------------------------------------------------------------

# run_fio ENGINE DIRECT [FIO-OPTION]...: random 4 KiB writes over 64 MiB
# with crc32c headers, then read back and verified by the same job.
# --thread: one process, whose stats line counts all its I/O.
run_fio() {
	local engine=$1 direct=$2 rc
	shift 2
	need fio || return
	if [ "$direct" = 1 ] && ! direct_ok "$dir"; then
		why="the filesystem of $dir refuses O_DIRECT"
		return 77
	fi
	preload "$dir/stats"
	timeout 600 "$noaio" env "${pre_env[@]}" fio --name=verify \
		--directory="$dir" --filename=fio.dat --size=64m --bs=4k \
		--rw=randwrite --ioengine="$engine" --iodepth=16 \
		--iodepth_batch_submit=4 --direct="$direct" --thread \
		--verify=crc32c --verify_fatal=1 --verify_state_save=0 \
		--do_verify=1 "$@" >"$dir/fio.log" 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		why="fio exited with status $rc: $(grep -E 'err=|error|verify' "$dir/fio.log" | head -2 | tr '\n' ' ')"
		return 1
	fi
	if grep -Eiq 'verify.*(fail|error)|bad magic' "$dir/fio.log" ||
	   ! grep -q 'err= 0' "$dir/fio.log"; then
		why="fio reported an error: $(grep -Ei 'err=|verify|magic' "$dir/fio.log" | head -2 | tr '\n' ' ')"
		return 1
	fi
	served "$dir/stats" || return 1
	why="64 MiB written and verified (crc32c); $why"
}

# ---- sysbench ------------------------------------------------------------------

run_sysbench() {
	local sb rc
	need sysbench || return
	sb=(sysbench fileio --file-total-size=64M --file-num=4 --threads=2
	    --file-test-mode=rndrw --file-io-mode=async --time=5)
	(cd "$dir" && "${sb[@]}" prepare) >"$dir/prepare.log" 2>&1 ||
		{ why="sysbench prepare failed: $(tail -2 "$dir/prepare.log" | tr '\n' ' ')"; return 1; }
	preload "$dir/stats"
	(cd "$dir" && timeout 300 "$noaio" env "${pre_env[@]}" "${sb[@]}" run) >"$dir/run.log" 2>&1
	rc=$?
	(cd "$dir" && "${sb[@]}" cleanup) >"$dir/cleanup.log" 2>&1
	if [ $rc -ne 0 ] || grep -q FATAL "$dir/run.log"; then
		why="sysbench run exited with status $rc: $(grep -E 'FATAL|rror' "$dir/run.log" | head -2 | tr '\n' ' ')"
		return 1
	fi
	served "$dir/stats" || return 1
	why="$(grep -E '^ *(reads|writes)/s:' "$dir/run.log" | tr -s ' \n' ' ')for 5 s; $why"
}

# ---- stress-ng -----------------------------------------------------------------

# run_stress STRESSOR [ENV|OPTION]...: two workers of STRESSOR with
# --verify for 5 s, each of which must have been served by aiopool; NAME=V
# arguments go to the environment, the others to stress-ng.
run_stress() {
	local stressor=$1 rc a envs=() opts=()
	shift
	for a; do
		case $a in *=*) envs+=("$a") ;; *) opts+=("$a") ;; esac
	done
	need stress-ng || return
	preload "$dir/stats"
	(cd "$dir" && timeout 300 "$noaio" env "${pre_env[@]}" "${envs[@]}" \
		stress-ng --"$stressor" 2 "${opts[@]}" --verify -t 5 \
		--temp-path "$dir" --metrics-brief) >"$dir/stress.log" 2>&1
	rc=$?
	if grep -q 'no io_setup system call' "$dir/stress.log"; then
		why="stress-ng's $stressor calls syscall(SYS_io_setup) itself and got ENOSYS: aiopool must serve the raw AIO system calls (the syscall(3) interposer, with AIOPOOL_SYSCALL_SETUP=1)"
		return 1
	fi
	if [ $rc -ne 0 ] || grep -Eq 'fail:|skipped|aborted' "$dir/stress.log" ||
	   ! grep -q 'successful run completed' "$dir/stress.log"; then
		why="stress-ng exited with status $rc: $(grep -E 'fail|skip|abort|error' "$dir/stress.log" | head -2 | tr '\n' ' ')"
		return 1
	fi
	served "$dir/stats" 2 || return 1
	why="$(awk '$4 == "'"$stressor"'" && $5 ~ /^[0-9]+$/ { print $5 " bogo ops, verified;"; exit }' "$dir/stress.log") $why"
}

# ---- the steps ---------------------------------------------------------------

patterns=("$@")
for f in "$lib" "$noaio"; do
	[ -e "$f" ] || { echo "FAIL: $f is missing: run make check-clients"; exit 1; }
done
mkdir -p "$work" || exit 1
t_all=$SECONDS

step noaio-filter       run_noaio_filter
step mariadb            run_mariadb strace
step mariadb-noaio      run_mariadb noaio
# The harness's own control, run only when named: the same on the kernel.
explicit=1 step mariadb-kernel run_mariadb kernel
step fio-posixaio       run_fio posixaio 0
step fio-posixaio-direct run_fio posixaio 1
step fio-libaio         run_fio libaio 0
step fio-libaio-direct  run_fio libaio 1
step fio-libaio-ureap   run_fio libaio 0 --userspace_reap=1 --iodepth_batch_complete_min=0
step fio-libaio-ureap-direct run_fio libaio 1 --userspace_reap=1 --iodepth_batch_complete_min=0
step sysbench-fileio    run_sysbench
step stress-ng-aio      run_stress aio --aio-requests 16
step stress-ng-aiol     run_stress aiol AIOPOOL_SYSCALL_SETUP=1

echo "check-clients took $((SECONDS - t_all)) s"
echo "clients: $npass passed, $nfail failed, $nskip skipped"
[ $nfail -eq 0 ]
