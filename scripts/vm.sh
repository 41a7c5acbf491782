#!/usr/bin/env bash
# Build the initramfs, boot the test VM under QEMU (TCG) and judge the run.
#
#   vm.sh test   the whole test list selftests/vm-tests.$ARCH
#   vm.sh run    the demo subset (flag "demo") with a summary
#
# Knobs: ARCH, DEBUG=1, TESTS=<regex on name/flags>, VM_TIMEOUT=<s> (boot),
# KVMRS_TCG=multi|single (TCG threading; default single on x86_64, multi
# on arm64: see Documentation/pipeline.rst, "Emulation flakes"),
# KVMRS_TSCALE=<n> (multiply every per-test timeout; default 4 with
# DEBUG=1, where KASAN + lockdep under TCG make tests several times slower,
# else 1), KVMRS_LIST=<file> (another test list), KVMRS_EXTRA_INIT=<file> (sourced
# by the guest before the tests; used by the failure demos).
# Logs: out/vm-<arch>[-debug].log (full serial log, kept after every run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
ARCH=${ARCH:-x86_64}
[ "$ARCH" = aarch64 ] && ARCH=arm64
DEBUG=${DEBUG:-0}
mode=${1:-test}
O=$(bash "$here/kernel.sh" print-dir)
ST=$KVMRS_CACHE/selftests-$ARCH
LIST=${KVMRS_LIST:-$KVMRS_ROOT/selftests/vm-tests.$ARCH}
sfx=$ARCH
case $DEBUG in 1) sfx=$ARCH-debug ;; kcsan) sfx=$ARCH-kcsan ;; esac
OUTD=$KVMRS_ROOT/out
LOG=$OUTD/vm-$sfx.log
[ -n "${KVMRS_LIST:-}" ] && LOG=$OUTD/vm-$sfx-$(basename "${KVMRS_LIST%.*}").log
mkdir -p "$OUTD"
[ -f "$LIST" ] || die "no test list $LIST"

FILTER=${TESTS:-}
TSCALE=${KVMRS_TSCALE:-$(case $DEBUG in 1) echo 4 ;; kcsan) echo 3 ;; *) echo 1 ;; esac)}
if [ "$mode" = run ] && [ -z "$FILTER" ]; then FILTER='(^| )demo|,demo'; fi

case $ARCH in
x86_64)
	# Multi-threaded TCG makes nested SVM guests fail about one selftest
	# run in ten (a vCPU looping on emulation + injected #PF, or a triple
	# fault), with or without kvm-rs; one TCG thread: none in 48 runs.
	TCG=${KVMRS_TCG:-single}
	IMAGE=$O/arch/x86/boot/bzImage
	BB=/bin/busybox
	QEMU=(qemu-system-x86_64 -M q35 -cpu max -smp 2 -m 2G -accel tcg,thread=$TCG
		-append "console=ttyS0 panic=-1 oops=panic mem=2040M slab_nomerge") ;;
	# mem=2040M: with ACPI, q35's RAM ends at a pfn that is not a multiple
	# of 64, and 6.12's page_idle bitmap returns 0 bytes for the last,
	# partial word, which fails access_tracking_perf_test's pread()s of
	# pages that land there. 2040 MiB keeps max_pfn 64-aligned.
	# slab_nomerge: per-cache failslab (kvm_rs_desc_topup_failslab_test.sh) needs
	# pte_list_desc to be a cache of its own.
arm64)
	TCG=${KVMRS_TCG:-multi}
	IMAGE=$O/arch/arm64/boot/Image
	BB=$KVMRS_CACHE/busybox-arm64
	# lpa2=off: with FEAT_LPA2 KVM builds 52-bit (LPA2) stage-2 tables,
	# which kvm-rs does not describe, and keeps 6.12's C decisions.
	QEMU=(qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max,lpa2=off -smp 2 -m 2G
		-accel tcg,thread=$TCG -append "console=ttyAMA0 panic=-1 oops=panic") ;;
esac
[ -f "$IMAGE" ] || die "no kernel image $IMAGE: run 'make kernel ARCH=$ARCH'"
[ -x "$BB" ] || die "no static busybox for $ARCH at $BB: run 'make deps'"
command -v "${QEMU[0]}" >/dev/null || die "${QEMU[0]} missing: install Debian package '$([ "$ARCH" = arm64 ] && echo qemu-system-arm || echo qemu-system-x86)' from bookworm-backports (make deps)"

# --- initramfs ---------------------------------------------------------------
build_initramfs() {
	local root=$OUTD/initramfs-$sfx t0
	t0=$(date +%s)
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,kvmrs/bin,lib/modules}
	cp "$BB" "$root/bin/busybox"
	for a in $("$BB" --list 2>/dev/null || qemu_list_applets); do
		[ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
	done
	cp -a "$O"/modroot/lib/modules/. "$root/lib/modules/"
	install -m755 "$KVMRS_ROOT/scripts/guest-init.sh" "$root/init"
	echo "$ARCH" >"$root/kvmrs/arch"
	printf '%s\n' "$FILTER" >"$root/kvmrs/filter"
	echo "$TSCALE" >"$root/kvmrs/tscale"
	cp "$LIST" "$root/kvmrs/tests.list"
	# Defaults of the runtime switches, restored before every test.
	[ -f "$KVMRS_ROOT/selftests/vm-defaults.$ARCH" ] &&
		grep -v '^#' "$KVMRS_ROOT/selftests/vm-defaults.$ARCH" >"$root/kvmrs/defaults"
	if [ -n "${KVMRS_EXTRA_INIT:-}" ]; then
		# Run before the list: a test hook (e.g. the failure demos).
		sed -i "/^n=0 pass=0/i . /kvmrs/extra-init.sh" "$root/init"
		cp "$KVMRS_EXTRA_INIT" "$root/kvmrs/extra-init.sh"
	fi
	# Guest-side shell tests.
	cp "$KVMRS_ROOT"/selftests/guest/*.sh "$root/kvmrs/bin/" 2>/dev/null || true
	# The selftest binaries the list names (first word of the command).
	local b f
	# Guest shell tests name the binaries they run in "# needs:" lines.
	for b in $(awk -v f="${FILTER:-.}" '!/^#/ && NF >= 5 && $5 !~ /^@/ && ($1 " " $3) ~ f {print $5}' "$LIST" |
		while read -r x; do
			echo "$x"
			g=$KVMRS_ROOT/selftests/guest/$x
			[ -f "$g" ] && sed -n 's/^# needs: *//p' "$g" | tr ' ' '\n'
		done | sort -u); do
		/bin/busybox --list | grep -qx "$b" && continue # an applet (runner self-test)
		[ -f "$KVMRS_ROOT/selftests/guest/$b" ] && continue # a guest shell test
		f=$(find "$ST" -type f -name "$b" -perm -u+x | head -1)
		[ -n "$f" ] || die "selftest binary '$b' (named in $LIST) was not built in $ST"
		cp "$f" "$root/kvmrs/bin/"
	done
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$OUTD/initramfs-$sfx.gz"
	ok "initramfs $(du -h "$OUTD/initramfs-$sfx.gz" | cut -f1) ($(($(date +%s) - t0)) s)"
}
qemu_list_applets() { # arm64 busybox cannot run on the host: use the x86 list
	/bin/busybox --list
}

# Boot timeout: the sum of the per-test timeouts that will run, plus boot.
boot_timeout() {
	local f=${FILTER:-.}
	awk -v f="$f" -v k="$TSCALE" '!/^#/ && NF >= 5 { if (($1 " " $3) ~ f) s += $2 * k } END { print s + 180 }' "$LIST"
}

build_initramfs
TMO=${VM_TIMEOUT:-$(boot_timeout)}
step "booting $ARCH VM$([ "$DEBUG" != 0 ] && echo " (DEBUG=$DEBUG kernel)") (timeout ${TMO}s, log $LOG)"
t0=$(date +%s)
set +e
timeout -k 10 "$TMO" "${QEMU[@]}" -kernel "$IMAGE" -initrd "$OUTD/initramfs-$sfx.gz" \
	-nographic -no-reboot -monitor none -serial stdio </dev/null 2>&1 |
	tee "$LOG" | grep --line-buffered -E '^(ok|not ok) [0-9]+ - |^KVMRS-(BEGIN|INFO)|^[0-9]+ passed, '
qrc=${PIPESTATUS[0]}
set -e
dt=$(($(date +%s) - t0))
tr -d '\r' <"$LOG" >"$LOG.tmp" && mv "$LOG.tmp" "$LOG"

# --- verdict -------------------------------------------------------------------
problems=()
if ! grep -q '^KVMRS-DONE' "$LOG"; then
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		problems+=("guest hung: no closing marker after ${TMO}s, QEMU killed")
	else
		problems+=("closing marker missing (QEMU exit $qrc after ${dt}s)")
	fi
	last=$(grep -E '^KVMRS-TEST-START' "$LOG" | tail -1)
	[ -n "$last" ] && problems+=("last test started: ${last#KVMRS-TEST-START }")
fi
nfail=$(grep -cE '^not ok [0-9]+ - ' "$LOG" || true)
[ "$nfail" -gt 0 ] && problems+=("$nfail test(s) failed: $(grep -E '^not ok [0-9]+ - ' "$LOG" | sed 's/^not ok [0-9]* - //' | tr '\n' ';')")
npass=$(grep -cE '^ok [0-9]+ - ' "$LOG" || true)
[ "$npass" -eq 0 ] && [ "$nfail" -eq 0 ] && problems+=("no test ran (filter '$FILTER')")

# Kernel splats anywhere in the log (console and the final dmesg dump).
SPLAT='WARNING: |BUG: |BUG kmalloc|KASAN|Oops|general protection fault|Kernel panic|possible recursive locking|possible circular locking|inconsistent lock state|suspicious RCU usage|sleeping function called from invalid context|INFO: task .* blocked|Call Trace:'
# Only kernel lines (printk timestamps): selftests print "WARNING:" too.
SCAN=$LOG
if [ "$DEBUG" = kcsan ]; then
	# KCSAN reports of known races in code the series does not touch
	# (selftests/kcsan-known.$ARCH) are dropped; every other one fails.
	SCAN=$OUTD/vm-$sfx.scan.log
	python3 "$here/kcsan_filter.py" "$LOG" "$KVMRS_ROOT/selftests/kcsan-known.$ARCH" >"$SCAN"
fi
if grep -nE "^\[ *[0-9]+\.[0-9]+\] .*($SPLAT)" "$SCAN" >"$OUTD/splats-$sfx.txt"; then
	first=$(head -1 "$OUTD/splats-$sfx.txt" | cut -d: -f1)
	problems+=("kernel splat in the guest log (line $first): $(head -1 "$OUTD/splats-$sfx.txt" | cut -d: -f2- | cut -c1-120)")
	echo "---- guest log around line $first ----" >&2
	sed -n "$((first > 10 ? first - 10 : 1)),$((first + 40))p" "$SCAN" >&2
	echo "----" >&2
fi

summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOG" | tail -1 || true)
echo "== $ARCH$([ "$DEBUG" != 0 ] && echo " DEBUG=$DEBUG"): $npass ok, $nfail not ok, boot+tests ${dt}s, log $LOG"
if [ ${#problems[@]} -gt 0 ]; then
	printf 'kvm-rs: FAIL: %s\n' "${problems[@]}" >&2
	echo "$npass passed, $((nfail > 0 ? nfail : 1)) failed"
	exit 1
fi
echo "$summary"
