# Fixtures for bench/run.sh (sourced). Everything is generated, so the step
# durations can be scaled (BENCH_SCALE) and the stacks sized.

# gen_fbm DIR BASE NODE GUI RESEARCHER GPU
# The Fed-BioMed-shaped stack (base -> node, node-gui, researcher;
# node -> node-gpu) on busybox, three ways:
#   DIR/strata.toml        (c) `strata build`
#   DIR/df/*.Dockerfile    one Dockerfile per image, `FROM ${BASE_IMAGE}`
#   DIR/seed-build.sh      (a) docker buildx build --load, in build order
#   DIR/docker-bake.hcl    (b) bake, contexts = { base = "target:base" }
#   DIR/df/node-multi.Dockerfile  base + node in one file (part 5)
# Every step is a `sleep` with no network. The base step also writes the
# run id (RUN_ID / --arg runid: a new one busts the cache of the whole
# stack) and a fresh uuid to /base-id: the images of one build share one
# /base-id exactly when the base step ran once. Each command ends with a
# `# bench:<component>` marker so the progress output says whose step it is.
gen_fbm() {
  local d=$1 base=$2 node=$3 gui=$4 res=$5 gpu=$6
  mkdir -p "$d/df" "$d/app"
  [ -f "$d/app/node.txt" ] || echo "node application v0" >"$d/app/node.txt"
  local base_cmd="echo \"\$RUN_ID\" > /run-id && cat /proc/sys/kernel/random/uuid > /base-id && sleep $base # bench:base"

  cat >"$d/strata.toml" <<TOML
# syntax=strata/frontend
# bench/run.sh: a stack shaped like Fed-BioMed's, every step a sleep.
[stack]
name = "bench-fbm"
image = "strata-bench/{tool}-{component}:latest"

[args]
runid = "none"
tool = "c"

[component.base]
from = "strata.local/busybox:1.36"
user = "root"
labels = { "strata.bench" = "1" }
run = [{ cmd = '$base_cmd', env = { RUN_ID = "{runid}" }, network = "none" }]

[component.node]
from = "base"
user = "root"
copy = [{ src = "app/node.txt", dst = "/app/node.txt" }]
run = [{ cmd = "sleep $node # bench:node", network = "none" }]

[component.node-gui]
from = "base"
user = "root"
run = [{ cmd = "sleep $gui # bench:node-gui", network = "none" }]

[component.researcher]
from = "base"
user = "root"
run = [{ cmd = "sleep $res # bench:researcher", network = "none" }]

[component.node-gpu]
from = "node"
user = "root"
run = [{ cmd = "sleep $gpu # bench:node-gpu", network = "none" }]
TOML

  cat >"$d/df/base.Dockerfile" <<DF
FROM strata.local/busybox:1.36
ARG RUN_ID=none
LABEL strata.bench=1
RUN --network=none $base_cmd
DF
  local c parent secs
  for c in node node-gui researcher node-gpu; do
    case $c in
      node) parent=base secs=$node ;;
      node-gui) parent=base secs=$gui ;;
      researcher) parent=base secs=$res ;;
      node-gpu) parent=node secs=$gpu ;;
    esac
    {
      echo "ARG BASE_IMAGE=strata-bench/a-$parent:latest"
      echo 'FROM ${BASE_IMAGE}'
      [ "$c" = node ] && echo "COPY app/node.txt /app/node.txt"
      echo "RUN --network=none sleep $secs # bench:$c"
    } >"$d/df/$c.Dockerfile"
  done

  cat >"$d/df/node-multi.Dockerfile" <<DF
FROM strata.local/busybox:1.36 AS base
ARG RUN_ID=none
LABEL strata.bench=1
RUN --network=none $base_cmd

FROM base AS node
COPY app/node.txt /app/node.txt
RUN --network=none sleep $node # bench:node
DF

  cat >"$d/seed-build.sh" <<'SH'
#!/usr/bin/env bash
# A seed project's build script: one `docker build` per image, in build
# order, each FROM the tag the previous one produced.
set -euo pipefail
cd "$(dirname "$0")"
: "${RUN_ID:?}"
build() { docker buildx build --load --progress=plain "$@" .; }
build -f df/base.Dockerfile --build-arg RUN_ID="$RUN_ID" -t strata-bench/a-base:latest
build -f df/node.Dockerfile --build-arg BASE_IMAGE=strata-bench/a-base:latest -t strata-bench/a-node:latest
build -f df/node-gpu.Dockerfile --build-arg BASE_IMAGE=strata-bench/a-node:latest -t strata-bench/a-node-gpu:latest
build -f df/node-gui.Dockerfile --build-arg BASE_IMAGE=strata-bench/a-base:latest -t strata-bench/a-node-gui:latest
build -f df/researcher.Dockerfile --build-arg BASE_IMAGE=strata-bench/a-base:latest -t strata-bench/a-researcher:latest
SH

  cat >"$d/docker-bake.hcl" <<'HCL'
# The same Dockerfiles in one bake session: each parent is a named
# context `target:<parent>`, so bake builds the graph, not a tag order.
variable "RUN_ID" { default = "none" }
group "default" { targets = ["base", "node", "node-gpu", "node-gui", "researcher"] }
target "_common" {
  context = "."
  output  = ["type=docker"]
}
target "base" {
  inherits   = ["_common"]
  dockerfile = "df/base.Dockerfile"
  args       = { RUN_ID = RUN_ID }
  tags       = ["strata-bench/b-base:latest"]
}
target "node" {
  inherits   = ["_common"]
  dockerfile = "df/node.Dockerfile"
  contexts   = { base = "target:base" }
  args       = { BASE_IMAGE = "base" }
  tags       = ["strata-bench/b-node:latest"]
}
target "node-gpu" {
  inherits   = ["_common"]
  dockerfile = "df/node-gpu.Dockerfile"
  contexts   = { node = "target:node" }
  args       = { BASE_IMAGE = "node" }
  tags       = ["strata-bench/b-node-gpu:latest"]
}
target "node-gui" {
  inherits   = ["_common"]
  dockerfile = "df/node-gui.Dockerfile"
  contexts   = { base = "target:base" }
  args       = { BASE_IMAGE = "base" }
  tags       = ["strata-bench/b-node-gui:latest"]
}
target "researcher" {
  inherits   = ["_common"]
  dockerfile = "df/researcher.Dockerfile"
  contexts   = { base = "target:base" }
  args       = { BASE_IMAGE = "base" }
  tags       = ["strata-bench/b-researcher:latest"]
}
HCL
}

# gen_stack FILE N SHAPE: a stack of N components c0..c(N-1), each with one
# `run` (echo, no network); chain: each FROM the previous one; fan-out:
# every one FROM c0. The target that needs them all is c(N-1) (chain).
gen_stack() {
  awk -v n="$2" -v shape="$3" 'BEGIN {
    printf "# syntax=strata/frontend\n[stack]\nname = \"bench-%s-%d\"\nimage = \"strata-bench/%s%d-{component}:latest\"\n\n", shape, n, shape, n
    for (i = 0; i < n; i++) {
      from = (i == 0) ? "strata.local/busybox:1.36" : (shape == "chain" ? "c" (i - 1) : "c0")
      printf "[component.c%d]\nfrom = \"%s\"\nuser = \"root\"\nrun = [{ cmd = \"echo %d > /c%d\", network = \"none\" }]\n\n", i, from, i, i
    }
  }' >"$1"
}

# gen_dockerfile_chain FILE N: the same chain as one multi-stage Dockerfile.
gen_dockerfile_chain() {
  awk -v n="$2" 'BEGIN {
    for (i = 0; i < n; i++) {
      from = (i == 0) ? "strata.local/busybox:1.36" : "c" (i - 1)
      printf "FROM %s AS c%d\nRUN --network=none echo %d > /c%d\n\n", from, i, i, i
    }
  }' >"$1"
}
