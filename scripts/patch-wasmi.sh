#!/usr/bin/env bash
# Prepares the wasmi the kernel crate builds with (the [patch] in kmod/rust/Cargo.toml):
# wasmi's own source from the cargo registry with third_party/wasmi/*.patch applied, in
# kmod/rust/target/patched/wasmi. Quick when it is there already.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(awk '/^name = "wasmi"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$root/kmod/rust/Cargo.lock")
out=$root/kmod/rust/target/patched/wasmi
patches=("$root"/third_party/wasmi/*.patch)
want="$version $(cat "${patches[@]}" | sha256sum | cut -d' ' -f1)"
[ "$(cat "$out/.patched" 2>/dev/null)" = "$want" ] && exit 0
# The main workspace depends on the same wasmi (unpatched): fetching it unpacks the source.
cargo fetch --manifest-path "$root/Cargo.toml" --quiet
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"wasmi-$version" | head -1)
[ -d "$src" ] || { echo "patch-wasmi: wasmi $version not in the cargo registry" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -r "$src" "$out"
for p in "${patches[@]}"; do
	patch --quiet --directory="$out" --strip=1 <"$p"
done
echo "$want" >"$out/.patched"
echo "patch-wasmi: wasmi $version patched in $out"
