#!/bin/sh
# libaio_fio.sh: fio's libaio engine on aiopool.  Runs Debian's fio (linked
# against libaio.so.1) under LD_PRELOAD=libaiopool.so: random 4 KiB writes
# of a 16 MiB file with crc32c verification headers, read back and verified
# by the same job, then read back and verified again by a second job
# (--verify_only) that runs as threads; a third job does it all again while
# reaping events straight from the context's ring (--userspace_reap, as the
# kernel's struct aio_ring is laid out).  With strace, also checks that fio
# made no io_setup/io_submit/io_getevents system call, i.e. that aiopool
# served every call.
#
#   libaio_fio.sh LIBAIOPOOL_SO WORKDIR
# Exit status: 0 passed, 77 fio is missing, anything else failed.
set -u
lib=$1
dir=$2

command -v fio >/dev/null 2>&1 || { echo "fio not installed"; exit 77; }
[ -r "$lib" ] || { echo "no $lib"; exit 1; }
mkdir -p "$dir" || exit 1

trace=
if command -v strace >/dev/null 2>&1 &&
   strace -f -qq -o /dev/null true >/dev/null 2>&1; then
	trace=yes
fi

common="--directory=$dir --filename=fio.dat --size=16m --bs=4k
	--ioengine=libaio --iodepth=16 --iodepth_batch_submit=4
	--verify=crc32c --verify_fatal=1 --verify_state_save=0 --group_reporting"

run() {	# run NAME LOG ARGS...
	name=$1 log=$2
	shift 2
	if [ -n "$trace" ]; then
		timeout 300 strace -f -qq -o "$dir/$name.strace" \
			-e trace=io_setup,io_submit,io_getevents,io_pgetevents,io_destroy \
			-E LD_PRELOAD="$lib" fio --name="$name" $common "$@" >"$log" 2>&1
	else
		LD_PRELOAD="$lib" timeout 300 fio --name="$name" $common "$@" \
			>"$log" 2>&1
	fi
	rc=$?
	cat "$log"
	if [ $rc -ne 0 ]; then
		echo "FAIL: fio $name exited with $rc"
		exit 1
	fi
	if grep -Eiq 'verify.*(fail|error)|bad magic' "$log"; then
		echo "FAIL: fio $name reported a verify error"
		exit 1
	fi
	if [ -n "$trace" ] && grep -Eq '^[0-9]+ +io_' "$dir/$name.strace"; then
		echo "FAIL: fio $name made kernel AIO system calls:"
		grep -E '^[0-9]+ +io_' "$dir/$name.strace" | head
		exit 1
	fi
}

run aiopool-randwrite "$dir/write.log" --rw=randwrite --do_verify=1
run aiopool-verify "$dir/verify.log" --rw=randwrite --verify_only --thread
run aiopool-ureap "$dir/ureap.log" --rw=randwrite --do_verify=1 \
	--userspace_reap --iodepth_batch_complete_min=0
[ -n "$trace" ] || echo "strace unavailable: system calls not checked"
echo "PASS"
exit 0
