#!/bin/sh
# Starts an EggRoll service (placeholder): cluster-manager, node-manager or rollsite.
set -e
echo "eggroll ${1:-cluster-manager} (EGGROLL_HOME=${EGGROLL_HOME})"
