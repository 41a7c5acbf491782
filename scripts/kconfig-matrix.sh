#!/usr/bin/env bash
# Kconfig matrix: every x86_64 combination of KVM (y/m), a requested
# KVM_RS (y/m/n; m is not a valid value for the bool and shows what it
# resolves to) and the vendor modules KVM_INTEL/KVM_AMD must resolve, after
# olddefconfig, to a configuration that links. The tristate KVM_RS of
# earlier versions let KVM=y, KVM_INTEL=y, KVM_RS=m demote kvm.ko to a
# module under a built-in kvm-intel.o: a link failure no VM run sees,
# because the test configs build everything as modules.
#
# Config targets only (tinyconfig, olddefconfig, rustavailable): no kernel
# is built. Scratch O= directory: $KVMRS_CACHE/kconfig-matrix. The build
# lock is held for the whole run, so a kernel build cannot switch the
# source tree's branch under it (and the run waits for a running build).
#
# Time: one olddefconfig costs ~4.5 s on 2 idle cores, almost all of it
# the ~90 compiler probes ($(cc-option) etc.) that every Kconfig parse
# runs; 46 of them on nproc workers take ~105 s, plus ~17 s for the base
# config when it is not cached. That is within budget, so the full vendor
# list is kept.
#
# Rules checked for each combination (n < m < y; kvm_rs = the value the
# Kbuild builds kvm_rs.o with: KVM if KVM_RS=y, else n):
#   1. the requested KVM took effect and a requested KVM_RS=y survived;
#   2. KVM_X86 >= KVM_INTEL, KVM_AMD    (vendor code calls kvm.ko);
#   3. kvm_rs >= KVM_X86 if KVM_RS=y    (kvm.ko calls kvm_rs: a built-in
#      kvm.o needs a built-in kvm_rs);
#   4. KVM_RS_KUNIT_TEST <= kvm_rs, and the requested m survives when
#      KVM_RS=y (it calls kvm_rs);
#   5. KVM_MMU_LOCKLESS_AGING = KVM_ELIDE_TLB_FLUSH_IF_YOUNG = y iff
#      KVM_RS=y and KVM_X86 != n, else n;
#   6. KVM_RS_AB_TEST = n unless requested; when requested, y iff KVM_RS=y.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

KSRC=${KVMRS_KSRC:-$KVMRS_CACHE/linux}
D=$KVMRS_CACHE/kconfig-matrix
KMAKE=(make -s -C "$KSRC" O="$D" ARCH=x86_64 LLVM=1 RUSTC="$KRUSTC"
	BINDGEN="$BINDGEN" RUST_LIB_SRC="$RUST_LIB_SRC")
SYMS=(KVM KVM_X86 KVM_INTEL KVM_AMD KVM_RS KVM_RS_KUNIT_TEST
	KVM_MMU_LOCKLESS_AGING KVM_ELIDE_TLB_FLUSH_IF_YOUNG KVM_RS_AB_TEST)
# (KVM_INTEL, KVM_AMD) requests: every vendor-module shape except "none"
# (KVM_X86=n: nothing calls kvm_rs).
VENDORS=("y n" "m n" "n y" "n m" "y m" "m y" "y y")

mkdir -p "$KVMRS_CACHE"
exec 9>"$KVMRS_CACHE/.build.lock"
if ! flock -n 9; then
	step "waiting for a kernel build to release $KVMRS_CACHE/.build.lock"
	flock -w 3600 9 || die "the kernel build lock was not released within an hour"
fi
KVMRS_BUILD_LOCK_HELD=1 bash "$here/kernel.sh" source
[ -f "$KSRC/virt/kvm/rs/Kconfig" ] || die "$KSRC has no virt/kvm/rs/Kconfig"

# --- base config: as kernel.sh configure(), ARCH=x86_64 --------------------
# Cached while the tree's commit, kvm-rs's Kconfig, the fragments and the
# toolchain are unchanged (tinyconfig + merge cost ~15 s).
frags=("$KVMRS_ROOT/configs/common.config" "$KVMRS_ROOT/configs/x86_64.config")
key="$(git -C "$KSRC" rev-parse HEAD 2>/dev/null || echo "ext $RANDOM")"
key+=" $(cat "$KSRC/virt/kvm/rs/Kconfig" "${frags[@]}" | sha256sum | cut -c1-16)"
key+=" $({ "$KRUSTC" --version; "$BINDGEN" --version; clang --version | head -1; } 2>&1 | sha256sum | cut -c1-16)"
if [ -f "$D/base.config" ] && [ "$(cat "$D/base.key" 2>/dev/null)" = "$key" ]; then
	ok "base config unchanged ($D/base.config)"
else
	step "base config: tinyconfig + common.config + x86_64.config ($D)"
	rm -rf "$D" && mkdir -p "$D"
	"${KMAKE[@]}" tinyconfig >/dev/null
	KCONFIG_CONFIG="$D/.config" "$KSRC/scripts/kconfig/merge_config.sh" -m -O "$D" "$D/.config" "${frags[@]}" >"$D/merge.log" 2>&1 ||
		{ cat "$D/merge.log" >&2; die "merge_config.sh failed"; }
	"${KMAKE[@]}" olddefconfig >/dev/null
	cp "$D/.config" "$D/base.config"
	echo "$key" >"$D/base.key"
fi
grep -qx CONFIG_RUST=y "$D/base.config" || {
	"${KMAKE[@]}" rustavailable >&2 || true
	die "CONFIG_RUST is not y in the base config (see rustavailable above)"
}
"${KMAKE[@]}" rustavailable >/dev/null || die "make rustavailable failed"
ok "base config: RUST=y, rustavailable"

# --- the combinations ----------------------------------------------------------
# "KVM KVM_RS KVM_INTEL KVM_AMD [KVM_RS_AB_TEST]"; KVM_RS_AB_TEST is left to
# its default (the base's line is dropped) unless given.
combos=()
for kvm in y m; do
	for rs in y m n; do
		for v in "${VENDORS[@]}"; do combos+=("$kvm $rs $v"); done
	done
done
for kvm in y m; do
	for rs in y n; do combos+=("$kvm $rs y m y"); done
done

# olddefconfig of one combination into $D/res/<i>.config (+ .warn). Runs
# in parallel workers, each with its own KCONFIG_CONFIG in the shared O=
# directory (kconfig writes through <config>.<pid>.tmp; include/config/
# auto.conf exists from the base run, so olddefconfig leaves it alone).
resolve() { # index
	local c=$D/res/$1.config kvm rs intel amd ab
	read -r kvm rs intel amd ab <<<"${combos[$1]}"
	grep -vE "^(# )?CONFIG_($(
		IFS='|'
		echo "${SYMS[*]}"
	))[= ]" "$D/base.config" >"$c"
	{
		echo "CONFIG_KVM=$kvm"
		echo "CONFIG_KVM_RS=$rs"
		echo "CONFIG_KVM_INTEL=$intel"
		echo "CONFIG_KVM_AMD=$amd"
		echo "CONFIG_KVM_RS_KUNIT_TEST=m"
		[ -z "$ab" ] || echo "CONFIG_KVM_RS_AB_TEST=$ab"
	} | sed 's/^\(CONFIG_[A-Z_]*\)=n$/# \1 is not set/' >>"$c"
	KCONFIG_CONFIG=$c "${KMAKE[@]}" olddefconfig >/dev/null 2>"$D/res/$1.warn" || { cat "$D/res/$1.warn" >&2; return 1; }
}

val() { # symbol, config file -> y|m|n
	local v
	v=$(sed -n "s/^CONFIG_$1=//p" "$2")
	echo "${v:-n}"
}
rank() { case $1 in y) echo 2 ;; m) echo 1 ;; *) echo 0 ;; esac; }
ge() { [ "$(rank "$1")" -ge "$(rank "$2")" ]; } # a >= b (n < m < y)

bad_total=0
declare -A class=()
judge() { # index: print one line, count BAD
	local i=$1 c=$D/res/$1.config kvm rs intel amd ab s rsb bad=() warn req res
	declare -A r=()
	read -r kvm rs intel amd ab <<<"${combos[$i]}"
	for s in "${SYMS[@]}"; do r[$s]=$(val "$s" "$c"); done
	rsb=n
	[ "${r[KVM_RS]}" = y ] && rsb=${r[KVM]}

	[ "${r[KVM]}" = "$kvm" ] || bad+=("KVM=$kvm not taken")
	[ "$rs" != y ] || [ "${r[KVM_RS]}" = y ] || bad+=("KVM_RS=y dropped")
	ge "${r[KVM_X86]}" "${r[KVM_INTEL]}" || bad+=("KVM_X86 < KVM_INTEL")
	ge "${r[KVM_X86]}" "${r[KVM_AMD]}" || bad+=("KVM_X86 < KVM_AMD")
	[ "${r[KVM_RS]}" != y ] || ge "$rsb" "${r[KVM_X86]}" || bad+=("kvm_rs < KVM_X86")
	ge "$rsb" "${r[KVM_RS_KUNIT_TEST]}" || bad+=("KUNIT_TEST > kvm_rs")
	[ "${r[KVM_RS]}" != y ] || [ "${r[KVM_RS_KUNIT_TEST]}" = m ] || bad+=("KUNIT_TEST=m dropped")
	local want_sel=n
	[ "${r[KVM_RS]}" = y ] && [ "${r[KVM_X86]}" != n ] && want_sel=y
	[ "${r[KVM_MMU_LOCKLESS_AGING]}" = $want_sel ] || bad+=("LOCKLESS_AGING != $want_sel")
	[ "${r[KVM_ELIDE_TLB_FLUSH_IF_YOUNG]}" = $want_sel ] || bad+=("ELIDE_TLB_FLUSH != $want_sel")
	local want_ab=n
	[ -n "$ab" ] && [ "${r[KVM_RS]}" = y ] && want_ab=y
	[ "${r[KVM_RS_AB_TEST]}" = $want_ab ] || bad+=("AB_TEST != $want_ab")

	req="KVM=$kvm RS=$rs INTEL=$intel AMD=$amd${ab:+ AB=$ab}"
	res="KVM=${r[KVM]} X86=${r[KVM_X86]} INTEL=${r[KVM_INTEL]} AMD=${r[KVM_AMD]} RS=${r[KVM_RS]} kvm_rs=$rsb"
	res+=" KUNIT=${r[KVM_RS_KUNIT_TEST]} AGING=${r[KVM_MMU_LOCKLESS_AGING]} ELIDE=${r[KVM_ELIDE_TLB_FLUSH_IF_YOUNG]} AB=${r[KVM_RS_AB_TEST]}"
	# kconfig's own complaint about the request (KVM_RS=m on a bool).
	warn=$(grep -E "KVM_RS([^_]|$)" "$D/res/$i.warn" | sed 's/^.*warning: //' | head -1 || true)
	if [ ${#bad[@]} -eq 0 ]; then
		printf '  ok   %-31s -> %s%s\n' "$req" "$res" "${warn:+ (kconfig: $warn)}"
	else
		bad_total=$((bad_total + 1))
		printf '  BAD  %-31s -> %s: %s\n' "$req" "$res" "$(IFS=,; echo "${bad[*]}")"
	fi
	class["KVM=$kvm RS=$rs"]+="$res"$'\n'
}

JOBS=${KCONFIG_MATRIX_JOBS:-$(nproc)}
step "matrix: KVM {y,m} x KVM_RS {y,m,n} x ${#VENDORS[@]} vendor shapes + 4 KVM_RS_AB_TEST=y = ${#combos[@]} olddefconfig runs (-j$JOBS)"
t0=$(date +%s)
rm -rf "$D/res" && mkdir -p "$D/res"
pids=()
for ((w = 0; w < JOBS; w++)); do
	(for ((i = w; i < ${#combos[@]}; i += JOBS)); do resolve $i || exit 1; done) &
	pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ $failed = 0 ] || die "olddefconfig failed (see above)"
for i in "${!combos[@]}"; do judge "$i"; done

# One line per (KVM, KVM_RS) class: the resolutions seen across vendors.
step "resolutions per requested (KVM, KVM_RS), vendor values left out"
for k in "KVM=y RS=y" "KVM=y RS=m" "KVM=y RS=n" "KVM=m RS=y" "KVM=m RS=m" "KVM=m RS=n"; do
	printf '  %-11s -> %s\n' "$k" "$(printf '%s' "${class[$k]}" | sed -E 's/ (INTEL|AMD|AB)=[ymn]//g' | sort -u | paste -sd'|')"
done
[ $bad_total -eq 0 ] || die "$bad_total of ${#combos[@]} combinations BAD (see above)"
ok "${#combos[@]} combinations consistent ($(($(date +%s) - t0)) s for the matrix)"
