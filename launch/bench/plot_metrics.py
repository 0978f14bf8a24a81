#!/usr/bin/env python3
"""Plots the metrics.jsonl of one or several dist_train runs into one PNG.

Six panels: train_loss, test_accuracy and images_per_s against the step (top row) and against
the wall-clock `seconds` (bottom row), one line per run. Epochs without evaluation have
test_accuracy null; those points are skipped.

Usage: launch/bench/plot_metrics.py RUN [RUN...] [-o out.png] [--labels A B ...]
  RUN is a run's --log-dir (holding metrics.jsonl) or a metrics.jsonl file; a run's label is its
  directory's name unless --labels gives one per run.
Bad input (a missing or empty file, a malformed line) prints one line on stderr and exits 2.
Runs with the project venv: .venv/bin/python launch/bench/plot_metrics.py runs/a runs/b -o ab.png
"""
import argparse
import json
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

METRICS = [("train_loss", "train loss"), ("test_accuracy", "test accuracy"),
           ("images_per_s", "images/s")]
AXES = [("step", "step"), ("seconds", "wall time (s)")]


class InputError(Exception):
    """Bad input: reported as one line, exit code 2."""


def metrics_path(arg):
    """The metrics.jsonl that a command-line RUN names, and the run's default label."""
    path = Path(arg)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return path, path.resolve().parent.name


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def read_metrics(path):
    """The records of one metrics.jsonl, in file order; blank lines are ignored."""
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read: {e}") from e
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{number}: malformed JSON: {e.msg}") from e
        if not isinstance(record, dict):
            raise InputError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        for key, _ in AXES:
            if not is_number(record.get(key)):
                raise InputError(f"{path}:{number}: '{key}' is missing or not a number")
        for key, _ in METRICS:
            value = record.get(key)
            if value is not None and not is_number(value):
                raise InputError(f"{path}:{number}: '{key}' is not a number or null")
        records.append(record)
    if not records:
        raise InputError(f"{path}: no metrics (empty file)")
    return records


def plot(runs, out):
    """runs: [(label, records)]. Writes the 2x3 figure to `out`."""
    fig, axes = plt.subplots(len(AXES), len(METRICS), figsize=(15, 8), squeeze=False)
    for row, (x_key, x_label) in enumerate(AXES):
        for col, (y_key, y_label) in enumerate(METRICS):
            ax = axes[row][col]
            for i, (label, records) in enumerate(runs):
                points = [(r[x_key], r[y_key]) for r in records if r.get(y_key) is not None]
                if points:
                    xs, ys = zip(*points)
                    ax.plot(xs, ys, color=f"C{i % 10}", marker="o", markersize=3)
            ax.set_xlabel(x_label)
            ax.set_ylabel(y_label)
            ax.set_title(f"{y_label} vs {x_label}")
            ax.grid(True, alpha=0.3)
            if y_key == "test_accuracy":
                ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    # One legend for the figure: a run has the same colour in every panel.
    handles = [Line2D([], [], color=f"C{i % 10}", marker="o", markersize=3, label=label)
               for i, (label, _) in enumerate(runs)]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 6), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    try:
        fig.savefig(out, dpi=100)
    except OSError as e:
        raise InputError(f"{out}: cannot write: {e}") from e
    finally:
        plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Plot dist_train metrics.jsonl files (train loss, test accuracy, images/s "
                    "against step and wall time) into one PNG.")
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="a run's log directory (with metrics.jsonl) or a metrics.jsonl file")
    parser.add_argument("-o", "--output", default="metrics.png",
                        help="the PNG to write (default: metrics.png)")
    parser.add_argument("--labels", nargs="+", metavar="LABEL",
                        help="one legend label per run (default: each run's directory name)")
    args = parser.parse_args(argv)
    prog = Path(sys.argv[0]).name
    try:
        if args.labels is not None and len(args.labels) != len(args.runs):
            raise InputError(f"{len(args.labels)} labels for {len(args.runs)} runs")
        runs = []
        for i, arg in enumerate(args.runs):
            path, label = metrics_path(arg)
            runs.append((args.labels[i] if args.labels else label, read_metrics(path)))
        plot(runs, args.output)
    except InputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    print(f"{prog}: wrote {args.output} ({len(runs)} run(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
