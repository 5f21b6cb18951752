#!/usr/bin/env python3
"""Side-by-side table of two criterion runs, e.g. a Pi against an x86 PC.

    scripts/bench-compare.py DIR_A DIR_B [--out FILE.md]

DIR_A and DIR_B are criterion output trees (target/criterion/ copied from each
machine). Every <bench>/new/estimates.json found under both is one row: the
mean with its 95 % confidence interval on each side and the ratio B/A of the
means (above 1: B is slower). Benches present on one side only are listed
after the table. Prints the markdown table; --out also writes it to a file.
"""
import argparse
import json
import pathlib
import sys


def estimates(root):
    """Maps bench id (path under root, e.g. records/seal/30) to (mean, lo, hi) in ns."""
    found = {}
    for path in sorted(pathlib.Path(root).rglob("new/estimates.json")):
        bench = path.parent.parent.relative_to(root).as_posix()
        try:
            mean = json.loads(path.read_text())["mean"]
            ci = mean["confidence_interval"]
            found[bench] = (
                float(mean["point_estimate"]),
                float(ci["lower_bound"]),
                float(ci["upper_bound"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"skipping {path}: {e}", file=sys.stderr)
    return found


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def cell(est):
    mean, lo, hi = est
    return f"{fmt_time(mean)} ({fmt_time(lo)} – {fmt_time(hi)})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir_a")
    ap.add_argument("dir_b")
    ap.add_argument("--out", help="also write the markdown table here")
    args = ap.parse_args()
    for d in (args.dir_a, args.dir_b):
        if not pathlib.Path(d).is_dir():
            sys.exit(f"bench-compare: {d} is not a directory")
    a, b = estimates(args.dir_a), estimates(args.dir_b)
    both = sorted(set(a) & set(b))
    if not both:
        sys.exit("bench-compare: no bench has new/estimates.json in both trees")
    lines = [
        f"| bench | A: {args.dir_a} mean (95 % CI) | B: {args.dir_b} mean (95 % CI) | B/A |",
        "|---|---|---|---|",
    ]
    for bench in both:
        ratio = b[bench][0] / a[bench][0] if a[bench][0] > 0 else float("nan")
        lines.append(f"| {bench} | {cell(a[bench])} | {cell(b[bench])} | {ratio:.2f} |")
    for side, only in (("A", set(a) - set(b)), ("B", set(b) - set(a))):
        if only:
            lines.append("")
            lines.append(f"Only in {side}: " + ", ".join(sorted(only)))
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.out:
        pathlib.Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
