#!/usr/bin/env python3
"""Trains a CIFAR ResNet with PyTorch alone, with dist_train's recipe, on the same binary files:
the reference that says whether an accuracy dist_train reaches is the trainer's or the data's.

Everything is dist_train's own definition, re-derived here in plain PyTorch: the model is the
Python twin in tests/python/reference_models.py (He et al.'s initialisation for the option-A
ResNets, as model/resnet.cpp), the augmentation is `--augment standard` (zero-pad 4, random 32x32
crop, flip, normalise with data/augment_kernel.h's mean and std), the learning rate follows
trainer/optim/lr_schedule.cpp per step (linear warm-up, then cosine or constant), SGD with momentum and
weight decay on every parameter, the last partial batch of an epoch dropped. Evaluation is fp32
(dist_train's with --precision bf16 is bf16; BENCHMARKS.md measured the two 0.02 points apart).
--batch is the global batch: it matches a dist_train run of one rank, or of several with
SyncBatchNorm (the default) whose per-rank batches add up to it. dist_train must be given
`--augment standard` (its default is the seed's augmentation).

    .venv/bin/python launch/bench/reference_train.py --data $CIFAR10_DIR --model resnet20 --epochs 40 \
        --lr 0.1 --weight-decay 1e-4 --batch 128 --warmup-epochs 1 --bf16 --threads 2

Prints one JSON line per evaluated epoch and a final one with "final": true.
"""
import argparse, json, math, os, sys, time
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "python"))
import reference_models  # noqa: E402

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)  # data/augment_kernel.h
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def read_split(root, names):
    raw = np.concatenate([np.fromfile(os.path.join(root, n), dtype=np.uint8) for n in names])
    raw = raw.reshape(-1, 3073)
    return (torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()),
            torch.from_numpy(raw[:, 0].astype(np.int64)))


def augment(padded, pad, gen):
    """Random 32x32 crop of each zero-padded image and a random horizontal flip."""
    b = padded.shape[0]
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    r = torch.arange(32)
    rows = (oy[:, None] + r).view(b, 1, 32, 1).expand(b, 3, 32, padded.shape[3])
    out = padded.gather(2, rows)
    cols = (ox[:, None] + r).view(b, 1, 1, 32).expand(b, 3, 32, 32)
    out = out.gather(3, cols)
    flip = torch.rand(b, generator=gen) < 0.5
    return torch.where(flip.view(b, 1, 1, 1), out.flip(3), out)


def normalise(images_u8):
    x = (images_u8.float() / 255 - MEAN) / STD
    return x.contiguous(memory_format=torch.channels_last)


def lr_at(a, epoch, step_length):  # trainer/optim/lr_schedule.cpp, the kinds this script supports
    if a.warmup_epochs > 0 and epoch < a.warmup_epochs:  # warm-up: the step's end, never 0
        return a.lr * min(epoch + step_length, a.warmup_epochs) / a.warmup_epochs
    if a.schedule == "cosine":
        t = min(max((epoch - a.warmup_epochs) / max(a.epochs - a.warmup_epochs, 1e-9), 0.0), 1.0)
        return a.lr * 0.5 * (1 + math.cos(math.pi * t))
    return a.lr


def evaluate(model, images, labels):
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(labels), 1000):
            out = model(normalise(images[i:i + 1000]))
            loss += float(nn.functional.cross_entropy(out, labels[i:i + 1000], reduction="sum"))
            correct += int((out.argmax(1) == labels[i:i + 1000]).sum())
    model.train()
    return correct / len(labels), loss / len(labels)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("CIFAR10_DIR", ""))
    ap.add_argument("--model", default="resnet20", choices=sorted(reference_models.BLOCKS))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--nesterov", action="store_true")
    ap.add_argument("--schedule", default="cosine", choices=["cosine", "constant"])
    ap.add_argument("--warmup-epochs", type=float, default=0.0)
    ap.add_argument("--crop-padding", type=int, default=4)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast, fp32 weights (as --precision bf16)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=5, help="epochs between evaluations (the last always)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: all epochs)")
    ap.add_argument("--eval-images", type=int, default=10000, help="evaluate on the first N test images")
    a = ap.parse_args()
    if not 1 <= a.eval_images <= 10000:
        print(f"reference_train: --eval-images must be in [1, 10000], got {a.eval_images}", file=sys.stderr)
        sys.exit(2)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)]
    missing = [n for n in names + ["test_batch.bin"] if not os.path.isfile(os.path.join(a.data, n))]
    if missing:
        print(f"reference_train: CIFAR-10 binary files missing in '{a.data}': {', '.join(missing)}",
              file=sys.stderr)
        sys.exit(2)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    train_x, train_y = read_split(a.data, names)
    test_x, test_y = read_split(a.data, ["test_batch.bin"])
    test_x, test_y = test_x[:a.eval_images], test_y[:a.eval_images]
    p = a.crop_padding
    padded = nn.functional.pad(train_x, (p, p, p, p))

    model = reference_models.make(a.model)
    if a.model != "resnet14":  # model/resnet.cpp: He et al.'s initialisation for option A
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum,
                          weight_decay=a.weight_decay, nesterov=a.nesterov)
    n = len(train_y)
    steps_per_epoch = n // a.batch
    step, t0 = 0, time.perf_counter()
    for epoch in range(a.epochs):
        order = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        for s in range(steps_per_epoch):
            idx = order[s * a.batch:(s + 1) * a.batch]
            x = normalise(augment(padded[idx], p, gen))
            for g in opt.param_groups:
                g["lr"] = lr_at(a, epoch + s * a.batch / n, a.batch / n)
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                loss = nn.functional.cross_entropy(model(x), train_y[idx])
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach())
            step += 1
            if a.max_steps and step >= a.max_steps:
                break
        done = a.max_steps and step >= a.max_steps
        last = epoch + 1 == a.epochs or done
        if last or (a.eval_every > 0 and (epoch + 1) % a.eval_every == 0):
            acc, test_loss = evaluate(model, test_x, test_y)
            print(json.dumps({"epoch": epoch + 1, "steps": step, "train_loss": loss_sum / max(s + 1, 1),
                              "test_loss": test_loss, "test_accuracy": acc,
                              "seconds": round(time.perf_counter() - t0, 1), "final": bool(last),
                              "model": a.model, "torch": torch.__version__}), flush=True)
        if done:
            break


if __name__ == "__main__":
    main()
