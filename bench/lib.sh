# Helpers for bench/run.sh (sourced): timing, statistics, progress parsing.

say() { printf 'bench: %s\n' "$*" >&2; }

die() { say "error: $*"; exit 1; }

# timed LOG CMD...: runs CMD with stdout and stderr in LOG; prints the wall
# time in seconds. On failure prints the end of LOG and fails.
timed() {
  local log=$1 t0 t1
  shift
  t0=$(date +%s%N)
  if ! "$@" >"$log" 2>&1; then
    say "failed: $* (log: $log)"
    tail -n 30 "$log" >&2
    return 1
  fi
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}

# stats V...: "median min max" of the values.
stats() {
  printf '%s\n' "$@" | sort -g | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "nan nan nan"; exit }
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.6g %.6g %.6g\n", m, v[1], v[NR]
    }'
}

# mmm DIGITS V...: "median [min–max]" with DIGITS decimals ("median" alone
# for one value).
mmm() {
  local d=$1
  shift
  # shellcheck disable=SC2046
  set -- $(stats "$@") "$#"
  awk -v m="$1" -v lo="$2" -v hi="$3" -v n="$4" -v d="$d" 'BEGIN {
    f = "%." d "f"
    if (n == 1) printf f "\n", m
    else printf f " [" f "–" f "]\n", m, lo, hi
  }'
}

# count_list "x, y, z": how many items (0 for an empty list).
count_list() { printf '%s\n' "$1" | awk -F', ' '{ print ($0 == "" ? 0 : NF) }'; }

median() { stats "$@" | cut -d' ' -f1; }

# calc EXPR: awk arithmetic, printed with %.6g.
calc() { awk "BEGIN { printf \"%.6g\n\", $1 }"; }

# fixed DIGITS VALUE
fixed() { awk -v d="$1" -v v="$2" 'BEGIN { printf "%." d "f\n", v }'; }

# vertices LOG: the vertices of a plain progress log (see progress.awk).
vertices() { awk -f "$BENCH/progress.awk" "$1"; }

# steps_run LOG: the build steps (RUN, COPY, ADD) that ran (not CACHED),
# one label per distinct step, sorted: "node COPY", "node-gpu RUN", ...
# The component comes from the `# bench:<component>` marker; the only COPY
# of the stacks is node's app/node.txt.
steps_run() {
  vertices "$1" | awk -F'\t' '
    $3 == "DONE" && $5 ~ /^(RUN|COPY|ADD) / {
      kind = substr($5, 1, index($5, " ") - 1)
      comp = "?"
      if (match($5, /# bench:[A-Za-z0-9_.-]+$/)) comp = substr($5, RSTART + 8)
      else if ($5 ~ /app\/node\.txt/) comp = "node"
      else comp = $5
      print comp " " kind
    }' | sort -u
}

# base_vertices_run LOG: how many vertices of the base step ran (DONE).
base_vertices_run() {
  vertices "$1" | awk -F'\t' '$3 == "DONE" && $5 ~ /# bench:base$/ { n++ } END { print n + 0 }'
}

# cp_steps LOG COMPONENT...: seconds the engine spent on the steps of these
# components (the critical path), from the DONE durations in the log; a
# step seen under several vertices counts once, with its longest time.
cp_steps() {
  local log=$1
  shift
  vertices "$log" | awk -F'\t' -v want=" $* " '
    $3 == "DONE" && $5 ~ /^(RUN|COPY|ADD) / {
      comp = ""
      if (match($5, /# bench:[A-Za-z0-9_.-]+$/)) comp = substr($5, RSTART + 8)
      else if ($5 ~ /app\/node\.txt/) comp = "node"
      if (index(want, " " comp " ") && $4 > best[$5]) best[$5] = $4
    }
    END { for (k in best) s += best[k]; printf "%.1f\n", s }'
}
