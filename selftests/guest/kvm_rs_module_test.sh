#!/bin/sh
# x86 guest test: kvm_rs.ko's metadata and its dependency with kvm.ko.
# Run after the init loaded kvm_rs, kvm and kvm_amd (any list line does).
fail() { echo "kvm_rs_module_test: $*"; exit 1; }
info=$(modinfo kvm_rs) || fail "modinfo kvm_rs failed"
echo "$info" | grep -q '^license: *GPL' || fail "no GPL license in modinfo"
echo "$info" | grep -q '^description: .*KVM' || fail "no description in modinfo"
echo "$info" | grep -q '^parm: *lockless_aging' || fail "no lockless_aging parameter in modinfo"
modinfo kvm | grep -q '^depends:.*kvm_rs' || fail "kvm.ko does not depend on kvm_rs"
lsmod | grep -q '^kvm ' || fail "kvm is not loaded"
# kvm uses kvm_rs's exports: unloading kvm_rs must be refused.
if rmmod kvm_rs 2>/tmp/rmmod.err; then
	fail "rmmod kvm_rs succeeded while kvm was loaded"
fi
echo "rmmod kvm_rs refused: $(cat /tmp/rmmod.err)"
lsmod | grep -q '^kvm_rs ' || fail "kvm_rs vanished"
echo "modinfo kvm_rs:"; echo "$info" | grep -E '^(license|description|parm|depends):'

# Without kvm_rs, kvm.ko does not load: the usual unknown-symbol error.
modprobe -r kvm_amd || fail "cannot unload kvm_amd"
modprobe -r kvm || fail "cannot unload kvm"
# (modprobe -r may already have removed the now unused kvm_rs.)
if lsmod | grep -q '^kvm_rs '; then
	rmmod kvm_rs || fail "cannot unload kvm_rs once kvm is gone"
fi
modprobe irqbypass
kvm_ko=$(find /lib/modules/"$(uname -r)" -name kvm.ko | head -1)
dmesg -c >/dev/null
if insmod "$kvm_ko" 2>/dev/null; then
	fail "kvm.ko loaded without kvm_rs"
fi
dmesg | grep -q 'kvm: Unknown symbol kvm_rs_' || fail "no unknown-symbol message for kvm_rs_*"
echo "insmod kvm.ko without kvm_rs: $(dmesg | grep -m1 'Unknown symbol kvm_rs_')"
# Leave the modules as the init expects them (default parameters).
modprobe kvm_amd || fail "cannot reload kvm_amd"
lsmod | grep -q '^kvm_rs ' || fail "modprobe did not pull in kvm_rs"
