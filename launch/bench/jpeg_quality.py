#!/usr/bin/env python3
"""Estimates the JPEG quality that the CIFAR-10 copy went through (its README says it was decoded
from JPEG files). A JPEG stores each 8x8 block's DCT coefficients as multiples of a quantisation
step; after decoding, the coefficients of the luminance plane still cluster on those multiples.
For a few low frequencies this finds the step with the strongest clustering and compares it with
the standard (IJG) luminance table, whose scale gives the quality (libjpeg: 50% scale = quality 75).

    .venv/bin/python launch/bench/jpeg_quality.py --data $CIFAR10_DIR
"""
import argparse, os
import numpy as np

STD_LUMA = np.array([[16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
                     [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
                     [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
                     [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("CIFAR10_DIR", ""))
    ap.add_argument("--images", type=int, default=3000)
    a = ap.parse_args()
    raw = np.fromfile(os.path.join(a.data, "test_batch.bin"), dtype=np.uint8).reshape(-1, 3073)
    rgb = raw[: a.images, 1:].reshape(-1, 3, 32, 32).astype(np.float64)
    y = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2] - 128  # JFIF luminance
    dct = np.array([[np.sqrt((1 if k == 0 else 2) / 8) * np.cos((2 * n + 1) * k * np.pi / 16)
                     for n in range(8)] for k in range(8)])
    blocks = y.reshape(-1, 4, 8, 4, 8).transpose(0, 1, 3, 2, 4).reshape(-1, 8, 8)
    coef = np.einsum("ij,bjk,lk->bil", dct, blocks, dct)
    scales = []
    for u, v in [(0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (2, 2)]:
        c = coef[:, u, v]
        # cos(2 pi c / q) averages to 1 when every coefficient is a multiple of q; a multiple of
        # the true step scores as well as the step, so take the largest step that scores well.
        scores = {q: float(np.mean(np.cos(2 * np.pi * c / q))) for q in range(1, 64)}
        step = max(q for q, s in scores.items() if s > 0.9 * max(scores.values()))
        scales.append(step / STD_LUMA[u, v])
        print(f"frequency ({u},{v}): step {step} (clustering {scores[step]:.2f}), standard {STD_LUMA[u, v]}")
    scale = float(np.median(scales)) * 100
    quality = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    print(f"table scale {scale:.0f}% -> JPEG quality about {quality:.0f}")


if __name__ == "__main__":
    main()
