#!/usr/bin/env bash
# Stack build benchmarks on the real engine. Prints a Markdown table and
# writes it to bench/results/latest.md (see README.md, "Benchmarks"):
#
#   1. wall time of a Fed-BioMed-shaped stack of `sleep` steps against its
#      critical path, built by (a) a seed-style script of `docker buildx
#      build --load` calls, (b) Dockerfiles + `docker buildx bake` with
#      `target:` contexts, (c) `strata build` (its own BuildKit client),
#      (d) the Strata frontend image through `docker buildx bake`
#      (`strata bake`);
#   2. how many times the shared base's step ran in each;
#   3. rebuild after editing a file that only `node` copies, and a no-op
#      rebuild: wall time and the steps that ran again;
#   4. `strata llb` on stacks of 10 to 10,000 components, and a fully
#      cached solve of a chain through the Dockerfile and Strata frontends;
#   5. a fully cached solve of one image through either frontend, side by
#      side, and the frontend image's size;
#   6. the cost of a second platform: one CPU-bound step built for
#      linux/amd64 (native), linux/arm64 (qemu) and both in one build, on
#      the multi-platform dockerd (STRATA_MP_SOCKET).
#
# Each figure is the median of several runs with [min–max]. Nothing is
# asserted on timings. Needs the engine (scripts/engine.sh) and the
# frontend image (scripts/frontend-image.sh, run here when it is missing).
#
#   bench/run.sh                  # full: 3 runs of the builds, ~10-13 min
#   BENCH_QUICK=1 bench/run.sh    # smoke: steps / 10, 1 run, ~1 min
#
# Env: STRATA_BIN (default: cargo build --release, target/release/strata),
# BENCH_OUT (default bench/results/latest.md; quick: bench/results/quick.md),
# BENCH_RUNS (builds, default 3), BENCH_CHEAP_RUNS (default 5),
# BENCH_SCALE (step durations, default 1), BENCH_LLB_SIZES,
# BENCH_ENGINE_SIZES, BENCH_LLB_TIMEOUT (seconds per `strata llb`, 120),
# BENCH_KEEP=1 (keep the work directory and its logs).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"
# shellcheck source=bench/gen.sh
. "$BENCH/gen.sh"

QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 0 ] && QUICK=""
if [ -n "$QUICK" ]; then
  SCALE=${BENCH_SCALE:-0.1} RUNS=${BENCH_RUNS:-1} CHEAP=${BENCH_CHEAP_RUNS:-1}
  LLB_SIZES=${BENCH_LLB_SIZES:-10 100} ENGINE_SIZES=${BENCH_ENGINE_SIZES:-10}
  OUT=${BENCH_OUT:-$BENCH/results/quick.md} WARMUP=""
else
  SCALE=${BENCH_SCALE:-1} RUNS=${BENCH_RUNS:-3} CHEAP=${BENCH_CHEAP_RUNS:-5}
  LLB_SIZES=${BENCH_LLB_SIZES:-10 100 1000 10000} ENGINE_SIZES=${BENCH_ENGINE_SIZES:-10 100}
  OUT=${BENCH_OUT:-$BENCH/results/latest.md} WARMUP=1
fi
LLB_TIMEOUT=${BENCH_LLB_TIMEOUT:-120}
# A `strata llb` slower than this is not repeated.
LLB_REPEAT_LIMIT=15
FRONTEND=${STRATA_FRONTEND:-strata/frontend:latest}
unset STRATA_MIRRORS
export BUILDKIT_PROGRESS=plain
T_START=$(date +%s)

# Step durations (seconds), scaled.
D_BASE=$(calc "4 * $SCALE") D_NODE=$(calc "3 * $SCALE") D_GUI=$(calc "2 * $SCALE")
D_RES=$(calc "3 * $SCALE") D_GPU=$(calc "2 * $SCALE")
# The longest chain is base -> node -> node-gpu (by construction).
CP=$(calc "$D_BASE + $D_NODE + $D_GPU")
SUM=$(calc "$D_BASE + $D_NODE + $D_GUI + $D_RES + $D_GPU")
# What an edit to node's file must rebuild at least: node's and node-gpu's steps.
INC_CP=$(calc "$D_NODE + $D_GPU")
COMPONENTS="base node node-gpu node-gui researcher"

# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------
docker info --format '{{.ServerVersion}}' >/dev/null 2>&1 \
  || die "the engine is not running: run scripts/engine.sh first"
docker image inspect strata.local/busybox:1.36 >/dev/null 2>&1 \
  || die "strata.local/busybox:1.36 is missing: run scripts/engine.sh (base-images.sh)"
if ! docker image inspect "$FRONTEND" >/dev/null 2>&1; then
  say "frontend image $FRONTEND missing: scripts/frontend-image.sh"
  bash "$ROOT/scripts/frontend-image.sh" >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")
cleanup() {
  # Images replaced by later runs keep the bench label: remove those only.
  docker image prune -f --filter label=strata.bench=1 >/dev/null 2>&1 || true
  if [ -n "${BENCH_KEEP:-}" ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$WORK/logs"
LOGS=$WORK/logs

if [ -z "${STRATA_BIN:-}" ]; then
  say "cargo build --release --bin strata"
  (cd "$ROOT" && cargo build --release --bin strata -q) >&2
  STRATA_BIN=$ROOT/target/release/strata
fi
# A copy, so a rebuild by someone else during the run changes nothing.
cp "$STRATA_BIN" "$WORK/strata"
STRATA=$WORK/strata

FBM=$WORK/fbm
gen_fbm "$FBM" "$D_BASE" "$D_NODE" "$D_GUI" "$D_RES" "$D_GPU"
"$STRATA" check "$FBM/strata.toml" >"$LOGS/check.log" 2>&1 \
  || { cat "$LOGS/check.log" >&2; die "the bench stack does not check"; }

# One unique id per harness run: run ids and file contents never repeat.
TAG=$(date +%s%N | cut -c1-13)-$$

build_a() { RUN_ID=$1 bash "$FBM/seed-build.sh"; }
build_b() { (cd "$FBM" && RUN_ID=$1 docker buildx bake --progress=plain -f docker-bake.hcl); }
build_c() { "$STRATA" build "$FBM/strata.toml" --progress plain --arg runid="$1"; }
build_d() {
  "$STRATA" bake "$FBM/strata.toml" --frontend "$FRONTEND" --arg runid="$1" --arg tool=d \
    | docker buildx bake --progress=plain -f -
}
declare -A LABEL=(
  [a]="(a) seed script: 5 × \`docker buildx build --load\`"
  [b]="(b) Dockerfiles + \`docker buildx bake\`"
  [c]="(c) \`strata build\`"
  [d]="(d) Strata frontend through \`docker buildx bake\`"
)
# The order of the four builds in round R (rotates, so none is always first).
order() {
  case $(($1 % 4)) in
    1) echo a b c d ;;
    2) echo b c d a ;;
    3) echo c d a b ;;
    0) echo d a b c ;;
  esac
}

# distinct_base_ids TOOL: how many different /base-id the tool's 5 images hold.
distinct_base_ids() {
  local c
  for c in $COMPONENTS; do
    docker run --rm --network none "strata-bench/$1-$c:latest" cat /base-id
  done | sort -u | wc -l
}

# ---------------------------------------------------------------------------
# 1 + 2. Cold builds of the stack
# ---------------------------------------------------------------------------
if [ -n "$WARMUP" ]; then
  for t in a b c d; do
    say "part 1: warm-up ($t)"
    timed "$LOGS/warmup-$t.log" "build_$t" "$TAG-warmup-$t" >/dev/null
  done
fi
declare -A P1 P1CP BASE_IDS BASE_VTX LAST_RID
SENT_C=
for ((r = 1; r <= RUNS; r++)); do
  for t in $(order "$r"); do
    rid="$TAG-$t-$r"
    log="$LOGS/p1-$t-$r.log"
    s=$(timed "$log" "build_$t" "$rid")
    P1[$t]+=" $s"
    P1CP[$t]+=" $(cp_steps "$log" base node node-gpu)"
    BASE_VTX[$t]+=" $(base_vertices_run "$log")"
    BASE_IDS[$t]+=" $(distinct_base_ids "$t")"
    LAST_RID[$t]=$rid
    [ "$t" = c ] && SENT_C=$(grep -o 'the session sent the build context: .*' "$log" | tail -1)
    say "part 1: run $r/$RUNS ($t): ${s}s"
  done
done

# ---------------------------------------------------------------------------
# 3. Incremental: edit node's file; then a no-op rebuild
# ---------------------------------------------------------------------------
declare -A INC INC_STEPS NOOP NOOP_STEPS
for ((r = 1; r <= RUNS; r++)); do
  echo "node application $TAG edit $r" >"$FBM/app/node.txt"
  for t in $(order "$r"); do
    log="$LOGS/p3-edit-$t-$r.log"
    s=$(timed "$log" "build_$t" "${LAST_RID[$t]}")
    INC[$t]+=" $s"
    INC_STEPS[$t]=$(steps_run "$log" | paste -sd, | sed 's/,/, /g')
    say "part 3: edit $r/$RUNS ($t): ${s}s, ran: ${INC_STEPS[$t]}"
  done
  for t in $(order "$r"); do
    log="$LOGS/p3-noop-$t-$r.log"
    s=$(timed "$log" "build_$t" "${LAST_RID[$t]}")
    NOOP[$t]+=" $s"
    NOOP_STEPS[$t]=$(steps_run "$log" | paste -sd, | sed 's/,/, /g')
    say "part 3: no-op $r/$RUNS ($t): ${s}s, ran: ${NOOP_STEPS[$t]:-nothing}"
  done
done

# ---------------------------------------------------------------------------
# 4. LLB generation
# ---------------------------------------------------------------------------
declare -A LLB LLB_N LLB_NOTE
for shape in chain fan-out; do
  for n in $LLB_SIZES; do
    f=$WORK/stacks/$shape-$n.toml
    mkdir -p "$WORK/stacks"
    gen_stack "$f" "$n" "$shape"
    k=$shape-$n
    for ((i = 1; i <= CHEAP; i++)); do
      t0=$(date +%s%N)
      rc=0
      timeout "$LLB_TIMEOUT" "$STRATA" llb "$f" --target "c$((n - 1))" >/dev/null 2>"$LOGS/llb-$k.log" || rc=$?
      t1=$(date +%s%N)
      if [ "$rc" = 124 ]; then
        LLB_NOTE[$k]="> $LLB_TIMEOUT s (stopped)"
        break
      elif [ "$rc" != 0 ]; then
        tail -n 20 "$LOGS/llb-$k.log" >&2
        die "strata llb failed on $f"
      fi
      s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
      LLB[$k]+=" $s"
      LLB_N[$k]=$i
      awk -v s="$s" -v l="$LLB_REPEAT_LIMIT" 'BEGIN { exit !(s > l) }' && break
    done
    say "part 4: strata llb $k:${LLB[$k]:-} ${LLB_NOTE[$k]:-}"
  done
done

# Cached solves of the chain through each frontend (output: cache only).
solve_df() { (cd "$1" && docker buildx build --progress=plain --output type=cacheonly -f chain.Dockerfile --target "c$(($2 - 1))" .); }
solve_strata() {
  (cd "$1" && docker buildx build --progress=plain --output type=cacheonly \
    --build-arg BUILDKIT_SYNTAX="$FRONTEND" -f strata.toml --target "c$(($2 - 1))" .)
}
declare -A ENG_DF ENG_ST ENG_NOTE
for n in $ENGINE_SIZES; do
  d=$WORK/engine-$n
  mkdir -p "$d"
  gen_dockerfile_chain "$d/chain.Dockerfile" "$n"
  gen_stack "$d/strata.toml" "$n" chain
  say "part 4: warming the $n-stage chain (the first time, every step runs)"
  timed "$LOGS/eng-warm-df-$n.log" solve_df "$d" "$n" >/dev/null
  timed "$LOGS/eng-warm-st-$n.log" solve_strata "$d" "$n" >/dev/null
  for ((i = 1; i <= CHEAP; i++)); do
    ENG_DF[$n]+=" $(timed "$LOGS/eng-df-$n-$i.log" solve_df "$d" "$n")"
    ENG_ST[$n]+=" $(timed "$LOGS/eng-st-$n-$i.log" solve_strata "$d" "$n")"
    for l in "$LOGS/eng-df-$n-$i.log" "$LOGS/eng-st-$n-$i.log"; do
      [ -z "$(steps_run "$l")" ] || ENG_NOTE[$n]=" (some steps ran: not all cached)"
    done
  done
  say "part 4: cached solve, $n stages: dockerfile${ENG_DF[$n]}; strata${ENG_ST[$n]}"
done

# ---------------------------------------------------------------------------
# 5. Frontend overhead: `node` (base + node) fully cached, side by side
# ---------------------------------------------------------------------------
FRONT_RUNS=$([ -n "$QUICK" ] && echo "$CHEAP" || echo $((CHEAP + 2)))
solve_node_df() {
  (cd "$FBM" && docker buildx build --progress=plain --output type=cacheonly \
    -f df/node-multi.Dockerfile --target node --build-arg RUN_ID=frontend-overhead .)
}
solve_node_strata() {
  (cd "$FBM" && docker buildx build --progress=plain --output type=cacheonly \
    --build-arg BUILDKIT_SYNTAX="$FRONTEND" --build-arg runid=frontend-overhead \
    -f strata.toml --target node .)
}
timed "$LOGS/front-warm-df.log" solve_node_df >/dev/null
timed "$LOGS/front-warm-st.log" solve_node_strata >/dev/null
FR_DF="" FR_ST="" FR_DIFF="" FR_NOTE=""
for ((i = 1; i <= FRONT_RUNS; i++)); do
  if ((i % 2)); then
    a=$(timed "$LOGS/front-df-$i.log" solve_node_df)
    b=$(timed "$LOGS/front-st-$i.log" solve_node_strata)
  else
    b=$(timed "$LOGS/front-st-$i.log" solve_node_strata)
    a=$(timed "$LOGS/front-df-$i.log" solve_node_df)
  fi
  FR_DF+=" $a" FR_ST+=" $b" FR_DIFF+=" $(calc "$b - $a")"
  for l in "$LOGS/front-df-$i.log" "$LOGS/front-st-$i.log"; do
    [ -z "$(steps_run "$l")" ] || FR_NOTE=" (some steps ran: not all cached)"
  done
done
say "part 5: dockerfile$FR_DF; strata$FR_ST"
FE_SIZE=$(docker image inspect -f '{{.Size}}' "$FRONTEND")
FE_ID=$(docker image inspect -f '{{.Id}}' "$FRONTEND" | cut -c8-19)

# ---------------------------------------------------------------------------
# 6. A second platform under emulation (the multi-platform dockerd)
# ---------------------------------------------------------------------------
MP_SOCKET=${STRATA_MP_SOCKET:-/run/strata-mp/docker.sock}
MP_LOOP=$([ -n "$QUICK" ] && echo 20000 || echo 200000)
MP_PLATFORMS="linux/amd64 linux/arm64 linux/amd64,linux/arm64"
declare -A MP=()
MP_NOTE=""
if [ -S "$MP_SOCKET" ] && DOCKER_HOST=unix://$MP_SOCKET docker info >/dev/null 2>&1; then
  MP_FE=127.0.0.1:5000/strata-bench/frontend:$TAG
  docker tag "$FRONTEND" "$MP_FE" && docker push -q "$MP_FE" >/dev/null && docker rmi "$MP_FE" >/dev/null
  MPD=$WORK/mp
  mkdir -p "$MPD"
  {
    echo '[stack]'
    echo 'name = "bench-mp"'
    echo '[args]'
    echo 'runid = ""'
    echo '[component.loop]'
    echo 'from = "127.0.0.1:5000/strata/busybox:1.36"'
    echo 'env = { RUNID = "{runid}" }'
    echo "run = [\"echo \$RUNID; i=0; while [ \$i -lt $MP_LOOP ]; do i=\$((i + 1)); done\"]"
  } >"$MPD/strata.toml"
  solve_mp() {  # solve_mp PLATFORMS RUNID
    (cd "$MPD" && DOCKER_HOST=unix://$MP_SOCKET docker buildx build --progress=plain \
      --output type=cacheonly --platform "$1" --build-arg BUILDKIT_SYNTAX="$MP_FE" \
      --build-arg runid="$2" -f strata.toml --target loop .)
  }
  timed "$LOGS/mp-warm.log" solve_mp linux/amd64,linux/arm64 "warm-$TAG" >/dev/null
  for ((i = 1; i <= CHEAP; i++)); do
    for p in $MP_PLATFORMS; do
      MP[$p]+=" $(timed "$LOGS/mp-${p//[\/,]/-}-$i.log" solve_mp "$p" "$TAG-$i-$p")"
    done
  done
  say "part 6: amd64${MP[linux/amd64]}; arm64${MP[linux/arm64]}; both${MP[linux/amd64,linux/arm64]}"
else
  MP_NOTE="not measured: the multi-platform dockerd ($MP_SOCKET) does not answer (scripts/engine.sh starts it)"
  say "part 6: $MP_NOTE"
fi

# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------
ratio() { mmm 2 $(for v in $1; do calc "$v / $2"; done); }
T=$WORK/table.md
{
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  dirty=$(git -C "$ROOT" status --porcelain -- src crates Cargo.toml 2>/dev/null | head -1)
  echo "# Strata benchmarks"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC') · commit $commit${dirty:+ (+ uncommitted changes in src/)} ·" \
    "Docker $(docker version --format '{{.Server.Version}}') ·" \
    "buildx $(docker buildx version | awk '{print $2}') · $(nproc) CPUs ·" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end ·" \
    "${QUICK:+QUICK (smoke) · }step scale $SCALE · $RUNS run(s) of each build, $CHEAP of cheap figures."
  echo
  echo "Every figure: median [min–max] in seconds unless said otherwise. Ratios are to the critical path, computed run by run."
  echo
  echo "## 1. Stack build time against the critical path"
  echo
  echo "A stack shaped like Fed-BioMed's on \`strata.local/busybox:1.36\`: base (${D_BASE} s) → node (${D_NODE} s), node-gui (${D_GUI} s), researcher (${D_RES} s); node → node-gpu (${D_GPU} s)." \
    "Every step is a \`sleep\` with no network; node also copies one file." \
    "Each build has a new run id in the base step, so every step runs. \"CP steps\" is what the engine itself spent on the steps of the critical path (DONE durations in the progress output); the rest of the wall time is orchestration: CLI, frontends, image export."
  echo
  echo "| build | wall s | × critical path | CP steps s |"
  echo "|---|---|---|---|"
  echo "| critical path (base → node → node-gpu) | $(fixed 1 "$CP") | 1.00 | |"
  echo "| sum of all steps (what a sequential script costs) | $(fixed 1 "$SUM") | $(fixed 2 "$(calc "$SUM / $CP")") | |"
  for t in a b c d; do
    echo "| ${LABEL[$t]} | $(mmm 1 ${P1[$t]}) | $(ratio "${P1[$t]}" "$CP") | $(mmm 1 ${P1CP[$t]}) |"
  done
  mc=$(median ${P1[c]}) ma=$(median ${P1[a]}) mb=$(median ${P1[b]}) md=$(median ${P1[d]})
  rc=$(calc "$mc / $CP")
  echo
  echo "Goal (c) ≤ 1.05 × critical path: $(awk -v r="$rc" 'BEGIN { print (r <= 1.05 ? "met" : "missed") }') ($(fixed 2 "$rc") ×)." \
    "(c) faster than (a): $(awk -v c="$mc" -v o="$ma" 'BEGIN { print (c < o ? "yes" : "no") }') ($(fixed 2 "$(calc "$mc / $ma")") × its time);" \
    "than (b): $(awk -v c="$mc" -v o="$mb" 'BEGIN { print (c < o ? "yes" : "no") }') ($(fixed 2 "$(calc "$mc / $mb")") ×);" \
    "than (d), the same stack through bake: $(awk -v c="$mc" -v o="$md" 'BEGIN { print (c < o ? "yes" : "no") }') ($(fixed 2 "$(calc "$mc / $md")") ×)."
  echo
  echo "Context transfer of (c), counted by its session's file-sync service (files and bytes it sent for BuildKit's requests; node's copy reads app/node.txt): ${SENT_C:-not reported}."
  echo
  echo "## 2. Shared base executed once"
  echo
  echo "The base step writes a fresh uuid to /base-id: the number of distinct /base-id values among a build's 5 images is the number of times the base step ran. Highest value over the $RUNS run(s); the progress column counts the base step's vertices that ran (not CACHED)."
  echo
  echo "| build | base step executions (distinct /base-id) | base vertices run (progress) | images |"
  echo "|---|---|---|---|"
  for t in a b c d; do
    ids=$(stats ${BASE_IDS[$t]} | cut -d' ' -f3)
    vtx=$(stats ${BASE_VTX[$t]} | cut -d' ' -f3)
    echo "| ${LABEL[$t]} | $ids | $vtx | 5 |"
  done
  echo
  echo "## 3. Incremental rebuild"
  echo
  echo "After the builds of part 1: change app/node.txt (copied by node only) and rebuild the whole stack with the same run id; then rebuild again with nothing changed." \
    "The edit path, the least an edit must rebuild, is node's copy and sleep and node-gpu's sleep: $(fixed 1 "$INC_CP") s. Steps that ran: build steps (RUN, COPY) not CACHED in the progress output, of 6."
  echo
  echo "| build | edit: wall s | × edit path | edit: steps that ran | no-op: wall s | no-op: steps that ran |"
  echo "|---|---|---|---|---|---|"
  for t in a b c d; do
    echo "| ${LABEL[$t]} | $(mmm 1 ${INC[$t]}) | $(ratio "${INC[$t]}" "$INC_CP") | $(count_list "${INC_STEPS[$t]}")${INC_STEPS[$t]:+ (${INC_STEPS[$t]})} | $(mmm 1 ${NOOP[$t]}) | $(count_list "${NOOP_STEPS[$t]}")${NOOP_STEPS[$t]:+ (${NOOP_STEPS[$t]})} |"
  done
  echo
  echo "## 4. LLB generation"
  echo
  echo "\`strata llb STACK --target <last>\` (process wall time: read, check, lint, resolve, lower, marshal) on generated stacks whose components each have one \`run\`: a chain (each FROM the previous one, so the last needs all of them) and a fan-out (each FROM c0)." \
    "µs per added component: the growth from the size above, divided by the components added (linear cost keeps it flat; process start-up cancels out)." \
    "Runs slower than ${LLB_REPEAT_LIMIT} s are not repeated; \`strata llb\` is stopped after ${LLB_TIMEOUT} s."
  scale_file=$BENCH/results/llb-scale.txt
  if [ -f "$scale_file" ]; then
    echo "The last column is bench/llb-scale.sh's in-process load + lower of the leaf (its stacks have apt, pip, copy and run in each component; bench/results/llb-scale.txt), for the sizes it has."
  fi
  echo
  echo "| shape | components | strata llb ms | µs per component | µs per added component | runs | llb-scale.sh: load + lower ms |"
  echo "|---|---|---|---|---|---|---|"
  for shape in chain fan-out; do
    prev_n="" prev_t=""
    for n in $LLB_SIZES; do
      k=$shape-$n
      ref="–"
      if [ -f "$scale_file" ]; then
        ref=$(awk -v s="$shape" -v n="$n" '$1 == s && $2 == "leaf" && $3 == n { print ($4 ~ /^[0-9.]+$/ ? $4 : "not run"); exit }' "$scale_file")
        ref=${ref:-–}
      fi
      if [ -n "${LLB[$k]:-}" ]; then
        med=$(median ${LLB[$k]})
        ms=$(mmm 1 $(for v in ${LLB[$k]}; do calc "$v * 1000"; done))
        us=$(fixed 1 "$(calc "$med * 1e6 / $n")")
        added="–"
        [ -n "$prev_t" ] && added=$(fixed 1 "$(calc "($med - $prev_t) * 1e6 / ($n - $prev_n)")")
        echo "| $shape | $n | $ms | $us | $added | ${LLB_N[$k]} | $ref |"
        prev_n=$n prev_t=$med
      else
        low=$(fixed 0 "$(calc "$LLB_TIMEOUT * 1e6 / $n")")
        added="–"
        [ -n "$prev_t" ] && added="> $(fixed 0 "$(calc "($LLB_TIMEOUT - $prev_t) * 1e6 / ($n - $prev_n)")")"
        echo "| $shape | $n | ${LLB_NOTE[$k]} | > $low | $added | 0 | $ref |"
        prev_n="" prev_t=""
      fi
    done
  done
  echo
  echo "A fully cached solve of the chain's last stage (\`docker buildx build --output type=cacheonly\`): one multi-stage Dockerfile (BuildKit's built-in Dockerfile frontend) against the equivalent stack file (\`BUILDKIT_SYNTAX=$FRONTEND\`), alternating, $CHEAP run(s) each. Larger chains are left out: the first (cold) build of each runs every step, one container per stage."
  echo
  echo "| stages | Dockerfile frontend s | Strata frontend s | Strata / Dockerfile |"
  echo "|---|---|---|---|"
  for n in $ENGINE_SIZES; do
    echo "| $n | $(mmm 2 ${ENG_DF[$n]}) | $(mmm 2 ${ENG_ST[$n]}) | $(fixed 2 "$(calc "$(median ${ENG_ST[$n]}) / $(median ${ENG_DF[$n]})")")${ENG_NOTE[$n]:-} |"
  done
  echo
  echo "## 5. Frontend overhead"
  echo
  echo "A fully cached solve of \`node\` (base + node) through each frontend (\`--output type=cacheonly\`), alternating, $FRONT_RUNS run(s) each${FR_NOTE}."
  echo
  echo "| path | cached solve s |"
  echo "|---|---|"
  echo "| Dockerfile (built-in frontend), df/node-multi.Dockerfile | $(mmm 2 $FR_DF) |"
  echo "| Strata frontend ($FRONTEND, image $FE_ID), strata.toml | $(mmm 2 $FR_ST) |"
  echo "| Strata − Dockerfile, paired by run | $(mmm 2 $FR_DIFF) |"
  echo
  echo "Frontend image size: $(fixed 2 "$(calc "$FE_SIZE / 1048576")") MiB ($FE_SIZE bytes, \`docker image inspect -f '{{.Size}}' $FRONTEND\`)."
  echo
  echo "## 6. A second platform under emulation"
  echo
  if [ -n "$MP_NOTE" ]; then
    echo "$MP_NOTE."
  else
    echo "One component on \`127.0.0.1:5000/strata/busybox:1.36\` (an amd64 + arm64 index) whose step counts to $MP_LOOP in busybox sh, built through the frontend (\`--output type=cacheonly\`, a new run id each time so the step runs) on the multi-platform dockerd: linux/amd64 runs natively, linux/arm64 under qemu-user-static. $CHEAP run(s) each."
    echo
    echo "| platforms | wall s | × linux/amd64 |"
    echo "|---|---|---|"
    amd=$(median ${MP[linux/amd64]})
    for p in $MP_PLATFORMS; do
      echo "| $p | $(mmm 2 ${MP[$p]}) | $(fixed 2 "$(calc "$(median ${MP[$p]}) / $amd")") |"
    done
  fi
  echo
  echo "Harness wall time: $(($(date +%s) - T_START)) s."
} >"$T"

mkdir -p "$(dirname "$OUT")"
cp "$T" "$OUT"
cat "$T"
say "wrote $OUT"
