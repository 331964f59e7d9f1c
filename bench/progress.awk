# Reads BuildKit's plain progress output (`--progress=plain`, one or more
# builds concatenated) and prints one line per vertex that has a bracketed
# name, such as `#12 [node 2/3] RUN sleep 3` (Dockerfile) or
# `#27 [node-gpu node] RUN sleep 2` (Strata through bake):
#
#   build<TAB>vertex<TAB>status<TAB>seconds<TAB>name
#
# build counts `#0 building with ...` headers (a script of several builds
# numbers its vertices from 1 each time); status is DONE, CACHED, ERROR or
# RUNNING (no end seen); seconds is the DONE duration; name has the bracket
# prefix removed (`RUN sleep 3`).
/^#0 building with/ { build++; next }
/^#[0-9]+ / {
    id = substr($1, 2)
    rest = substr($0, length($1) + 2)
    key = build SUBSEP id
    if (rest ~ /^\[[^]]*\] /) {
        if (!(key in name)) {
            name[key] = substr(rest, index(rest, "] ") + 2)
            order[++n] = key
            status[key] = "RUNNING"
        }
        next
    }
    if (!(key in name)) next
    if (rest == "CACHED") { if (status[key] != "DONE") status[key] = "CACHED"; next }
    if (rest ~ /^DONE /) { status[key] = "DONE"; secs[key] = substr(rest, 6) + 0; next }
    if (rest ~ /^ERROR/) { status[key] = "ERROR"; next }
}
END {
    for (i = 1; i <= n; i++) {
        k = order[i]
        split(k, p, SUBSEP)
        printf "%d\t%s\t%s\t%s\t%s\n", p[1] + 0, p[2], status[k], (k in secs ? secs[k] : 0), name[k]
    }
}
