#!/usr/bin/env bash
# Prepares .gpu_data/1..3: CIFAR-10 split into parts that each fit in one device call (the device
# tool carries at most 64 MiB per call, and the data is 184 MB), for launch/scripts/gpu_check.sh's
# accuracy step. Hard links where possible (same file system), so nothing is copied; the folder
# is ignored by git and never committed.
#
#   here:   bash launch/scripts/gpu_data.sh          # CIFAR10_DIR, or ../shared/data/cifar-10-batches-bin
#   device, one call each, less than 30 s apart (the machine stays warm that long; carried
#   ignored paths stay there while it is warm):
#           run(command="true", carry=[".gpu_data/1"])
#           run(command="true", carry=[".gpu_data/2"])
#           run(command="true", carry=[".gpu_data/3"])
#           run(command="DT_GPU_STEPS=accuracy bash launch/scripts/gpu_check.sh", carry=[".gpu_carry"], timeout_s=540)
# gpu_check.sh checks the reassembled files against SHA256SUMS before training on them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=${CIFAR10_DIR:-$ROOT/../shared/data/cifar-10-batches-bin}
DEST=$ROOT/.gpu_data
for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin \
         test_batch.bin batches.meta.txt SHA256SUMS; do
  [ -f "$SRC/$f" ] || { echo "gpu_data: $SRC/$f is missing (set CIFAR10_DIR)" >&2; exit 2; }
done
rm -rf "$DEST"
mkdir -p "$DEST/1" "$DEST/2" "$DEST/3"
put() { ln "$SRC/$1" "$DEST/$2/$1" 2>/dev/null || cp "$SRC/$1" "$DEST/$2/$1"; }
put data_batch_1.bin 1; put data_batch_2.bin 1; put SHA256SUMS 1
put data_batch_3.bin 2; put data_batch_4.bin 2
put data_batch_5.bin 3; put test_batch.bin 3; put batches.meta.txt 3
du -sh "$DEST"/* | sed 's/^/gpu_data: /'
