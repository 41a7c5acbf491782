#!/usr/bin/env python3
"""Drop KCSAN reports of known, unrelated races from a guest log.

Usage: kcsan_filter.py <log> <known-list>  (filtered log on stdout)

A KCSAN report is the block between two '=====' lines that contains
'BUG: KCSAN: '. Its title names the two racing functions
('data-race in f / g'), or one ('data-race in f+0x../0x..', a race at
unknown origin). A report is known if the known list has that pair (either
order) or that single function, and no line of the report names code the
kvm-rs series changes (the patterns in SERIES below): then its lines are dropped, and
the runner's splat check never sees them. Every other report stays, so
it fails the run. A summary goes to stderr."""
import re
import sys

SERIES = re.compile(r"kvm_rs|rmap|pte_list|age_gfn|tdp_mmu_age|lockless|"
                    r"kvm_handle_hva_range|zap_all_rmap|kvm_rs_")
TS = re.compile(r"^\[ *\d+\.\d+\] ?")


def main():
    log, known_path = sys.argv[1], sys.argv[2]
    known = set()
    for line in open(known_path):
        line = line.split("#", 1)[0].split()
        if len(line) in (1, 2):
            known.add(frozenset(line))
    lines = open(log, errors="replace").read().splitlines()
    out, block, inblock = [], [], False
    nknown, unknown = 0, []

    def flush():
        nonlocal nknown
        text = "\n".join(TS.sub("", l) for l in block)
        m = re.search(r"BUG: KCSAN: [\w-]+ in ([\w.]+)(?:\+\S+)?(?: \[\w+\])?(?: / ([\w.]+))?", text)
        names = frozenset(g for g in (m.group(1), m.group(2)) if g) if m else None
        # Only the stack frames count (a task may be named "rmap_...").
        frames = "\n".join(l for l in text.splitlines() if re.match(r"\s+\S+\+0x", l))
        if names and names in known and not SERIES.search(frames):
            nknown += 1
            return
        if "BUG: KCSAN" in text:
            unknown.append(re.search(r"BUG: KCSAN: .*", text).group(0))
        out.extend(block)

    for l in lines:
        body = TS.sub("", l)
        if body.startswith("=" * 20):
            if inblock:
                block.append(l)
                flush()
                block, inblock = [], False
                continue
            inblock = True
            block = [l]
            continue
        if inblock:
            block.append(l)
        else:
            out.append(l)
    out.extend(block)
    print("\n".join(out))
    print(f"kcsan: {nknown} known report(s) dropped, {len(unknown)} other(s)", file=sys.stderr)
    for u in unknown:
        print(f"kcsan: unknown: {u}", file=sys.stderr)


main()
