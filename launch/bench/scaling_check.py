#!/usr/bin/env python3
"""Checks the scaling model (launch/bench/scaling_model.py) against this machine: calibrates it,
predicts the 2- and 4-rank CPU runs, then measures them.

  1. alpha and beta of this machine's MPI transport: build/launch/bench_collectives at 2 ranks,
     4 ranks, and 4 ranks in groups of 2;
  2. the step profiles (--trace): the one-rank run with per-rank BatchNorm and with
     SyncBatchNorm's code path (a world of one under mpirun: its collectives are local), each
     also as N uncoupled copies at once, placed on the cores as mpirun places N ranks, so that
     compute is measured with the machine shared as the N-rank run shares it (a CPU artefact:
     on GPUs every rank has its own device);
  3. the predictions, written before:
  4. the measured runs: --no-sync-bn and SyncBN at 2 and 4 ranks, --sync-bn-group 2 at 4 ranks.

Fails (exit 1) when a prediction is more than --tolerance (15%) off. Prints the table; --write
puts it into BENCHMARKS.md between markers.

  .venv/bin/python launch/bench/scaling_check.py --data $CIFAR10_DIR [--steps 100] [--write]
"""
import argparse, datetime, json, os, platform, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import scaling_model as sm  # noqa: E402

MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
CASES = [  # (label, ranks, dist_train flags, SyncBN group: 0 off, else ranks per group)
    ("--no-sync-bn", 2, ["--no-sync-bn"], 0),
    ("SyncBN (world)", 2, ["--sync-bn"], 2),
    ("--no-sync-bn", 4, ["--no-sync-bn"], 0),
    ("SyncBN (world)", 4, ["--sync-bn"], 4),
    ("--sync-bn-group 2", 4, ["--sync-bn-group", "2"], 2),
]


def mpirun(ranks, cores):
    bind = "core" if ranks <= cores else "core:overload-allowed"
    return ["mpirun", "--oversubscribe", "-np", str(ranks), "--bind-to", bind, "--mca", "btl", "self,vader"]


def check(procs, what):
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"scaling_check: {what} failed ({p.returncode}):\n{out[-2000:]}\n{err[-2000:]}")


def start(cmd):
    return subprocess.Popen(cmd, env=dict(os.environ, **MPI_ENV), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def train_args(a, out_dir, extra):
    return [a.binary, "--data", a.data, "--model", "resnet14", "--batch-size", "30", "--optimizer",
            "adam", "--lr", "1e-3", "--augment", "seed", "--threads", "1", "--device", "cpu",
            "--max-steps", str(a.steps + sm.WARMUP_STEPS), "--eval-every", "0", "--log-every", "100000",
            "--log-dir", out_dir, "--checkpoint-dir", out_dir, "--trace",
            os.path.join(out_dir, "trace.json"), *extra]


def calibrate(a, work, cores):
    benches = []
    for ranks, group in ((2, 0), (4, 0), (4, 2)):
        path = os.path.join(work, f"bench_{ranks}_{group}.json")
        cmd = mpirun(ranks, cores) + [a.bench, "--reps", str(a.bench_reps)] + (["--group", str(group)] if group else [])
        p = start(cmd)
        out, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"scaling_check: {' '.join(cmd)} failed ({p.returncode}):\n{err}")
        with open(path, "w") as f:
            f.write(out)
        benches.append(path)
    cal = sm.calibrate(benches)
    path = os.path.join(work, "calibration.json")
    with open(path, "w") as f:
        json.dump(cal, f, indent=1)
    return path, cal


def profile(a, work, copies, sync_path, cores):
    """N uncoupled one-rank runs at once, copy r on core r % cores (mpirun's placement)."""
    name = f"profile_{'sync' if sync_path else 'bn'}_{copies}"
    procs, traces = [], []
    for r in range(copies):
        d = os.path.join(work, f"{name}_{r}")
        os.makedirs(d)
        procs.append(start(["mpirun", "-np", "1", "--bind-to", "core", "--cpu-set", str(r % cores),
                            "--mca", "btl", "self,vader"] +
                           train_args(a, d, ["--sync-bn"] if sync_path else ["--no-sync-bn"])))
        traces.append(os.path.join(d, "trace.json"))
    check(procs, name)
    return sm.load_profile(traces)


def measure(a, work, label, ranks, extra, cores):
    d = os.path.join(work, f"run_{ranks}_{label.replace(' ', '_').replace('-', '')}")
    os.makedirs(d)
    check([start(mpirun(ranks, cores) + train_args(a, d, extra))], f"{ranks}-rank {label}")
    with open(os.path.join(d, "summary.json")) as f:
        return json.load(f)["step_time_ms"], sm.load_profile([os.path.join(d, "trace.json")])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("CIFAR10_DIR"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "launch", "dist_train"))
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "launch", "bench_collectives"))
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--bench-reps", type=int, default=200)
    ap.add_argument("--tolerance", type=float, default=0.15)
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    a = ap.parse_args()
    if not a.data or not os.path.isdir(a.data):
        sys.exit("scaling_check: CIFAR-10 not found: pass --data or set CIFAR10_DIR")
    cores = os.cpu_count()
    with tempfile.TemporaryDirectory() as work:
        cal_path, cal = calibrate(a, work, cores)
        profiles = {}
        for copies in sorted({1} | {r for _, r, _, _ in CASES}):
            for sync_path in (False, True):
                profiles[(copies, sync_path)] = profile(a, work, copies, sync_path, cores)
        rows = []
        for label, ranks, extra, group in CASES:
            transports = sm.cpu_transport(cal_path, ranks, group)
            shared = profiles[(ranks, group > 0)]
            # The model alone: one rank's compute scaled by the microbenchmark's segment ratio.
            fit = cal["fits"][f"{ranks}/{ranks}"]
            ratio = fit["segment_busy_us"] / fit["segment_solo_us"]
            alone = profiles[(1, group > 0)].scaled(ratio)
            pred = sm.predict_step(shared, transports, ranks, group)
            pred_alone = sm.predict_step(alone, transports, ranks, group)
            measured, mprof = measure(a, work, label, ranks, extra, cores)
            rows.append({"label": label, "ranks": ranks, "pred": pred, "pred_alone": pred_alone,
                         "measured": measured, "measured_sync_bn": sum(mprof.sync_bn_ms.values()),
                         "ratio": ratio})
    lines = table(rows, cal, profiles)
    print("\n".join(lines))
    if a.write:
        write(lines, a)
    bad = [r for r in rows if abs(r["pred"]["step"] / r["measured"] - 1) > a.tolerance]
    if bad:
        sys.exit("scaling_check: predictions off by more than {:.0%}: {}".format(
            a.tolerance, ", ".join(f"{r['ranks']} ranks {r['label']}" for r in bad)))


def table(rows, cal, profiles):
    lines = ["| ranks | BatchNorm | predicted ms/step | measured | error | compute | SyncBN collectives "
             "(predicted / measured) | buckets exposed + agreement | model alone (compute x segment ratio) |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p, q = r["pred"], r["pred_alone"]
        lines.append(
            f"| {r['ranks']} | {r['label']} | {p['step']:.1f} | {r['measured']:.1f} | "
            f"{p['step'] / r['measured'] - 1:+.1%} | {p['compute']:.1f} | {p['sync_bn']:.2f} / "
            f"{r['measured_sync_bn']:.2f} | {p['buckets_exposed'] + p['agreement']:.2f} | "
            f"{q['step']:.1f} ({q['step'] / r['measured'] - 1:+.1%}, x{r['ratio']:.2f}) |")
    lines += ["", "Calibration (bench_collectives; alpha in us, beta as GB/s; segmented: a blocking "
              "collective after a compute segment on every rank):", "",
              "| ranks / group | all_reduce blocking | all_gather blocking | all_reduce async (buckets) | "
              "segmented all_reduce / all_gather | segment on all ranks / on one |", "|---|---|---|---|---|---:|"]
    for key, f in sorted(cal["fits"].items()):
        def ab(name):
            x = f[name]
            gbs = 1 / x["beta_us_per_byte"] / 1e3 if x["beta_us_per_byte"] > 0 else float("inf")
            return f"{x['alpha_us']:.1f} us + {gbs:.2f} GB/s"
        lines.append(f"| {key} | {ab('all_reduce/blocking')} | {ab('all_gather/blocking')} | "
                     f"{ab('all_reduce/async')} | {f['all_reduce/segmented_alpha_us']:.0f} / "
                     f"{f['all_gather/segmented_alpha_us']:.0f} us | "
                     f"x{f['segment_busy_us'] / f['segment_solo_us']:.2f} |")
    lines += ["", "Profiles (compute ms per step of N uncoupled one-rank copies at once, each step at its "
              "slowest copy):", "",
              "| copies | per-rank BatchNorm | SyncBatchNorm's code path |", "|---:|---:|---:|"]
    for copies in sorted({c for c, _ in profiles}):
        lines.append(f"| {copies} | {profiles[(copies, False)].compute_ms:.1f} | "
                     f"{profiles[(copies, True)].compute_ms:.1f} |")
    return lines


def write(lines, a):
    path = os.path.join(ROOT, "BENCHMARKS.md")
    with open(path) as f:
        text = f.read()
    begin, end = "<!-- scaling-check:begin -->", "<!-- scaling-check:end -->"
    if begin not in text:
        sys.exit(f"scaling_check: {path} has no {begin} marker")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    stamp = (f"Measured {datetime.date.today()} on {platform.node()} ({os.cpu_count()} cores), "
             f"resnet14, batch 30 per rank, 1 thread per rank, {a.steps} timed steps: "
             f"`launch/bench/scaling_check.py --steps {a.steps} --write`")
    with open(path, "w") as f:
        f.write(head + begin + "\n" + stamp + "\n\n" + "\n".join(lines) + "\n" + end + tail)


if __name__ == "__main__":
    main()
