#!/usr/bin/env bash
# A command run in turn in this working tree and in a clean clone of another commit, round after round.
#
#     bash benchmarks/ab.sh REF ROUNDS -- COMMAND [ARGS...]
#
# REF is a git commit, tag or branch of this repository. It is cloned into a temporary folder and set up there
# (`make setup`: its own virtual environment, so each side imports its own code); then COMMAND runs in REF's
# clone and in this tree alternately, ROUNDS times each, with each side's environment active. Interleaving puts
# both under the same load: on a 2-core VM whole-run figures move by 10-30% between runs minutes apart. Paths in
# COMMAND are relative to each side's root; give data files as absolute paths (a clone has no ../shared).
# Example: bash benchmarks/ab.sh 77e307c 3 -- python benchmarks/train_step.py --mnist /abs/path/mnist.npz
set -euo pipefail
if [ $# -lt 4 ] || [ "$3" != "--" ]; then
    echo "usage: bash benchmarks/ab.sh REF ROUNDS -- COMMAND [ARGS...]" >&2
    exit 2
fi
ref=$1
rounds=$2
shift 3
case $rounds in
    '' | *[!0-9]* | 0) echo "ab.sh: ROUNDS must be a whole number >= 1, got '$rounds'" >&2; exit 2 ;;
esac
here=$(git rev-parse --show-toplevel)
if ! git -C "$here" rev-parse --verify --quiet "$ref^{commit}" >/dev/null; then
    echo "ab.sh: no commit '$ref' in this repository" >&2
    exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$here" "$work/ref"
git -C "$work/ref" checkout -q "$(git -C "$here" rev-parse "$ref^{commit}")"
echo "# setting up $ref in $work/ref (make setup)"
(cd "$work/ref" && make setup >"$work/setup.log" 2>&1) || { tail -20 "$work/setup.log" >&2; exit 1; }
this="this tree ($(git -C "$here" rev-parse --short HEAD)$(git -C "$here" diff --quiet HEAD || echo ', modified'))"
for round in $(seq "$rounds"); do
    for side in ref this; do
        if [ "$side" = ref ]; then root=$work/ref; name="$ref"; else root=$here; name=$this; fi
        echo "## $name, round $round: $*"
        (cd "$root" && source .venv/bin/activate && "$@")
    done
done
