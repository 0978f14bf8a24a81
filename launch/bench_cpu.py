#!/usr/bin/env python3
"""CPU benchmark: dist_train against the seed's Python script, side by side in one run.

Runs, alternating and repeated, on the same data, model (resnet14), batch (30), optimizer (Adam)
and torch version (the project venv's):
  - single process, one thread, pinned to one core: dist_train vs peer_seed.py;
  - scaling, 2 ranks x 1 thread against 1 rank x 1 thread: dist_train (MPI, with and without
    overlap) vs peer_seed.py under torch.distributed (gloo DDP).
Prints the table and, with --write, puts it into BENCHMARKS.md between markers.

  .venv/bin/python launch/bench_cpu.py --data $CIFAR10_DIR [--reps 3] [--steps 200] [--write]
"""
import argparse, datetime, json, os, platform, re, socket, statistics, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd, env=None):
    e = dict(os.environ, **(env or {}))
    p = subprocess.run(cmd, env=e, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"benchmark command failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def peer(a, world=1):
    base = [sys.executable, a.peer, "--data", a.data, "--steps", str(a.steps), "--batch", "30"]
    env = {"OMP_NUM_THREADS": "1"}
    if world == 1:
        return json.loads(run(["taskset", "-c", "1"] + base, env).strip().splitlines()[-1])
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


def dist_train(a, world=1, extra=()):
    with tempfile.TemporaryDirectory() as d:
        args = [a.binary, "--data", a.data, "--model", "resnet14", "--batch-size", "30",
                "--optimizer", "adam", "--lr", "1e-3", "--augment", "seed", "--threads", "1",
                "--device", "cpu", "--max-steps", str(a.steps + 5), "--eval-every", "0",
                "--log-every", "1000", "--log-dir", d, "--checkpoint-dir", d, *extra]
        if world == 1:
            run(["taskset", "-c", "1"] + args)
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
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    a = ap.parse_args()
    if not a.data or not os.path.exists(os.path.join(a.data, "data_batch_1.bin")):
        sys.exit("bench_cpu: --data (or CIFAR10_DIR) must point at cifar-10-batches-bin")

    rows = {k: [] for k in ["peer1", "dt1", "peer2", "dt2", "dt2_no_overlap"]}
    split = None
    for rep in range(a.reps):
        rows["peer1"].append(peer(a)["images_per_s_total"])
        s = dist_train(a)
        rows["dt1"].append(s["images_per_s"])
        split = s
        if not a.no_scaling:
            rows["peer2"].append(peer(a, 2)["images_per_s_total"])
            s2 = dist_train(a, 2)
            rows["dt2"].append(s2["images_per_s"])
            rows["dt2_exposed_ms"] = rows.get("dt2_exposed_ms", []) + [
                1000 * s2["seconds"]["exposed_comm"] / s2["steps_timed"]]
            rows["dt2_step_ms"] = rows.get("dt2_step_ms", []) + [s2["step_time_ms"]]
            s3 = dist_train(a, 2, ["--no-overlap"])
            rows["dt2_no_overlap"].append(s3["images_per_s"])
            rows["dt2_no_overlap_step_ms"] = rows.get("dt2_no_overlap_step_ms", []) + [s3["step_time_ms"]]
            rows["dt2_no_overlap_exposed_ms"] = rows.get("dt2_no_overlap_exposed_ms", []) + [
                1000 * s3["seconds"]["exposed_comm"] / s3["steps_timed"]]
        print(f"rep {rep + 1}/{a.reps}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rows.items() if v),
              flush=True)

    med = {k: statistics.median(v) for k, v in rows.items() if v}
    ratios = [d / p for d, p in zip(rows["dt1"], rows["peer1"])]
    date = datetime.date.today().isoformat()
    cpu = re.sub(r"\s+", " ", next((l.split(":", 1)[1] for l in open("/proc/cpuinfo")
                                    if l.startswith("model name")), platform.processor())).strip()
    lines = [f"Measured {date} on {socket.gethostname()} ({cpu}, {os.cpu_count()} cores), torch "
             f"{json.loads(json.dumps(peer_version()))}, median of {a.reps} alternating repetitions "
             f"of {a.steps} timed steps after 5 warm-up steps.",
             "", "Command: `.venv/bin/python launch/bench_cpu.py --data $CIFAR10_DIR --reps "
             f"{a.reps} --steps {a.steps} --write`", "",
             "| run | images/s | vs peer |", "|---|---:|---:|",
             f"| peer_seed.py, 1 process, 1 thread | {med['peer1']:.1f} | 1.00x |",
             f"| dist_train, 1 rank, 1 thread | {med['dt1']:.1f} | **{statistics.median(ratios):.2f}x** |"]
    if not a.no_scaling:
        eff_dt = med["dt2"] / (2 * med["dt1"])
        eff_peer = med["peer2"] / (2 * med["peer1"])
        lines += [
            f"| peer_seed.py DDP (gloo), 2 ranks x 1 thread | {med['peer2']:.1f} | |",
            f"| dist_train, 2 ranks x 1 thread (overlap) | {med['dt2']:.1f} | {med['dt2'] / med['peer2']:.2f}x vs peer DDP |",
            f"| dist_train, 2 ranks x 1 thread (--no-overlap) | {med['dt2_no_overlap']:.1f} | |",
            "", "| scaling, 2 ranks vs 1 | efficiency |", "|---|---:|",
            f"| dist_train (MPI, overlap) | **{100 * eff_dt:.1f}%** |",
            f"| dist_train (--no-overlap) | {100 * med['dt2_no_overlap'] / (2 * med['dt1']):.1f}% |",
            f"| PyTorch DDP over gloo (peer) | {100 * eff_peer:.1f}% |",
            "", "| dist_train, 2 ranks | step time | exposed communication per step |", "|---|---:|---:|",
            f"| overlap | {med['dt2_step_ms']:.1f} ms | {med['dt2_exposed_ms']:.2f} ms |",
            f"| --no-overlap | {med['dt2_no_overlap_step_ms']:.1f} ms | {med['dt2_no_overlap_exposed_ms']:.2f} ms |"]
    sec = split["seconds"]
    step = sum(sec[k] for k in ["data", "forward", "backward", "exposed_comm", "optimizer"])
    lines += ["", "Where a dist_train step goes (1 rank, 1 thread, last repetition): " + ", ".join(
        f"{k} {100 * sec[k] / step:.1f}%" for k in ["data", "forward", "backward", "optimizer"]) + "."]
    table = "\n".join(lines)
    print(table)
    if a.write:
        path = os.path.join(ROOT, "BENCHMARKS.md")
        text = open(path).read()
        begin, end = "<!-- bench_cpu:begin -->", "<!-- bench_cpu:end -->"
        block = f"{begin}\n{table}\n{end}"
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), block, text, flags=re.S) \
            if begin in text else text.rstrip() + "\n\n## CPU: dist_train vs the peer\n\n" + block + "\n"
        open(path, "w").write(text)


def peer_version():
    import torch
    return torch.__version__


if __name__ == "__main__":
    main()
