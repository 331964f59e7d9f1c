#!/bin/sh
set -e
echo "starting Fed-BioMed node ${FBM_NODE_START_OPTIONS:-}"
exec python -m fedbiomed
