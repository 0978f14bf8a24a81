#!/usr/bin/env python3
"""PyTorch's own training step for one of dist_train's models, random batches, no data loading:
what the framework alone does on this machine in a given memory layout and precision.

    OMP_NUM_THREADS=1 taskset -c 1 .venv/bin/python launch/bench/bench_torch_step.py --layout nchw
    OMP_NUM_THREADS=1 taskset -c 1 .venv/bin/python launch/bench/bench_torch_step.py --layout channels_last

Prints images/s for each repetition (Adam, as the seed recipe; the model of
tests/python/reference_models.py).
"""
import argparse, os, sys, time
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "python"))
import reference_models  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet14")
    ap.add_argument("--layout", default="channels_last", choices=["nchw", "channels_last"])
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast, fp32 weights")
    ap.add_argument("--batch", type=int, default=30)
    ap.add_argument("--steps", type=int, default=40, help="timed steps per repetition")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    fmt = torch.channels_last if a.layout == "channels_last" else torch.contiguous_format
    model = reference_models.make(a.model).to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(a.batch, 3, 32, 32).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    rates = []
    for _ in range(a.reps):
        t = time.perf_counter()
        for _ in range(a.steps):
            step()
        rates.append(a.steps * a.batch / (time.perf_counter() - t))
    print(f"{a.model} {a.layout}{' bf16' if a.bf16 else ''}: " + " ".join(f"{r:.0f}" for r in rates) + " images/s")


if __name__ == "__main__":
    main()
