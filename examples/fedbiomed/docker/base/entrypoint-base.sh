#!/bin/sh
# Runs as the image's user; the user policy made it at build time.
set -e
exec python -m fedbiomed
