#!/usr/bin/env python3
"""Scaling model: step time and scaling efficiency of dist_train at N ranks, before paying for them.

A step at N ranks is the single-rank step's compute plus what the ranks' communication adds:

  step(N) = data + forward + backward + optimizer              (compute, measured at one rank)
          + n_bn x [all_gather(2C+1 floats) + all_reduce(2C)]  (SyncBatchNorm: blocking, serial,
                                                               inside forward and backward)
          + exposed part of the gradient buckets' all-reduces  (simulated against backward)
          + one small all-reduce                               (the per-step agreement)

Each collective costs alpha + beta x bytes (latency plus bytes over bandwidth). A blocking one
inside a step also waits for the last rank to arrive; the microbenchmark measures that as the
"segmented" alpha (a collective after a compute segment on every rank). The gradient buckets are
simulated on the measured backward timeline: bucket b can launch when its last gradient is
complete (the trace's GradientReady events, shifted by the SyncBatchNorm collectives that come
before it in backward); the buckets run one after another in index order; the part that ends
after backward is exposed. A transport that progresses on its own (NCCL's stream) hides what it
can behind backward; one that progresses only inside MPI calls (Open MPI on CPU, no progress
thread) runs the buckets after backward.

Subcommands:
  profile  TRACE...                 the step profile of --trace files (one rank's run, or N
                                    uncoupled copies of it: each step at its slowest copy)
  calibrate BENCH.json... -o CAL    fit alpha, beta per (world, group, op, path) from
                                    build/launch/bench_collectives runs
  predict  --profile TRACE... --calibration CAL --world N [--sync-bn off|world|G]
  project  --model-profile NAME=TRACE ... [--markdown]
                                    efficiency at 8, 32 and 128 GPUs from published NCCL figures
                                    (PUBLISHED) and a GPU trace, or a CPU trace stretched to the
                                    H200 step measured for resnet14/20/9 (H200_STEP_MS)

launch/bench/scaling_check.py runs the calibration, the profiles and the measured runs on this
machine and compares them (BENCHMARKS.md, "Scaling model").
"""
import argparse, collections, json, math, statistics, sys

class BadInput(Exception):
    """An input the model cannot use: main prints it as one line and exits 2."""


def bad_input(message):
    raise BadInput(message)


WARMUP_STEPS = 5  # trainer/loop/training_loop.cpp's kWarmupSteps: left out of every figure
STATS_BYTES = 4   # SyncBatchNorm's statistics are float32 (float64 only for an fp64 model)
AGREEMENT_BYTES = 16  # the per-step agreement: two int64


# ---------------------------------------------------------------------------------------------
# Profile: what one rank's step costs, from a --trace file.

class Profile:
    """Per-step compute (ms) and the backward timeline of one model at one batch."""

    def __init__(self, facts, phases_ms, ready_fraction, sync_bn_ms):
        self.facts = facts
        self.phases_ms = phases_ms            # data, forward, backward, optimizer (collectives out)
        self.ready_fraction = ready_fraction  # parameter index -> completion in backward, 0..1
        self.sync_bn_ms = sync_bn_ms          # SyncBatchNorm collectives the profile itself held

    @property
    def compute_ms(self):
        return sum(self.phases_ms.values())

    def parameters(self):
        return self.facts["parameters"]

    def batch_norm_layers(self):
        return self.facts["batch_norm_layers"]

    def scaled(self, factor):
        return Profile(self.facts, {k: v * factor for k, v in self.phases_ms.items()},
                       self.ready_fraction, self.sync_bn_ms)


def _rank_profile(events, pid):
    """Mean per-step phases of one rank (ms, its SyncBatchNorm collectives taken out) and the mean
    completion time of each parameter's gradient as a fraction of its step's backward."""
    steps = collections.defaultdict(dict)
    sync = collections.defaultdict(lambda: {"forward": 0.0, "backward": 0.0})
    ready = collections.defaultdict(list)
    mine = [e for e in events if e.get("pid") == pid and e["ph"] != "M" and e["args"]["step"] > WARMUP_STEPS]
    for e in mine:
        if e["ph"] == "X" and e.get("cat") == "step":
            steps[e["args"]["step"]][e["name"]] = (e["ts"], e["dur"])
    for e in mine:
        s = e["args"]["step"]
        if s not in steps or "backward" not in steps[s]:
            continue
        if e.get("cat") == "sync-bn":
            phase = "forward" if e["name"].endswith("all_gather") else "backward"
            sync[s][phase] += e["dur"]
        elif e.get("cat") == "gradients":
            b0, bd = steps[s]["backward"]
            ready[e["name"]].append((e["ts"] - b0) / bd if bd > 0 else 1.0)
    full = [s for s, p in steps.items() if all(k in p for k in ("data", "forward", "backward", "optimizer"))]
    if not full:
        bad_input(f"rank {pid}'s trace has no complete step after the warm-up")
    phases = {k: statistics.mean(steps[s][k][1] for s in full) / 1000
              for k in ("data", "forward", "backward", "optimizer")}
    # On a GPU the phases are the host's view; the queued work is waited for (and timed) every
    # few steps: spread over the steps.
    phases["device_wait"] = sum(steps[s].get("waiting for the device", (0, 0))[1] for s in full) / len(full) / 1000
    sync_ms = {k: statistics.mean(sync[s][k] for s in full) / 1000 for k in ("forward", "backward")}
    phases["forward"] -= sync_ms["forward"]
    phases["backward"] -= sync_ms["backward"]
    # Each step's compute, in step order (for the straggler: see load_profile).
    per_step = [(sum(steps[s][k][1] for k in ("data", "forward", "backward", "optimizer")) +
                 steps[s].get("waiting for the device", (0, 0))[1] -
                 sync[s]["forward"] - sync[s]["backward"]) / 1000 for s in sorted(full)]
    return phases, {name: statistics.mean(v) for name, v in ready.items()}, sync_ms, per_step


def load_profile(paths):
    """The profile of one or more traces of the same run shape: the compute of ranks in step (N
    uncoupled copies of a one-rank run measure compute with the machine shared as N ranks would
    share it) and the mean backward timeline."""
    facts, per_rank = None, []
    for path in paths:
        try:
            with open(path) as f:
                trace = json.load(f)
        except (OSError, ValueError) as e:
            bad_input(f"{path}: not a readable trace ({e})")
        fx = trace.get("otherData") or {} if isinstance(trace, dict) else {}
        if "parameters" not in fx:
            bad_input(f"{path} has no run facts (a trace from an older dist_train?)")
        if facts and (fx["model"], fx["batch_per_rank"]) != (facts["model"], facts["batch_per_rank"]):
            bad_input(f"{path} is {fx['model']} at batch {fx['batch_per_rank']}, "
                             f"the first trace {facts['model']} at batch {facts['batch_per_rank']}")
        facts = facts or fx
        events = trace["traceEvents"]
        for pid in sorted({e["pid"] for e in events if "pid" in e}):
            per_rank.append(_rank_profile(events, pid))
    # Ranks that wait for each other every step go at the pace of each step's slowest rank: the
    # mean over steps of the largest compute among the ranks (or copies) at that step, which is
    # more than the slowest rank's mean when steps vary. The slowest rank's phases, scaled to it.
    slowest = max(per_rank, key=lambda r: sum(r[0].values()))
    steps = min(len(r[3]) for r in per_rank)
    paced = statistics.mean(max(r[3][i] for r in per_rank) for i in range(steps))
    phases = dict(slowest[0])
    scale = paced / sum(phases.values()) if sum(phases.values()) > 0 else 1.0
    phases = {k: v * scale for k, v in phases.items()}
    names = [p["name"] for p in facts["parameters"]]
    ready = {}
    for i, name in enumerate(names):
        values = [r[1].get("gradient " + name) for r in per_rank if ("gradient " + name) in r[1]]
        ready[i] = statistics.mean(values) if values else 1.0  # never seen: at the end
    return Profile(facts, phases, ready, slowest[2])


# ---------------------------------------------------------------------------------------------
# The gradient buckets, laid out as comm/reducer.cpp lays them out.

def plan_buckets(parameters, bucket_mb, first_bucket_mb):
    """Lists of parameter indices, in reverse parameter order: a first bucket up to
    min(first_bucket_mb, bucket_mb), then buckets up to bucket_mb; a new bucket at a dtype change."""
    buckets, current, current_bytes = [], [], 0
    cap = min(first_bucket_mb, bucket_mb)
    for k in range(len(parameters) - 1, -1, -1):
        p = parameters[k]
        nbytes = p["numel"] * p["element_bytes"]
        if current and (p["element_bytes"] != parameters[current[0]]["element_bytes"] or
                        current_bytes + nbytes > int(cap * 1024 * 1024)):
            buckets.append(current)
            current, current_bytes, cap = [], 0, bucket_mb
        current.append(k)
        current_bytes += nbytes
    if current:
        buckets.append(current)
    return buckets


def bucket_elements(parameters, bucket):
    return sum(parameters[k]["numel"] for k in bucket)


# ---------------------------------------------------------------------------------------------
# Costs.

class AlphaBeta:
    def __init__(self, alpha_us, beta_us_per_byte):
        self.alpha_us, self.beta_us_per_byte = alpha_us, beta_us_per_byte

    def us(self, nbytes):
        return self.alpha_us + self.beta_us_per_byte * nbytes

    def __repr__(self):
        bw = 1 / self.beta_us_per_byte / 1e3 if self.beta_us_per_byte > 0 else math.inf
        return f"alpha {self.alpha_us:.1f} us, beta {self.beta_us_per_byte * 1e6:.3f} us/MB ({bw:.2f} GB/s)"


def fit_alpha_beta(points):
    """alpha + beta x bytes through (bytes, us) points, least squares on relative error (small
    messages count as much as large ones); both kept >= 0."""
    w = [1 / (t * t) for _, t in points]
    sw = sum(w)
    sx = sum(wi * b for wi, (b, _) in zip(w, points))
    sxx = sum(wi * b * b for wi, (b, _) in zip(w, points))
    sy = sum(wi * t for wi, (_, t) in zip(w, points))
    sxy = sum(wi * b * t for wi, (b, t) in zip(w, points))
    det = sw * sxx - sx * sx
    beta = (sw * sxy - sx * sy) / det if det else 0.0
    beta = max(beta, 0.0)
    alpha = max((sy - beta * sx) / sw, 0.0)
    return AlphaBeta(alpha, beta)


class Transport:
    """What collectives cost among `group` of `world` ranks: blocking ones inside a step (SyncBN,
    the agreement) and the gradient buckets' asynchronous all-reduce."""

    def __init__(self, blocking_all_reduce, blocking_all_gather, bucket_all_reduce,
                 progresses_alone):
        self.blocking_all_reduce = blocking_all_reduce  # bytes per rank -> us
        self.blocking_all_gather = blocking_all_gather  # bytes per rank -> us
        self.bucket_all_reduce = bucket_all_reduce
        self.progresses_alone = progresses_alone        # overlaps backward without MPI calls


def load_calibration(path, world, group):
    with open(path) as f:
        cal = json.load(f)
    key = f"{world}/{group}"
    if key not in cal["fits"]:
        bad_input(f"{path} has no calibration for {world} ranks in groups of "
                         f"{group} (it has {', '.join(sorted(cal['fits']))}); run bench_collectives there")
    return cal["fits"][key]


def cpu_transport(calibration, world, sync_group):
    """The MPI transport of this machine, from `calibrate`'s fits. SyncBatchNorm's collectives run
    in groups of sync_group (the world when equal)."""
    whole = load_calibration(calibration, world, world)
    group = load_calibration(calibration, world, sync_group) if sync_group else whole

    def ab(fit, name):
        return AlphaBeta(fit[name]["alpha_us"], fit[name]["beta_us_per_byte"])

    def blocking(fit, op):
        lock = ab(fit, op + "/blocking")
        # inside a step the latency is the segmented one: the wait for the last rank included
        return AlphaBeta(max(lock.alpha_us, fit[op + "/segmented_alpha_us"]), lock.beta_us_per_byte)

    return {
        "sync_bn": Transport(blocking(group, "all_reduce").us, blocking(group, "all_gather").us,
                             None, False),
        "world": Transport(blocking(whole, "all_reduce").us, blocking(whole, "all_gather").us,
                           ab(whole, "all_reduce/async").us, progresses_alone=False),
    }


# ---------------------------------------------------------------------------------------------
# The step at N ranks.

def predict_step(profile, transports, world, sync_group, bucket_mb=None, first_bucket_mb=None,
                 overlap=True):
    """Predicted step time (ms) and its parts. sync_group 0: per-rank BatchNorm."""
    facts = profile.facts
    params = profile.parameters()
    bucket_mb = facts["bucket_mb"] if bucket_mb is None else bucket_mb
    first_bucket_mb = facts["first_bucket_mb"] if first_bucket_mb is None else first_bucket_mb
    ph = profile.phases_ms
    parts = {"compute": profile.compute_ms}
    # SyncBatchNorm: one all_gather of (mean, M2, count) forward, one all_reduce of the two
    # per-channel sums backward, per layer.
    sync_fwd, sync_bwd_at = 0.0, []
    if sync_group > 1:
        sb = transports["sync_bn"]
        index = {p["name"]: i for i, p in enumerate(params)}
        for layer in profile.batch_norm_layers():
            c = layer["channels"]
            sync_fwd += sb.blocking_all_gather((2 * c + 1) * STATS_BYTES) / 1000
            # where in backward: when its weight's gradient is complete (just after the collective)
            at = profile.ready_fraction.get(index.get(layer["name"] + ".weight"), 1.0)
            sync_bwd_at.append((at, sb.blocking_all_reduce(2 * c * STATS_BYTES) / 1000))
    parts["sync_bn"] = sync_fwd + sum(c for _, c in sync_bwd_at)
    # The gradient buckets against the backward timeline (each one after its predecessor).
    backward = ph["backward"]
    backward_end = backward + sum(c for _, c in sync_bwd_at)
    exposed = 0.0
    if world > 1:
        wt = transports["world"]
        t_free = 0.0
        for bucket in plan_buckets(params, bucket_mb, first_bucket_mb):
            ready = max(profile.ready_fraction[k] for k in bucket)
            ready_ms = ready * backward + sum(c for at, c in sync_bwd_at if at <= ready)
            if not (overlap and wt.progresses_alone):
                ready_ms = backward_end
            nbytes = (bucket_elements(params, bucket) + len(bucket)) * params[bucket[0]]["element_bytes"]
            t_free = max(t_free, ready_ms) + wt.bucket_all_reduce(nbytes) / 1000
        exposed = max(0.0, t_free - backward_end)
        parts["agreement"] = wt.blocking_all_reduce(AGREEMENT_BYTES) / 1000
    else:
        parts["agreement"] = 0.0
    parts["buckets_exposed"] = exposed
    parts["step"] = parts["compute"] + parts["sync_bn"] + exposed + parts["agreement"]
    return parts


# ---------------------------------------------------------------------------------------------
# Published NCCL figures for the projection (H100/H200 class, nccl-tests, in-place, fp32).
# all_reduce: the measured time of an 8 B message (latency) and the large-message bus bandwidth
# (algbw = busbw x n / (2(n-1))). all_gather small-message latency is not published for these
# systems: NCCL's own tuning model (src/graph/tuning.cc) gives a ring in the LL protocol
# base + (hops inside nodes) x NVLink hop + (hops between nodes) x network hop, which we use. No
# 128-GPU (16-node) run is published: its all_reduce latency is extrapolated from 2 and 4 nodes
# along NCCL's tree model (latency grows with log2(nodes)).
PUBLISHED = {
    "sources": {
        "S1": "NVIDIA/dgxc-benchmarking nccl/README.md @841f5466: all_reduce_perf, 8x H100 80GB, one host",
        "S2": "github.com/NVIDIA/nccl-tests/issues/309: 8x H100 per node, 8x CX-7 400G NDR IB, NCCL 2.26.2",
        "S3": "github.com/NVIDIA/nccl-tests/issues/212 (NVIDIA): H100 NVLink ~480 GB/s busbw with NVLS",
        "S4": "NVIDIA/nccl src/graph/tuning.cc @5067397c (2.30.7): Ring LL base 6.6 us, NVLink hop 0.6 us, "
              "network hop 2.7 us + 1 us network post overhead",
    },
    # GPUs: (all_reduce 8 B latency us, all_reduce busbw GB/s, source)
    8: (13.03, 480.0, "S1: 8 B 13.03 us, 16 GB 479.99 GB/s busbw (S3: ~480 with NVLS)"),
    32: (34.75, 324.0, "S2: 4 nodes, 8 B 34.75 us, 8 GB 324.11 GB/s busbw"),
    128: (54.8, 320.0, "extrapolated: S2's 2 -> 4 nodes adds 10.0 us per doubling of nodes, two more "
                       "doublings; busbw: S2's 8 nodes, 320.57 GB/s"),
    "node_gpus": 8,
    "ring_base_us": 6.6,     # S4
    "nvlink_hop_us": 0.6,    # S4
    "network_hop_us": 3.7,   # S4: 2.7 + 1
}


def gpu_transport(n):
    """NCCL among n GPUs (n <= 8: one NVLink node), from PUBLISHED. The buckets' all-reduce runs on
    NCCL's own stream: it overlaps backward."""
    node = PUBLISHED["node_gpus"]
    key = 8 if n <= node else (32 if n <= 32 else 128)
    lat, busbw, _ = PUBLISHED[key]
    nodes = max(1, n // node)

    def all_reduce(nbytes):
        return lat + nbytes * 2 * (n - 1) / n / (busbw * 1e3) if n > 1 else 0.0

    def all_gather(nbytes_per_rank):
        if n == 1:
            return 0.0
        latency = (PUBLISHED["ring_base_us"] + (n - nodes) * PUBLISHED["nvlink_hop_us"] +
                   (nodes - 1) * PUBLISHED["network_hop_us"])
        return latency + nbytes_per_rank * n * (n - 1) / n / (busbw * 1e3)

    return Transport(all_reduce, all_gather, all_reduce, progresses_alone=True)


# The single-H200 step times measured (BENCHMARKS.md, "One NVIDIA H200", 2026-11-30): batch 512,
# eager (SyncBatchNorm cannot be captured in a CUDA graph), the faster precision of each model.
H200_STEP_MS = {
    "resnet14": (512 / 83128 * 1000, "fp32 eager, 83,128 images/s"),
    "resnet20": (512 / 61274 * 1000, "fp32 eager, 61,274 images/s"),
    "resnet9": (512 / 88000 * 1000, "bf16 eager, 88,000 images/s"),
}


def gpu_step(model, profile, batch=None):
    """(step ms, what it is, the profile at that length) on one GPU at `batch` per GPU (None: the
    trace's own, or 512), compute taken as linear in the batch: a GPU trace as measured; a CPU
    trace's shape stretched to the H200 step time measured for `model` at batch 512."""
    if profile.facts["device"].startswith("cuda"):
        scale = batch / profile.facts["batch_per_rank"] if batch else 1.0
        return (profile.compute_ms * scale, f"{profile.facts['device']} trace at batch "
                f"{profile.facts['batch_per_rank']}", profile.scaled(scale))
    if model not in H200_STEP_MS:
        bad_input(f"no GPU step time for {model} (a CPU trace needs one of "
                         f"{', '.join(H200_STEP_MS)}; or give a GPU trace)")
    step_ms, note = H200_STEP_MS[model]
    step_ms *= (batch or 512) / 512
    return step_ms, note, profile.scaled(step_ms / profile.compute_ms)


def project(profiles, gpus=(8, 32, 128), bucket_mb=25.0):
    """Efficiency step(1)/step(N) at each GPU count for per-rank BN, world SyncBN and SyncBN within
    a node. The CPU profile gives the shape of the step (forward/backward split, the backward
    timeline); the H200 step time gives its length."""
    rows = []
    for model, profile in profiles.items():
        step_ms, note, gpu = gpu_step(model, profile)
        for n in gpus:
            node = min(n, PUBLISHED["node_gpus"])
            world = gpu_transport(n)
            for mode, group in (("per-rank BN", 0), ("SyncBN world", n), ("SyncBN in a node", node)):
                transports = {"world": world, "sync_bn": gpu_transport(group) if group else None}
                p = predict_step(gpu, transports, n, group, bucket_mb=bucket_mb)
                rows.append({"model": model, "gpus": n, "mode": mode, "step_ms": p["step"],
                             "sync_bn_ms": p["sync_bn"], "exposed_ms": p["buckets_exposed"],
                             "efficiency": step_ms / p["step"], "single_ms": step_ms, "note": note})
    return rows


def min_batch_for(profile, model, n, group, target=0.9):
    """The smallest per-GPU batch (a multiple of 32, up to 4096) whose projected efficiency at n
    GPUs reaches `target`, taking compute as linear in the batch from the batch-512 step (a lower
    bound on the batch: small batches use the GPU worse)."""
    for batch in range(32, 4097, 32):
        _, _, gpu = gpu_step(model, profile, batch)
        transports = {"world": gpu_transport(n), "sync_bn": gpu_transport(group) if group else None}
        p = predict_step(gpu, transports, n, group)
        if gpu.compute_ms / p["step"] >= target:
            return batch
    return None


def projection_markdown(profiles, gpus=(8, 32, 128)):
    """The projection tables for BENCHMARKS.md: efficiency, the parameters, the smallest per-GPU
    batch that keeps 90%, and what the bucket size changes."""
    rows = project(profiles, gpus)
    modes = ("per-rank BN", "SyncBN in a node", "SyncBN world")
    out = ["| model (H200 step at batch 512) | BatchNorm | " + " | ".join(f"{n} GPUs" for n in gpus) + " |",
           "|---|---|" + "---:|" * len(gpus)]
    for model in profiles:
        for mode in modes:
            cells = []
            for n in gpus:
                r = next(x for x in rows if (x["model"], x["gpus"], x["mode"]) == (model, n, mode))
                extra = f", SyncBN {r['sync_bn_ms']:.2f} ms" if r["sync_bn_ms"] else ""
                cells.append(f"{r['efficiency']:.1%} ({r['step_ms']:.2f} ms{extra})")
            single = next(x for x in rows if x["model"] == model)
            out.append(f"| {model} ({single['single_ms']:.2f} ms, {single['note']}) | {mode} | " + " | ".join(cells) + " |")
    out += ["", "Parameters (NCCL, fp32; SyncBN's messages are 2C+1 floats per rank, C <= 512):", "",
            "| GPUs | all_reduce 8 B | all_reduce busbw | all_gather of 129 floats per rank (ring model) | source |",
            "|---:|---:|---:|---:|---|"]
    for n in gpus:
        lat, busbw, src = PUBLISHED[8 if n <= 8 else (32 if n <= 32 else 128)]
        out.append(f"| {n} | {lat:.1f} us | {busbw:.0f} GB/s | {gpu_transport(n).blocking_all_gather(129 * 4):.1f} us | {src} |")
    out += ["", "Sources: " + "; ".join(f"{k}: {v}" for k, v in PUBLISHED["sources"].items()) + ".", "",
            "Smallest per-GPU batch with projected efficiency >= 90% (compute taken as linear in the "
            "batch from the batch-512 step: a lower bound, small batches use an H200 worse):", "",
            "| model | BatchNorm | " + " | ".join(f"{n} GPUs" for n in gpus) + " |", "|---|---|" + "---:|" * len(gpus)]
    for model, profile in profiles.items():
        for mode in modes:
            cells = []
            for n in gpus:
                group = 0 if mode == "per-rank BN" else (n if mode == "SyncBN world" else min(n, PUBLISHED["node_gpus"]))
                b = min_batch_for(profile, model, n, group)
                cells.append(str(b) if b else "> 4096")
            out.append(f"| {model} | {mode} | " + " | ".join(cells) + " |")
    out += ["", "Gradient buckets at 128 GPUs, per-rank BN: exposed all-reduce per step (ms) by --bucket-mb:", "",
            "| model | gradients | 1 MB | 5 MB | 25 MB (default) | 100 MB |", "|---|---:|---:|---:|---:|---:|"]
    for model, profile in profiles.items():
        _, _, gpu = gpu_step(model, profile)
        mb = sum(p["numel"] * p["element_bytes"] for p in profile.parameters()) / 2**20
        cells = []
        for bucket_mb in (1, 5, 25, 100):
            p = predict_step(gpu, {"world": gpu_transport(128), "sync_bn": None}, 128, 0, bucket_mb=bucket_mb)
            cells.append(f"{p['buckets_exposed']:.3f}")
        out.append(f"| {model} | {mb:.1f} MB | " + " | ".join(cells) + " |")
    return out


# ---------------------------------------------------------------------------------------------
# Command line.

def calibrate(paths):
    benches = []
    for path in paths:
        with open(path) as f:
            benches.append(json.load(f))
    return calibrate_benches(benches)


def calibrate_benches(benches):
    """The fits of bench_collectives results, keyed "world/group"."""
    fits = {}
    for bench in benches:
        key = f"{bench['world_size']}/{bench['group_size']}"
        by = collections.defaultdict(list)
        for r in bench["results"]:
            by[(r["op"], r["path"], r["mode"])].append((r["bytes"], r["us"]))
        fit = {"segment_solo_us": bench["segment_solo_us"], "segment_busy_us": bench["segment_busy_us"]}
        for (op, path_, mode), pts in by.items():
            if mode == "lockstep":
                ab = fit_alpha_beta([(b, t) for b, t in pts if t > 0])
                fit[f"{op}/{path_}"] = {"alpha_us": ab.alpha_us, "beta_us_per_byte": ab.beta_us_per_byte}
            else:  # segmented: the latency of a blocking call inside a step, from the small messages
                small = [t for b, t in pts if b <= 4096]
                fit[f"{op}/segmented_alpha_us"] = max(0.0, statistics.median(small))
        fits[key] = fit
    return {"fits": fits}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("profile")
    p.add_argument("traces", nargs="+")
    c = sub.add_parser("calibrate")
    c.add_argument("bench", nargs="+")
    c.add_argument("-o", "--output", required=True)
    r = sub.add_parser("predict")
    r.add_argument("--profile", nargs="+", required=True)
    r.add_argument("--calibration", required=True)
    r.add_argument("--world", type=int, required=True)
    r.add_argument("--sync-bn", default="world", help="off, world or a group size")
    j = sub.add_parser("project")
    j.add_argument("--model-profile", action="append", required=True, metavar="MODEL=TRACE")
    j.add_argument("--markdown", action="store_true", help="the tables for BENCHMARKS.md")
    a = ap.parse_args()
    try:
        run(a)
    except BadInput as e:
        print(f"scaling_model: {e}", file=sys.stderr)
        sys.exit(2)


def run(a):
    if a.cmd == "profile":
        prof = load_profile(a.traces)
        print(json.dumps({"compute_ms": prof.compute_ms, "phases_ms": prof.phases_ms,
                          "batch_norm_layers": len(prof.batch_norm_layers()),
                          "buckets": [len(b) for b in plan_buckets(prof.parameters(), prof.facts["bucket_mb"],
                                                                   prof.facts["first_bucket_mb"])]}, indent=1))
    elif a.cmd == "calibrate":
        with open(a.output, "w") as f:
            json.dump(calibrate(a.bench), f, indent=1)
    elif a.cmd == "predict":
        prof = load_profile(a.profile)
        group = 0 if a.sync_bn == "off" else a.world if a.sync_bn == "world" else int(a.sync_bn)
        t = cpu_transport(a.calibration, a.world, group)
        print(json.dumps(predict_step(prof, t, a.world, group), indent=1))
    elif a.cmd == "project":
        profiles = {}
        for spec in a.model_profile:
            model, _, path = spec.partition("=")
            profiles[model] = load_profile([path])
        if a.markdown:
            print("\n".join(projection_markdown(profiles)))
        else:
            for row in project(profiles):
                print(json.dumps(row))


if __name__ == "__main__":
    main()
