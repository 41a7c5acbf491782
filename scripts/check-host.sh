#!/usr/bin/env bash
# Host-side tests (no VM): the Rust core's unit/property/loom tests, the
# kernel-toolchain compile check (run by the Makefile before this), rustfmt,
# FFI header consistency, the patch series' form (checkpatch --strict) and
# the scripts' syntax. Ends with "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cd "$KVMRS_ROOT"
pass=0 fail=0 failed=()
check() { # name, command...
	local name=$1 t0 rc
	shift
	t0=$(date +%s)
	step "check: $name"
	"$@"
	rc=$?
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); echo "ok - $name ($(($(date +%s) - t0)) s)"
	else
		fail=$((fail + 1)); failed+=("$name"); echo "not ok - $name (exit $rc)"
	fi
}

HOST=rust/host
JOBS=${CARGO_JOBS:-2}
cargo_tests() { (cd $HOST && cargo test -q -j"$JOBS" --lib --tests 2>&1 | grep -vE '^\s*$|running 0 tests|^test result: ok. 0 passed'; exit "${PIPESTATUS[0]}"); }
loom_tests() {
	local t tests=()
	for t in $HOST/tests/loom_*.rs; do [ -e "$t" ] && tests+=(--test "$(basename "$t" .rs)"); done
	[ ${#tests[@]} -gt 0 ] || { echo "no loom models in $HOST/tests/loom_*.rs"; return 1; }
	(cd $HOST && RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3} \
		cargo test -q -j"$JOBS" --release "${tests[@]}" 2>&1 | grep -vE '^\s*$')
	return "${PIPESTATUS[0]}"
}
rustfmt_check() {
	rustfmt --check --config-path .rustfmt.toml --edition 2021 rust/*.rs rust/core/*.rs \
		$(ls $HOST/src/*.rs $HOST/tests/*.rs $HOST/benches/*.rs 2>/dev/null)
}
kconfig_in_patch() {
	# The wiring patch adds virt/kvm/rs/Kconfig: it must equal ./Kconfig.
	python3 - "$KVMRS_ROOT" <<'PY'
import re, sys, glob
root = sys.argv[1]
p = sorted(glob.glob(root + "/patches/0001-*.patch"))[0]
txt = open(p).read()
m = re.search(r"\+\+\+ b/virt/kvm/rs/Kconfig\n@@[^\n]*\n((?:\+[^\n]*\n)+)", txt)
if not m:
    sys.exit("patch 0001 does not add virt/kvm/rs/Kconfig")
inpatch = "".join(l[1:] + "\n" for l in m.group(1).splitlines())
if inpatch != open(root + "/Kconfig").read():
    sys.exit("Kconfig differs from virt/kvm/rs/Kconfig in " + p.split("/")[-1] + ": regenerate the patch")
print("Kconfig == virt/kvm/rs/Kconfig of", p.split("/")[-1])
PY
}
checkpatch() {
	local cp=$KVMRS_CACHE/checkpatch
	if [ ! -x "$cp/scripts/checkpatch.pl" ]; then
		[ -f "$KSRC_TARBALL" ] || { echo "$KSRC_TARBALL missing: install Debian package 'linux-source-6.12'"; return 1; }
		mkdir -p "$cp"
		tar -C "$cp" --strip-components=1 -xJf "$KSRC_TARBALL" linux-source-6.12/scripts/checkpatch.pl \
			linux-source-6.12/scripts/spelling.txt linux-source-6.12/scripts/const_structs.checkpatch || return 1
	fi
	local p rc=0
	for p in patches/[0-9]*.patch; do
		case $p in */0000-*) continue ;; esac
		# Run from outside this git repository: checkpatch.pl reads a
		# ".git" in its working directory and then misparses patch files.
		out=$(cd "$cp" && perl scripts/checkpatch.pl --strict --no-tree "$KVMRS_ROOT/$p" 2>&1) || { echo "$out"; rc=1; }
		echo "$(basename "$p"): $(echo "$out" | grep -m1 "^total:")"
	done
	return $rc
}
shell_syntax() { local f; for f in scripts/*.sh .ci/run; do bash -n "$f" || return 1; done; }
# Documentation/*.rst must parse without a docutils warning (malformed
# tables, short title lines). Debian's python3-docutils, hence the Debian
# interpreter (another python3 may come first in PATH).
rst_check() {
	/usr/bin/python3 - Documentation/*.rst <<'PY'
import sys
import docutils.core
import docutils.utils
bad = 0
for path in sys.argv[1:]:
    try:
        docutils.core.publish_doctree(open(path).read(), source_path=path, settings_overrides={
            "report_level": docutils.utils.Reporter.SEVERE_LEVEL + 1,
            "halt_level": docutils.utils.Reporter.WARNING_LEVEL})
    except docutils.utils.SystemMessage as e:
        print(e)
        bad = 1
sys.exit(bad)
PY
}

check "cargo test (unit, proptest, exhaustive)" cargo_tests
check "loom models" loom_tests
check "rustfmt" rustfmt_check
check "FFI: include/ == Rust" python3 scripts/check_ffi.py
check "Kconfig == patch 0001" kconfig_in_patch
check "Kconfig matrix (KVM y/m x KVM_RS x vendor modules)" bash scripts/kconfig-matrix.sh
check "checkpatch --strict" checkpatch
check "shell syntax" shell_syntax
check "Documentation/*.rst parse cleanly" rst_check
[ $fail -gt 0 ] && printf 'failed: %s\n' "${failed[@]}"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
