"""Compares the model tensors of two dist_train checkpoints.
Usage: compare_checkpoints.py A.pt B.pt [--rtol R]
Without --rtol every tensor must be bit-identical; with it, max|a-b| <= R * max|b| per tensor.
Prints the worst tensor and exits 1 on a difference (2 on bad input)."""
import argparse
import sys

import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--rtol", type=float)
    args = p.parse_args()
    try:
        a = torch.load(args.a, map_location="cpu")["model"]
        b = torch.load(args.b, map_location="cpu")["model"]
    except Exception as e:  # a missing or unreadable file is bad input, one line
        print(f"compare_checkpoints: {e}", file=sys.stderr)
        return 2
    if a.keys() != b.keys():
        print(f"compare_checkpoints: different tensors: {sorted(a.keys() ^ b.keys())}")
        return 1
    worst, worst_name = 0.0, None
    for name in a:
        x, y = a[name], b[name]
        if x.shape != y.shape or x.dtype != y.dtype:
            print(f"compare_checkpoints: {name}: {x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}")
            return 1
        if args.rtol is None:
            if not torch.equal(x, y):
                print(f"compare_checkpoints: {name} is not bit-identical")
                return 1
            continue
        if not x.is_floating_point():
            x, y = x.double(), y.double()
        scale = y.abs().max().item() or 1.0
        rel = (x - y).abs().max().item() / scale
        if rel > worst:
            worst, worst_name = rel, name
    if args.rtol is not None and worst > args.rtol:
        print(f"compare_checkpoints: {worst_name} differs by {worst:.3g} relative (> {args.rtol})")
        return 1
    what = "bit-identical" if args.rtol is None else f"within {args.rtol} (worst {worst:.3g})"
    print(f"compare_checkpoints: {len(a)} tensors {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
