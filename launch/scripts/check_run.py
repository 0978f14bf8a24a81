#!/usr/bin/env python3
"""Checks on what dist_train runs left behind, for launch/scripts/gpu_multirank.sh (and usable by
hand). Each prints one line per check and exits non-zero when it fails.

  check_run.py same-weights RTOL A.pt B.pt [C.pt ...]  every checkpoint's model equals A's to RTOL
  check_run.py identical A.pt B.pt                      model and optimizer state equal to the bit
  check_run.py trace-overlap TRACE.json                 some gradient bucket's all-reduce started
                                                        before its step's backward ended
"""
import json
import sys

import torch


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def tensors(tree, prefix=""):
    """Every tensor in a nested dict/list, by its path."""
    if isinstance(tree, torch.Tensor):
        yield prefix, tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            yield from tensors(value, f"{prefix}[{i}]")


def same_weights(rtol, first, *others):
    reference = dict(tensors(load(first)["model"]))
    worst = 0.0
    for path in others:
        got = dict(tensors(load(path)["model"]))
        if got.keys() != reference.keys():
            sys.exit(f"FAIL {path}: other tensor names than {first}")
        for name, ref in reference.items():
            if not ref.is_floating_point():
                continue
            ref64, got64 = ref.double(), got[name].double()
            err = ((got64 - ref64).norm() / ref64.norm().clamp_min(1e-300)).item()
            worst = max(worst, err)
            if not err <= rtol:
                sys.exit(f"FAIL {path}: {name} differs from {first} by {err:.3g} (relative), over {rtol:g}")
    print(f"PASS {len(others) + 1} checkpoints, largest relative difference {worst:.3g} (<= {rtol:g})")


def identical(a, b):
    left, right = load(a), load(b)
    for part in ("model", "optimizer"):
        l, r = dict(tensors(left.get(part, {}))), dict(tensors(right.get(part, {})))
        if l.keys() != r.keys():
            sys.exit(f"FAIL {part}: other tensors in {a} and {b}")
        for name, t in l.items():
            if not torch.equal(t, r[name]):
                sys.exit(f"FAIL {part}.{name} differs between {a} and {b}")
    print(f"PASS {a} and {b}: model and optimizer state bit-identical")


def trace_overlap(path):
    events = [e for e in json.load(open(path))["traceEvents"] if e.get("ph") == "X"]
    backward_end = {}
    for e in events:
        if e["name"] == "backward":
            key = (e["pid"], e["args"]["step"])
            backward_end[key] = max(backward_end.get(key, 0.0), e["ts"] + e["dur"])
    early = [e for e in events if e.get("cat") == "buckets" and
             e["ts"] < backward_end.get((e["pid"], e["args"]["step"]), float("-inf"))]
    buckets = sum(e.get("cat") == "buckets" for e in events)
    if not early:
        sys.exit(f"FAIL {path}: none of {buckets} bucket all-reduces started before its step's backward ended")
    print(f"PASS {len(early)} of {buckets} bucket all-reduces started before their step's backward ended")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    command, args = sys.argv[1], sys.argv[2:]
    if command == "same-weights" and len(args) >= 3:
        same_weights(float(args[0]), *args[1:])
    elif command == "identical" and len(args) == 2:
        identical(*args)
    elif command == "trace-overlap" and len(args) == 1:
        trace_overlap(args[0])
    else:
        sys.exit(__doc__)
