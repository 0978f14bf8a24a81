#!/usr/bin/env python3
"""CPU benchmark: dist_train against the seed's Python script, side by side in one run.

Runs, alternating and repeated, on the same data, model (resnet14), batch (30), optimizer (Adam)
and torch version (the project venv's):
  - single process, one thread, pinned to one core: dist_train (fp32, which runs its stride-1
    3x3 convolutions as Winograd on AVX-512 CPUs; fp32 with --cpu-conv direct, LibTorch's oneDNN
    convolutions throughout; and --precision bf16: autocast with fp32 weights, which this CPU's
    AVX512-BF16 runs faster) vs peer_seed.py;
  - single process with all cores (--threads, default the core count), unpinned: dist_train vs
    peer_seed.py with OMP_NUM_THREADS set to the same count (what each does when run plainly);
  - scaling, 2 ranks x 1 thread against 1 rank x 1 thread: dist_train (MPI, with and without
    overlap) vs peer_seed.py under torch.distributed (gloo DDP).
Prints the table and, with --write, puts it into BENCHMARKS.md between markers.

  .venv/bin/python launch/bench/bench_cpu.py --data $CIFAR10_DIR [--reps 3] [--steps 200] [--threads N] [--write]
"""
import argparse, datetime, json, os, platform, re, socket, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run(cmd, env=None):
    e = dict(os.environ, **(env or {}))
    p = subprocess.run(cmd, env=e, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"benchmark command failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def peer(a, world=1, threads=1):
    base = [sys.executable, a.peer, "--data", a.data, "--steps", str(a.steps), "--batch", "30"]
    env = {"OMP_NUM_THREADS": str(threads)}
    if world == 1:
        pin = ["taskset", "-c", "1"] if threads == 1 else []
        return json.loads(run(pin + base, env).strip().splitlines()[-1])
    port = str(29500 + os.getpid() % 1000)
    procs = []
    for r in range(world):
        e = dict(os.environ, OMP_NUM_THREADS="1", RANK=str(r), WORLD_SIZE=str(world),
                 MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        procs.append(subprocess.Popen(["taskset", "-c", str(r)] + base, env=e,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate() for p in procs]
    if any(p.returncode for p in procs):
        sys.exit(f"peer DDP failed: {outs}")
    return json.loads(outs[0][0].strip().splitlines()[-1])


def dist_train(a, world=1, extra=(), threads=1):
    with tempfile.TemporaryDirectory() as d:
        args = [a.binary, "--data", a.data, "--model", "resnet14", "--batch-size", "30",
                "--optimizer", "adam", "--lr", "1e-3", "--augment", "seed", "--threads", str(threads),
                "--device", "cpu", "--max-steps", str(a.steps + 5), "--eval-every", "0",
                "--log-every", "1000", "--log-dir", d, "--checkpoint-dir", d, *extra]
        if world == 1:
            run((["taskset", "-c", "1"] if threads == 1 else []) + args)
        else:
            run(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(world),
                 "--bind-to", "core", "--mca", "btl", "self,vader"] + args,
                {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"})
        with open(os.path.join(d, "summary.json")) as f:
            return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("CIFAR10_DIR"))
    ap.add_argument("--peer", default=os.path.join(ROOT, "..", "shared", "bench", "peer_seed.py"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "launch", "dist_train"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="also compare one process with this many threads, unpinned (1: skip)")
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    ap.add_argument("--replay", help="render the table from the 'rep i/N:' lines of an earlier "
                                     "run's output instead of measuring")
    a = ap.parse_args()
    if not a.data or not os.path.exists(os.path.join(a.data, "data_batch_1.bin")):
        sys.exit("bench_cpu: --data (or CIFAR10_DIR) must point at cifar-10-batches-bin")

    rows = {}
    last = {}

    def add(key, value):
        rows.setdefault(key, []).append(value)

    def dt(key, world, extra=(), threads=1):
        summary = dist_train(a, world, extra, threads)
        add(key, summary["images_per_s"])
        add(key + "_step_ms", summary["step_time_ms"])
        add(key + "_exposed_ms", 1000 * summary["seconds"]["exposed_comm"] / summary["steps_timed"])
        add(key + "_collectives", summary.get("collectives_per_step", 0))
        last[key] = summary

    if a.replay:
        for line in open(a.replay):
            if line.startswith("rep "):
                for item in line.split(":", 1)[1].split(","):
                    key, value = item.split()
                    add(key, float(value))
        a.reps = len(rows["peer1"])
        last["dt1"] = None
    for rep in range(0 if a.replay else a.reps):
        add("peer1", peer(a)["images_per_s_total"])
        dt("dt1", 1)
        dt("dt1_direct", 1, ["--cpu-conv", "direct"])
        dt("dt1_bf16", 1, ["--precision", "bf16"])
        if a.threads > 1:
            add("peer1_threads", peer(a, threads=a.threads)["images_per_s_total"])
            dt("dt1_threads", 1, threads=a.threads)
        if not a.no_scaling:
            add("peer2", peer(a, 2)["images_per_s_total"])
            dt("dt2", 2, ["--no-sync-bn"])
            dt("dt2_no_overlap", 2, ["--no-sync-bn", "--no-overlap"])
            dt("dt2_sync_bn", 2)
        print(f"rep {rep + 1}/{a.reps}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rows.items()),
              flush=True)

    med = {k: statistics.median(v) for k, v in rows.items() if v}
    # Ratios are taken within each repetition (runs measured back to back), then the median.
    paired = lambda f: statistics.median(f(i) for i in range(len(rows["peer1"])))
    ratios = [d / p for d, p in zip(rows["dt1"], rows["peer1"])]
    date = datetime.date.today().isoformat()
    cpu = re.sub(r"\s+", " ", next((l.split(":", 1)[1] for l in open("/proc/cpuinfo")
                                    if l.startswith("model name")), platform.processor())).strip()
    lines = [f"Measured {date} on {socket.gethostname()} ({cpu}, {os.cpu_count()} cores), torch "
             f"{json.loads(json.dumps(peer_version()))}, median of {a.reps} alternating repetitions "
             f"of {a.steps} timed steps after 5 warm-up steps.",
             "", "Command: `.venv/bin/python launch/bench/bench_cpu.py --data $CIFAR10_DIR --reps "
             f"{a.reps} --steps {a.steps} --write`. Per repetition: "
             + "; ".join(f"peer {p:.0f} / dist_train {d:.0f}" for p, d in zip(rows["peer1"], rows["dt1"]))
             + " images/s.", "",
             "| run | images/s | vs peer |", "|---|---:|---:|",
             f"| peer_seed.py, 1 process, 1 thread | {med['peer1']:.1f} | 1.00x |",
             f"| dist_train, 1 rank, 1 thread | {med['dt1']:.1f} | **{statistics.median(ratios):.2f}x** |"]
    if "dt1_direct" in rows:
        direct = paired(lambda i: rows["dt1_direct"][i] / rows["peer1"][i])
        lines.append(f"| dist_train, 1 rank, 1 thread, --cpu-conv direct (LibTorch's oneDNN convolutions) | {med['dt1_direct']:.1f} | {direct:.2f}x |")
    if "dt1_bf16" in rows:
        bf16 = paired(lambda i: rows["dt1_bf16"][i] / rows["peer1"][i])
        lines.append(f"| dist_train, 1 rank, 1 thread, --precision bf16 | {med['dt1_bf16']:.1f} | **{bf16:.2f}x** |")
    if "dt1_threads" in rows:
        n = a.threads
        lines += [f"| peer_seed.py, 1 process, {n} threads (OMP_NUM_THREADS={n}) | {med['peer1_threads']:.1f} | |",
                  f"| dist_train, 1 rank, --threads {n} | {med['dt1_threads']:.1f} | "
                  f"**{paired(lambda i: rows['dt1_threads'][i] / rows['peer1_threads'][i]):.2f}x** vs the peer at {n} threads |"]
    if not a.no_scaling:
        eff = lambda k: 100 * paired(lambda i: rows[k][i] / (2 * rows["dt1"][i]))
        lines += [
            f"| peer_seed.py DDP (gloo, per-rank BatchNorm), 2 ranks x 1 thread | {med['peer2']:.1f} | |",
            f"| dist_train, 2 ranks x 1 thread, --no-sync-bn (like the peer) | {med['dt2']:.1f} | {paired(lambda i: rows['dt2'][i] / rows['peer2'][i]):.2f}x vs peer DDP |",
            f"| dist_train, 2 ranks x 1 thread, --no-sync-bn --no-overlap | {med['dt2_no_overlap']:.1f} | |",
            f"| dist_train, 2 ranks x 1 thread, SyncBatchNorm (the default) | {med['dt2_sync_bn']:.1f} | |",
            "", "| scaling, 2 ranks x 1 thread vs 1 rank x 1 thread | efficiency |", "|---|---:|",
            f"| dist_train, --no-sync-bn, overlap | **{eff('dt2'):.1f}%** |",
            f"| dist_train, --no-sync-bn, --no-overlap | {eff('dt2_no_overlap'):.1f}% |",
            f"| dist_train, SyncBatchNorm | {eff('dt2_sync_bn'):.1f}% |",
            f"| PyTorch DDP over gloo (peer) | {100 * paired(lambda i: rows['peer2'][i] / (2 * rows['peer1'][i])):.1f}% |",
            "", "| dist_train, 2 ranks | step time | exposed communication per step | collectives per step |",
            "|---|---:|---:|---:|"]
        for key, name in [("dt2", "--no-sync-bn, overlap"), ("dt2_no_overlap", "--no-sync-bn, --no-overlap"),
                          ("dt2_sync_bn", "SyncBatchNorm, overlap")]:
            lines.append(f"| {name} | {med[key + '_step_ms']:.1f} ms | {med[key + '_exposed_ms']:.2f} ms "
                         f"| {med[key + '_collectives']:.1f} |")
        cost = paired(lambda i: rows["dt2_sync_bn_step_ms"][i] - rows["dt2_step_ms"][i])
        spread = [rows["dt2_sync_bn_step_ms"][i] - rows["dt2_step_ms"][i] for i in range(a.reps)]
        lines += ["", f"SyncBatchNorm vs per-rank BatchNorm at 2 ranks: {cost:+.1f} ms per step "
                  f"(median of the per-repetition differences {', '.join(f'{x:+.1f}' for x in spread)} ms; "
                  "the run-to-run noise on this machine is of the same size)."]
    split = last["dt1"]
    if split:
        sec = split["seconds"]
        step = sum(sec.get(k, 0) for k in ["data", "forward", "backward", "exposed_comm", "optimizer",
                                           "device_wait"])
        lines += ["", "Where a dist_train step goes (1 rank, 1 thread, last repetition): " + ", ".join(
            f"{k} {100 * sec[k] / step:.1f}%" for k in ["data", "forward", "backward", "optimizer"]) + "."]
    table = "\n".join(lines)
    print(table)
    if a.write:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from bench_report import write_section
        write_section("bench_cpu", "CPU: dist_train vs the peer", table)


def peer_version():
    import torch
    return torch.__version__


if __name__ == "__main__":
    main()
