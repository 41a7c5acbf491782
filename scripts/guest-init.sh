#!/bin/sh
# kvm-rs guest init (busybox sh). Runs the test list /kvmrs/tests.list,
# prints one TAP line per test, a summary and the closing marker, then
# reboots (QEMU runs with -no-reboot, so it exits).
export PATH=/bin:/sbin:/usr/bin:/kvmrs/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmp /tmp
mkdir -p /dev/hugepages && mount -t hugetlbfs none /dev/hugepages 2>/dev/null
# Only warnings and worse on the console; the rest is dumped at the end.
dmesg -n 5
cd /tmp

ARCH=$(cat /kvmrs/arch)
KVER=$(uname -r)
MODDIR=/lib/modules/$KVER
FILTER=$(cat /kvmrs/filter 2>/dev/null)
TSCALE=$(cat /kvmrs/tscale 2>/dev/null || echo 1)
echo "KVMRS-BEGIN arch=$ARCH kernel=$KVER cpus=$(nproc)"
[ "$ARCH" = arm64 ] && echo "KVMRS-INFO $(dmesg | grep -m1 -i 'kvm \[1\]: .*mode initialized')"

modpath() { find "$MODDIR" -name "$1.ko*" | head -1; }

# Current kvm.ko parameters; x86 reloads kvm (and kvm_amd) when a test asks
# for other kvm.* parameters (kvm.tdp_mmu is read-only once loaded).
# modprobe follows modules.dep: kvm_rs and irqbypass load before kvm.
CUR_KVM_PARAMS=none
load_x86() { # $1 = space-separated kvm.ko params
	[ "$CUR_KVM_PARAMS" = "$1" ] && return 0
	modprobe -r kvm_amd 2>/dev/null; modprobe -r kvm 2>/dev/null
	modprobe kvm_rs || return 1
	modprobe kvm $1 || return 1
	modprobe kvm_amd || return 1
	CUR_KVM_PARAMS=$1
	[ -c /dev/kvm ] || { echo "KVMRS-INFO /dev/kvm missing after loading kvm"; return 1; }
}

apply_params() { # $1 = comma-separated: kvm.x=y (module load) or /sys/...=v
	kvmp="" sysp=""
	for p in $(echo "$1" | tr ',' ' '); do
		case $p in
		-) ;;
		kvm.*) kvmp="$kvmp ${p#kvm.}" ;;
		/*) sysp="$sysp $p" ;;
		*) echo "KVMRS-INFO unknown parameter $p"; return 1 ;;
		esac
	done
	# Modules first: reloading kvm also reloads kvm_rs (kvm.ko depends on
	# it), which would reset a switch written before.
	if [ "$ARCH" = x86_64 ]; then
		modprobe kvm_rs || return 1
		load_x86 "${kvmp# }" || return 1
	elif [ -n "$kvmp" ]; then
		echo "KVMRS-INFO kvm is built in on arm64: $kvmp needs the kernel command line"; return 1
	fi
	# Runtime switches start from their defaults for every test.
	[ -f /kvmrs/defaults ] && while IFS= read -r d; do
		case $d in /*=*) [ -e "${d%%=*}" ] && echo "${d#*=}" >"${d%%=*}" ;; esac
	done </kvmrs/defaults
	for p in $sysp; do
		echo "${p#*=}" >"${p%%=*}" || return 1
	done
}

run_kunit() { # $1 = module [params]; its KTAP goes to the log, the verdict from it
	m=$1; shift
	dmesg -c >/dev/null
	insmod "$(modpath "$m")" "$@" || return 1
	dmesg | sed -n 's/^\[[ 0-9.]*\] //p' | grep -E '^ *(KTAP|#|ok|not ok|[0-9]+\.\.[0-9]+)' | sed 's/^/KTAP: /'
	rmmod "$m" 2>/dev/null
	dmesg | grep -qE '^\[[ 0-9.]*\] +not ok ' && return 1
	dmesg | grep -qE '^\[[ 0-9.]*\] ok [0-9]+ ' || return 1
	return 0
}

# A hung test's state before it is killed: per thread the state, wchan and
# user/system ticks, sampled twice (which threads burn CPU, in guest mode
# or the kernel), and the KVM debugfs statistics that moved in between (a
# vCPU looping on page faults shows as pf_* / exits climbing).
hang_report() { # $1 = pid
	p=$1
	snap() {
		for t in /proc/$p/task/*; do
			[ -r "$t/stat" ] || continue
			set -- $(sed 's/^[0-9]* (\(.*\)) /\1 /' "$t/stat")
			echo "${t##*/} comm=$1 state=$2 utime=${13} stime=${14} wchan=$(cat "$t/wchan" 2>/dev/null)"
		done
		for f in /sys/kernel/debug/kvm/$p-*/*; do
			[ -f "$f" ] && echo "stat ${f##*/} $(cat "$f" 2>/dev/null)"
		done
	}
	snap >/tmp/hang.1; sleep 2; snap >/tmp/hang.2
	echo "KVMRS-HANG pid $p: threads and moving KVM statistics (2 s apart)"
	grep -v '^stat ' /tmp/hang.2 | sed 's/^/KVMRS-HANG   /'
	grep '^stat ' /tmp/hang.1 | while read -r _ k v; do
		v2=$(sed -n "s/^stat $k //p" /tmp/hang.2)
		[ "$v" != "$v2" ] && echo "KVMRS-HANG   $k: $v -> $v2"
	done
	for s in /proc/$p/task/*/stack; do
		[ -r "$s" ] && sed "s|^|KVMRS-HANG   ${s#/proc/$p/task/}: |" "$s" 2>/dev/null
	done
}

# Runs "$@" for at most $1 seconds; on timeout reports its state, kills it
# and returns 137.
run_with_deadline() {
	tmo=$1; shift
	"$@" &
	pid=$!
	( sleep "$tmo"; kill -0 $pid 2>/dev/null && { hang_report $pid; kill -9 $pid; } ) &
	wd=$!
	wait $pid; r=$?
	kill $wd 2>/dev/null
	return $r
}

# kvm-rs's arm64 stage-2 counters ("name value" lines): each test's log
# gets the counters that moved while it ran, and the switches' values, so
# that a .c/.rs pair shows which decision path ran.
# On x86 the same for the aging counters (kvm_rs/aging/), with the switch;
# locked_calls (aging calls that took mmu_lock) is printed even when 0.
S2C=/sys/kernel/debug/kvm_rs/s2/all
AGC=/sys/kernel/debug/kvm_rs/aging
snap_counters() {
	if [ -r "$S2C" ]; then
		cat "$S2C"
	elif [ -d "$AGC" ]; then
		for f in "$AGC"/*; do echo "${f##*/} $(cat "$f")"; done
		echo "lockless_aging $(cat /sys/module/kvm_rs/parameters/lockless_aging 2>/dev/null || echo 1)"
	fi
}
counters_delta() { # name, before, after
	awk -v t="$1" 'NR == FNR { a[$1] = $2; next }
		$1 ~ /^(mode|active|bbm_level|bbml2_enabled|lockless_aging)$/ { s = s " " $1 "=" $2; next }
		$2 != a[$1] || $1 == "locked_calls" { s = s " " $1 "=" ($2 - a[$1]) }
		END { print "KVMRS-COUNTERS " t ":" s }' "$2" "$3"
}

n=0 pass=0 fail=0 skip=0
while read -r name tmo flags params cmd; do
	case $name in '' | \#*) continue ;; esac
	if [ -n "$FILTER" ] && ! echo "$name $flags" | grep -qE "$FILTER"; then continue; fi
	n=$((n + 1))
	tmo=$((tmo * TSCALE))
	echo "KVMRS-TEST-START $n $name: $cmd"
	t0=$(date +%s)
	if ! apply_params "$params"; then
		rc=1
		echo "KVMRS-INFO $name: could not apply parameters '$params'"
	else
		snap_counters >/tmp/kvmrs-c0 2>/dev/null
		case $cmd in
		@kunit*) run_kunit ${cmd#@kunit }; rc=$? ;;
		*)	# Full path: the selftest library reopens its own ELF
			# through argv[0].
			set -- $cmd
			b=$1; shift
			[ -x "/kvmrs/bin/$b" ] && b=/kvmrs/bin/$b
			run_with_deadline "$tmo" "$b" "$@"; rc=$? ;;
		esac
		[ -s /tmp/kvmrs-c0 ] && snap_counters >/tmp/kvmrs-c1 2>/dev/null &&
			counters_delta "$name" /tmp/kvmrs-c0 /tmp/kvmrs-c1
		rm -f /tmp/kvmrs-c0 /tmp/kvmrs-c1
	fi
	dt=$(($(date +%s) - t0))
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); echo "ok $n - $name # time=${dt}s"
	elif [ $rc -eq 4 ]; then
		skip=$((skip + 1)); echo "ok $n - $name # SKIP (exit 4) time=${dt}s"
	elif [ $rc -eq 137 ] || [ $rc -eq 143 ]; then
		fail=$((fail + 1)); echo "not ok $n - $name # TIMEOUT after ${tmo}s"
	else
		fail=$((fail + 1)); echo "not ok $n - $name # exit=$rc time=${dt}s"
	fi
done </kvmrs/tests.list

echo "1..$n"
echo "KVMRS-DMESG-BEGIN"
dmesg
echo "KVMRS-DMESG-END"
echo "$pass passed, $fail failed, $skip skipped"
echo "KVMRS-DONE"
sync
reboot -f
