#!/usr/bin/env python3
"""Evaluates a dist_train checkpoint with PyTorch alone: the model's Python twin
(tests/python/reference_models.py), fp32, on the CIFAR-10 test set read from the binary files.
An independent check of the accuracy dist_train reports (its evaluation may run in bf16), with
or without test-time augmentation (--tta flip: the mean of the logits of each image and its
mirror image, as dist_train's --eval-tta flip).

    .venv/bin/python launch/bench/eval_checkpoint.py resnet20 checkpoints/last.pt --data $CIFAR10_DIR
"""
import argparse, json, os, sys
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "python"))
import reference_models  # noqa: E402
from reference_train import MEAN, STD, read_split  # noqa: E402  (the same reading and constants)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default=os.environ.get("CIFAR10_DIR", ""))
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--tta", choices=["none", "flip"], default="none")
    a = ap.parse_args()
    images, labels = read_split(a.data, ["test_batch.bin"])
    model = reference_models.make(a.model)
    model.load_state_dict(torch.load(a.checkpoint, map_location="cpu")["model"], strict=True)
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(labels), a.batch):
            x = (images[i:i + a.batch].float() / 255 - MEAN) / STD
            logits = model(x)
            if a.tta == "flip":
                logits = (logits + model(x.flip(3))) / 2
            correct += int((logits.argmax(1) == labels[i:i + a.batch]).sum())
    print(json.dumps({"model": a.model, "checkpoint": a.checkpoint, "tta": a.tta,
                      "images": len(labels), "test_accuracy": correct / len(labels)}))


if __name__ == "__main__":
    main()
