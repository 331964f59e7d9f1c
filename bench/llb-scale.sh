#!/bin/sh
# How `load` + `lower` scale with the number of components: synthetic
# chains and fan-outs of 10 to 10,000 components (see benches/lowering.rs).
# Prints the table and writes it to bench/results/llb-scale.txt.
#
#   bench/llb-scale.sh              # 10, 100, 1,000 and 10,000 components
#   bench/llb-scale.sh 10 100       # only these sizes (no depth probe)
#   bench/llb-scale.sh --split 4000 # load / lower / drop of one chain leaf
set -eu
cd "$(dirname "$0")/.."
exec cargo bench --bench lowering -- "$@"
