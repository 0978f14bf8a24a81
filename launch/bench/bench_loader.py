#!/usr/bin/env python3
"""Loader throughput on one CPU thread: dist_train's loader (gather + crop + flip + normalise)
against the seed's torchvision pipeline (PIL Resize(40) + RandomHorizontalFlip + RandomCrop(32) +
ToTensor, DataLoader with 0 workers, the transform in peer_seed.py), batch 30 and 256, side by
side, alternating. With --write, puts the table into BENCHMARKS.md.

  .venv/bin/python launch/bench/bench_loader.py --data $CIFAR10_DIR [--reps 3] [--write]
"""
import argparse, datetime, json, os, re, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def torchvision_rate(data, batch, batches):
    sys.path.insert(0, os.path.join(ROOT, "..", "shared", "bench"))
    import torch, torchvision.transforms as T
    import peer_seed  # the seed's dataset class, read from the binary files
    torch.set_num_threads(1)
    tf = T.Compose([T.Resize(40), T.RandomHorizontalFlip(), T.RandomCrop(32), T.ToTensor()])
    ds = peer_seed.Cifar(data, True, tf)
    dl = iter(torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=0))
    for _ in range(3):
        next(dl)
    t = time.perf_counter()
    n = sum(next(dl)[0].shape[0] for _ in range(batches))
    return n / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("CIFAR10_DIR"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "launch", "bench_loader"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    rows = []
    for batch, batches in [(30, 400), (256, 60)]:
        ours, theirs = [], []
        for _ in range(a.reps):
            out = subprocess.run(["taskset", "-c", "1", a.binary, a.data, str(batch), str(batches)],
                                 capture_output=True, text=True, check=True).stdout
            ours.append(json.loads(out)["images_per_s"])
            theirs.append(torchvision_rate(a.data, batch, max(batches // 8, 5)))
        o, t = statistics.median(ours), statistics.median(theirs)
        rows.append(f"| {batch} | {o:,.0f} | {t:,.0f} | **{o / t:.0f}x** |")
        print(rows[-1], flush=True)
    table = "\n".join([
        f"Measured {datetime.date.today().isoformat()} on this 2-core machine, one thread each, "
        f"median of {a.reps}; command: `.venv/bin/python launch/bench/bench_loader.py --data $CIFAR10_DIR --write`.",
        "", "| batch | dist_train loader, images/s | torchvision pipeline (peer), images/s | ratio |",
        "|---:|---:|---:|---:|", *rows])
    print(table)
    if a.write:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from bench_report import write_section
        write_section("bench_loader", "Data loader", table)


if __name__ == "__main__":
    main()
