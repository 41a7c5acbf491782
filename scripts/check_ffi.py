#!/usr/bin/env python3
"""Keep include/*.h (the one description of kvm-rs's FFI) equal to the Rust
side: every `#[no_mangle] extern "C" fn` / `#[no_mangle] static` in the
kernel glue (rust/*.rs) must be declared in a header with matching types,
and every kvm_rs_* function or variable a header declares must exist in Rust.
Constants named in both (`#define KVM_RS_X n` / `pub const KVM_RS_X: T = n`)
must be equal. Exit 1 with a list of differences."""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Rust type -> C type (normalised: no spaces around '*').
SCALARS = {
    "u8": "u8", "u16": "u16", "u32": "u32", "u64": "u64",
    "i8": "s8", "i16": "s16", "i32": "s32", "i64": "s64",
    "usize": "unsigned long", "isize": "long", "bool": "bool",
    "c_int": "int", "c_uint": "unsigned int", "c_long": "long",
    "c_ulong": "unsigned long", "c_char": "char", "c_void": "void",
    "AtomicU32": "unsigned int", "AtomicU64": "u64", "AtomicUsize": "unsigned long",
    "AtomicBool": "bool", "()": "void",
}
C_ALIASES = {"unsigned": "unsigned int", "uint32_t": "u32", "uint64_t": "u64",
             "int32_t": "s32", "__u32": "u32", "__u64": "u64"}


def c_norm(t):
    t = re.sub(r"\bconst\b", "const", t.strip())
    t = re.sub(r"\s*\*\s*", "*", t)
    t = re.sub(r"\s+", " ", t).strip()
    base = t.rstrip("*")
    stars = t[len(base):]
    base = C_ALIASES.get(base.strip(), base.strip())
    if re.fullmatch(r"kvm_rs_\w+_fn", base):
        base = "fnptr"  # function-pointer typedefs
    return base + stars


def rust_to_c(t):
    t = t.strip()
    stars = ""
    while True:
        m = re.match(r"\*(mut|const)\s+(.*)", t)
        if not m:
            break
        stars += "*"
        if m.group(1) == "const":
            t = "const " + m.group(2)
        else:
            t = m.group(2)
    const = ""
    if t.startswith("const "):
        const, t = "const ", t[6:]
    t = t.split("::")[-1].strip()
    if t.startswith("Option<") and "extern" in t:
        return "fnptr" + stars
    snake = re.sub(r"(?<!^)([A-Z])", r"_\1", t).lower()
    base = SCALARS.get(t, "struct " + snake if t[:1].isupper() else t)
    return c_norm(const + base + stars)


def parse_c():
    funcs, vars_, consts = {}, {}, {}
    for h in sorted(glob.glob(os.path.join(ROOT, "include", "*.h"))):
        src = open(h).read()
        src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
        src = re.sub(r"//[^\n]*", "", src)
        for m in re.finditer(r"#define\s+(KVM_RS_\w+)\s+\(?(-?\w+)U?L?L?\)?\s*$", src, re.M):
            consts[m.group(1)] = m.group(2)
        body = "\n".join(l for l in src.split("\n") if not l.lstrip().startswith("#"))
        for stmt in re.split(r"[;{}]", re.sub(r"\s+", " ", body)):
            m = re.match(r"^\s*(extern\s+)?(.+?)\b(kvm_rs_\w+)\s*(?:\((.*)\))?\s*$", stmt)
            if not m:
                continue
            ext, ret, name, args = m.groups()
            if args is None:
                if ext:
                    vars_[name] = c_norm(ret)
                continue
            al = []
            for a in args.split(","):
                a = a.strip()
                if a in ("", "void"):
                    continue
                am = re.match(r"^(.*?[\s\*])(\w+)$", a)
                if not am:
                    raise SystemExit(f"include/{os.path.basename(h)}: {name}: name every parameter ('{a}')")
                al.append(c_norm(am.group(1)))
            funcs[name] = (c_norm(ret), al, os.path.basename(h))
    return funcs, vars_, consts


def parse_rust():
    funcs, vars_, consts = {}, {}, {}
    files = sorted(glob.glob(os.path.join(ROOT, "rust", "*.rs")) + glob.glob(os.path.join(ROOT, "rust", "ffi", "*.rs")))
    for f in files:
        src = open(f).read()
        src = re.sub(r"//[^\n]*", "", src)
        for m in re.finditer(r"#\[no_mangle\]\s*pub\s+(?:unsafe\s+)?extern\s+\"C\"\s+fn\s+(\w+)\s*\(", src):
            name, i, depth = m.group(1), m.end(), 1
            while depth:
                depth += {"(": 1, ")": -1}.get(src[i], 0)
                i += 1
            args = src[m.end():i - 1]
            rm = re.match(r"\s*(?:->\s*([^{]+?))?\s*\{", src[i:])
            ret = (rm.group(1) if rm and rm.group(1) else "()")
            # Split on top-level commas only (fn-pointer types have their own).
            al, depth, cur = [], 0, ""
            for ch in args:
                depth += ch in "(<"
                depth -= ch in ")>"
                if ch == "," and depth == 0:
                    al.append(cur.strip())
                    cur = ""
                else:
                    cur += ch
            if cur.strip():
                al.append(cur.strip())
            funcs[name] = (rust_to_c(ret), [rust_to_c(a.split(":", 1)[1]) for a in al], os.path.basename(f))
        for m in re.finditer(r"#\[no_mangle\]\s*pub\s+static\s+(?:mut\s+)?(\w+)\s*:\s*([^=]+?)\s*=", src):
            vars_[m.group(1)] = rust_to_c(m.group(2))
        for m in re.finditer(r"pub\s+const\s+(KVM_RS_\w+)\s*:\s*\w+\s*=\s*(-?\w+)\s*;", src):
            consts[m.group(1)] = m.group(2)
    return funcs, vars_, consts


def c_implemented():
    """kvm_rs_* functions defined (not just declared) in c/*.c."""
    names = set()
    for f in glob.glob(os.path.join(ROOT, "c", "*.c")):
        names |= set(re.findall(r"^[\w][\w \*]*\b(kvm_rs_\w+)\([^;{]*\)\s*\{", open(f).read(), re.M))
    return names


def main():
    cf, cv, cc = parse_c()
    rf, rv, rc = parse_rust()
    impl_c = c_implemented()
    for n in impl_c & set(cf):
        # Implemented by the C half; Rust may only call it (extern block).
        del cf[n]
    errs = []
    for n in sorted(set(cf) | set(rf)):
        if n not in rf:
            errs.append(f"{n}: declared in include/{cf[n][2]} but no #[no_mangle] extern \"C\" fn in rust/")
        elif n not in cf:
            errs.append(f"{n}: exported by rust/{rf[n][2]} but not declared in include/")
        elif cf[n][:2] != rf[n][:2]:
            errs.append(f"{n}: C {cf[n][0]}({', '.join(cf[n][1])}) != Rust {rf[n][0]}({', '.join(rf[n][1])})")
    for n in sorted(set(cv) | set(rv)):
        if cv.get(n) != rv.get(n):
            errs.append(f"{n}: variable C {cv.get(n)} != Rust {rv.get(n)}")
    for n in sorted(set(cc) & set(rc)):
        if int(cc[n], 0) != int(rc[n], 0):
            errs.append(f"{n}: constant C {cc[n]} != Rust {rc[n]}")
    if not cf and not rf:
        errs.append("no FFI functions found at all: the parser is broken")
    for e in errs:
        print("ffi mismatch:", e)
    print(f"ffi: {len(cf)} functions, {len(cv)} variables, {len(set(cc) & set(rc))} constants compared")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
