#!/usr/bin/env bash
# Downloads the official CIFAR-10 binary archive into data/ and verifies its checksum
# (for users who are online). Usage: launch/scripts/get_cifar10.sh [DEST_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dest=${1:-$here/data}
url=https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz
md5=c32a1d4ab5d03f1284b67883e8d87530   # published on the CIFAR-10 page
mkdir -p "$dest"
archive="$dest/cifar-10-binary.tar.gz"
if [ ! -f "$archive" ]; then
  curl -fL --retry 3 -o "$archive.part" "$url"
  mv "$archive.part" "$archive"
fi
if ! echo "$md5  $archive" | md5sum -c -; then
  rm -f "$archive"  # a corrupt or partial download must not be reused by the next run
  echo "get_cifar10: $archive failed its checksum and was removed; run again to download it anew" >&2
  exit 1
fi
tar -xzf "$archive" -C "$dest"
echo "CIFAR-10 is in $dest/cifar-10-batches-bin; dist_train finds it there, or set CIFAR10_DIR"
