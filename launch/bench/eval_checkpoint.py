#!/usr/bin/env python3
"""Evaluates a dist_train checkpoint with PyTorch alone: the model's Python twin
(tests/python/reference_models.py), fp32, on the CIFAR-10 test set read from the binary files.
An independent check of the accuracy dist_train reports (its evaluation may run in bf16), with
or without test-time augmentation (--tta flip: the mean of the logits of each image and its
mirror image, as dist_train's --eval-tta flip). The input is preprocessed as the checkpoint's
"preprocess" entry says; a file without one (written before it existed, or a bare
torch.save(model.state_dict())) takes --normalize, by default the CIFAR-10 mean and std, as
dist_train --eval-only does.

    .venv/bin/python launch/bench/eval_checkpoint.py resnet20 checkpoints/last.pt --data $CIFAR10_DIR
"""
import argparse, json, os, sys
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "python"))
import reference_models  # noqa: E402
from reference_train import MEAN, STD, read_split  # noqa: E402  (the same reading and constants)


def preprocess_of(checkpoint, normalize):
    """(scale, mean, std) as [1, 3, 1, 1] tensors: the stored contract, else --normalize's."""
    contract = checkpoint.get("preprocess") if "model" in checkpoint else None
    if contract is not None:
        if normalize != "auto":
            sys.exit(f"the checkpoint says how to preprocess its input: --normalize {normalize} contradicts it")
        assert contract["layout"] == "NCHW RGB", contract["layout"]
        mean, std = contract["mean"], contract["std"]
        return contract["scale"], torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    use = "cifar" if normalize == "auto" else normalize
    print(f"no 'preprocess' entry in the checkpoint: --normalize {use}", file=sys.stderr)
    if use == "none":
        return 1 / 255, torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    return 1 / 255, MEAN, STD


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default=os.environ.get("CIFAR10_DIR", ""))
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--tta", choices=["none", "flip"], default="none")
    ap.add_argument("--normalize", choices=["auto", "cifar", "none"], default="auto",
                    help="for a file without a 'preprocess' entry (auto: cifar)")
    a = ap.parse_args()
    images, labels = read_split(a.data, ["test_batch.bin"])
    model = reference_models.make(a.model)
    checkpoint = torch.load(a.checkpoint, map_location="cpu")
    scale, mean, std = preprocess_of(checkpoint, a.normalize)
    # A dist_train checkpoint, or a bare state dict (torch.save(model.state_dict())).
    model.load_state_dict(checkpoint["model"] if "model" in checkpoint else checkpoint, strict=True)
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(labels), a.batch):
            x = (images[i:i + a.batch].float() * scale - mean) / std
            logits = model(x)
            if a.tta == "flip":
                logits = (logits + model(x.flip(3))) / 2
            correct += int((logits.argmax(1) == labels[i:i + a.batch]).sum())
    print(json.dumps({"model": a.model, "checkpoint": a.checkpoint, "tta": a.tta,
                      "images": len(labels), "test_accuracy": correct / len(labels)}))


if __name__ == "__main__":
    main()
