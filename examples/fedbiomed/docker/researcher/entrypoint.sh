#!/bin/sh
set -e
echo "starting Fed-BioMed researcher"
exec python -m fedbiomed
