#!/usr/bin/env bash
# Build the patched 6.12 kernel with kvm-rs, cached outside the git tree.
#
#   kernel.sh build     source + config + image + modules + headers (cached)
#   kernel.sh module    rebuild after a kvm-rs-only change (same as build)
#   kernel.sh source    only the patched source tree with kvm-rs's files
#   kernel.sh print-dir print the build directory for $ARCH/$DEBUG
#
# Layout under $KVMRS_CACHE (default ~/.cache/kvm-rs):
#   linux/                git repo: tag v6.12.117 = the Debian tarball; branch
#                         kvmrs-<hash> = that plus patches/ applied by `git am`.
#                         kvm-rs sources are copied into virt/kvm/rs/ (ignored).
#   build-<arch>[-debug]/ O= build dir, keyed (.kvmrs-key) by kernel version,
#                         patch hash, config fragments and toolchain versions.
# KVMRS_KSRC=<tree> uses an existing (already patched) kernel tree instead.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

ARCH=${ARCH:-x86_64}
DEBUG=${DEBUG:-0}
case $ARCH in
x86_64) KARCH=x86_64 IMAGE=arch/x86/boot/bzImage ;;
arm64 | aarch64) ARCH=arm64 KARCH=arm64 IMAGE=arch/arm64/boot/Image ;;
*) die "unknown ARCH=$ARCH (x86_64 or arm64)" ;;
esac
suffix=$ARCH
case $DEBUG in
0) ;;
1) suffix=$ARCH-debug ;;
kcsan) suffix=$ARCH-kcsan ;;
*) die "unknown DEBUG=$DEBUG (0, 1 = KASAN + lockdep + PREEMPT, kcsan = KCSAN)" ;;
esac
O=${KVMRS_BUILD:-$KVMRS_CACHE/build-$suffix}
KSRC=${KVMRS_KSRC:-$KVMRS_CACHE/linux}
JOBS=${JOBS:-$(($(nproc) + 1))}
KMAKE=(make -C "$KSRC" O="$O" ARCH="$KARCH" LLVM=1 RUSTC="$KRUSTC"
	BINDGEN="$BINDGEN" RUST_LIB_SRC="$RUST_LIB_SRC")

[ "${1:-}" = print-dir ] && { echo "$O"; exit 0; }

hash_files() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

patch_list() { ls "$KVMRS_ROOT"/patches/[0-9][0-9][0-9][0-9]-*.patch 2>/dev/null | grep -v '/0000-' || true; }

toolchain_id() {
	{ "$KRUSTC" --version; "$BINDGEN" --version; clang --version | head -1; ld.lld --version; } 2>&1 | sha256sum | cut -c1-16
}

# --- 1. the source tree -------------------------------------------------
prepare_source() {
	if [ -n "${KVMRS_KSRC:-}" ]; then
		[ -f "$KSRC/Makefile" ] || die "KVMRS_KSRC=$KSRC is not a kernel tree"
		step "using existing kernel tree $KSRC (patches/ not applied)"
		return
	fi
	if [ ! -d "$KSRC/.git" ]; then
		[ -f "$KSRC_TARBALL" ] || die "$KSRC_TARBALL missing: install Debian package 'linux-source-6.12' (make deps)"
		step "unpacking $KSRC_TARBALL"
		rm -rf "$KSRC" "$KVMRS_CACHE/linux-source-6.12"
		mkdir -p "$KVMRS_CACHE"
		tar -C "$KVMRS_CACHE" -xJf "$KSRC_TARBALL"
		mv "$KVMRS_CACHE/linux-source-6.12" "$KSRC"
		step "recording the pristine tree as git tag v$KVER"
		(cd "$KSRC" && git init -q && git add -f -A . >/dev/null &&
			git -c user.name=kvm-rs -c user.email=kvm-rs@example.org commit -q -m "Linux $KVER (Debian linux-source-6.12)" &&
			git tag "v$KVER")
	fi
	cd "$KSRC"
	grep -qx 'virt/kvm/rs/' .git/info/exclude 2>/dev/null || echo 'virt/kvm/rs/' >>.git/info/exclude
	local phash branch
	mapfile -t patches < <(patch_list)
	phash=$(hash_files "${patches[@]}")
	branch=kvmrs-$phash
	if [ -n "$(git status --porcelain --untracked-files=no -- . ':!virt/kvm/rs')" ]; then
		die "$KSRC has local changes; commit or stash them (or use KVMRS_KSRC for your own tree)"
	fi
	if git rev-parse -q --verify "refs/heads/$branch" >/dev/null; then
		[ "$(git symbolic-ref -q --short HEAD)" = "$branch" ] || git checkout -q -f "$branch"
		ok "source: $branch (${#patches[@]} patches, cached)"
	else
		# Apply the series in a scratch worktree, then switch this tree to
		# the result: the switch rewrites only the files that differ from
		# the current checkout, so the O= build stays incremental (a patch
		# to tools/ alone rebuilds nothing in the kernel).
		step "applying ${#patches[@]} patches with git am -> branch $branch"
		local wt=$KVMRS_CACHE/am-scratch
		git worktree remove -f "$wt" 2>/dev/null || rm -rf "$wt"
		git worktree prune
		git worktree add -q --detach "$wt" "v$KVER"
		if [ ${#patches[@]} -gt 0 ] && ! git -C "$wt" -c user.name=kvm-rs -c user.email=kvm-rs@example.org am -q "${patches[@]}"; then
			git -C "$wt" am --abort 2>/dev/null || true
			git worktree remove -f "$wt"
			die "a patch in patches/ does not apply to $KVER (see the git am output above)"
		fi
		git branch -f "$branch" "$(git -C "$wt" rev-parse HEAD)"
		git worktree remove -f "$wt"
		git checkout -q -f "$branch"
		ok "source: $branch"
	fi
	cd - >/dev/null
}

# --- 2. kvm-rs sources into virt/kvm/rs/ (copied, only changed files) ---
sync_kvmrs() {
	local dst=$KSRC/virt/kvm/rs f n=0
	mkdir -p "$dst"
	while IFS= read -r f; do
		mkdir -p "$dst/$(dirname "$f")"
		if ! cmp -s "$KVMRS_ROOT/$f" "$dst/$f"; then
			cp "$KVMRS_ROOT/$f" "$dst/$f"
			n=$((n + 1))
		fi
	done < <(cd "$KVMRS_ROOT" && { echo Kconfig; echo Kbuild; find rust c include -type f \( -name '*.rs' -o -name '*.c' -o -name '*.h' \) -not -path 'rust/host/*'; })
	# Drop files that were removed from the repository.
	(cd "$dst" && find . -type f \( -name '*.rs' -o -name '*.c' -o -name '*.h' \) | sed 's|^\./||') | while IFS= read -r f; do
		[ -e "$KVMRS_ROOT/$f" ] || rm -f "$dst/$f"
	done
	ok "kvm-rs sources in virt/kvm/rs/ ($n changed)"
}

srcs_id() {
	(cd "$KVMRS_ROOT" && cat Kconfig Kbuild $(find rust c include -type f -not -path 'rust/host/*' | sort)) | sha256sum | cut -c1-16
}

# --- 3. config -----------------------------------------------------------
frags() {
	echo "$KVMRS_ROOT/configs/common.config"
	echo "$KVMRS_ROOT/configs/$ARCH.config"
	[ "$DEBUG" = 1 ] && echo "$KVMRS_ROOT/configs/debug.config"
	[ "$DEBUG" = kcsan ] && echo "$KVMRS_ROOT/configs/kcsan.config"
	return 0
}

configure() {
	local key have=
	mapfile -t fr < <(frags)
	key="$KVER $(hash_files "${fr[@]}") $(toolchain_id)"
	[ -f "$O/.kvmrs-config-key" ] && have=$(cat "$O/.kvmrs-config-key")
	if [ "$have" = "$key" ] && [ -f "$O/.config" ]; then
		ok "config unchanged ($O)"
		return
	fi
	if [ -n "$have" ] && [ "${have##* }" != "${key##* }" ]; then
		step "toolchain changed: cleaning $O"
		rm -rf "$O"
	fi
	mkdir -p "$O"
	step "config: tinyconfig + ${fr[*]##*/}"
	"${KMAKE[@]}" -s tinyconfig >/dev/null
	KCONFIG_CONFIG="$O/.config" "$KSRC/scripts/kconfig/merge_config.sh" -m -O "$O" "$O/.config" "${fr[@]}" >"$O/.kvmrs-merge.log" 2>&1
	"${KMAKE[@]}" -s olddefconfig >/dev/null
	# Every option of the fragments (the last fragment wins) must have
	# survived olddefconfig.
	local bad=() line opt
	declare -A want=()
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*) want[${line%%=*}]=$line ;;
		"# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}; want[$opt]="# $opt is not set" ;;
		esac
	done < <(cat "${fr[@]}")
	for opt in "${!want[@]}"; do
		line=${want[$opt]}
		case $line in
		"#"*) grep -q "^$opt=" "$O/.config" && bad+=("$opt should be unset") ;;
		*) grep -qx "$line" "$O/.config" || bad+=("$line (got: $(grep -E "^$opt=|^# $opt is not set" "$O/.config" || echo unset))") ;;
		esac
	done
	if [ ${#bad[@]} -gt 0 ]; then
		printf '  %s\n' "${bad[@]}" >&2
		[ -f "$O/.config" ] && "${KMAKE[@]}" -s rustavailable >&2 || true
		rm -f "$O/.kvmrs-config-key"
		die "config options did not take effect (missing dependency?)"
	fi
	echo "$key" >"$O/.kvmrs-config-key"
	ok "config written"
}

# --- 4. build --------------------------------------------------------------
run_make() { # label, make args...
	local label=$1 log=$O/.kvmrs-make.log pid t0 rc
	shift
	t0=$(date +%s)
	"${KMAKE[@]}" -j"$JOBS" "$@" >"$log" 2>&1 &
	pid=$!
	local next=$((t0 + 60))
	while kill -0 $pid 2>/dev/null; do
		sleep 5
		if [ "$(date +%s)" -ge $next ]; then
			next=$((next + 60))
			step "$label: still building ($(($(date +%s) - t0)) s; last: $(grep -E '^\s+(CC|RUSTC|LD|AR)' "$log" | tail -1 | awk '{print $NF}'))"
		fi
	done
	wait $pid && rc=0 || rc=$?
	if [ $rc != 0 ]; then
		grep -nE 'error|Error|ERROR' "$log" | head -40 >&2 || true
		tail -30 "$log" >&2
		die "$label failed (full log: $log)"
	fi
	grep -E 'warning:' "$log" | grep -E 'virt/kvm/rs|kvm_rs' | head -20 >&2 || true
	ok "$label ($(($(date +%s) - t0)) s)"
}

build() {
	local lock=$KVMRS_CACHE/.build.lock
	mkdir -p "$KVMRS_CACHE"
	exec 9>"$lock"
	flock -w 3600 9 || die "another kernel build holds $lock"
	prepare_source
	sync_kvmrs
	configure
	local want have=
	want="$(cd "$KSRC" && git rev-parse HEAD 2>/dev/null || echo ext) $(cat "$O/.kvmrs-config-key") $(srcs_id)"
	[ -f "$O/.kvmrs-built" ] && have=$(cat "$O/.kvmrs-built")
	if [ "$have" = "$want" ] && [ -f "$O/$IMAGE" ]; then
		ok "kernel $ARCH$([ "$DEBUG" != 0 ] && echo " (DEBUG=$DEBUG)") up to date (cache: $O)"
		return
	fi
	rm -f "$O/.kvmrs-built"
	step "building $(basename $IMAGE) + modules for $ARCH (-j$JOBS; ~11 min from scratch on 2 cores)"
	run_make "kernel build" "$(basename $IMAGE)" modules
	rm -rf "$O/modroot"
	run_make "modules_install" INSTALL_MOD_PATH="$O/modroot" INSTALL_MOD_STRIP=1 modules_install
	run_make "headers_install" headers_install
	echo "$want" >"$O/.kvmrs-built"
	ok "kernel ready: $O/$IMAGE"
}

# The patched source tree with kvm-rs's files, no build (Kconfig checks).
# Same lock as build(): prepare_source may switch branches of $KSRC. A
# caller that holds the lock itself for longer (kconfig-matrix.sh, while
# it reads the tree) sets KVMRS_BUILD_LOCK_HELD=1.
source_only() {
	mkdir -p "$KVMRS_CACHE"
	if [ "${KVMRS_BUILD_LOCK_HELD:-0}" != 1 ]; then
		exec 9>"$KVMRS_CACHE/.build.lock"
		flock -w 3600 9 || die "another kernel build holds $KVMRS_CACHE/.build.lock"
	fi
	prepare_source
	sync_kvmrs
}

case ${1:-build} in
build | module) build ;;
source) source_only ;;
*) die "usage: kernel.sh build|module|source|print-dir" ;;
esac
