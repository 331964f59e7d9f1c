# The Strata frontend image: one static binary in an empty image, with the
# labels BuildKit's gateway reads.
#
# Default target (offline): copies a binary built on the host. Use
#   scripts/frontend-image.sh
# which builds the static binary and runs, with a context holding only it:
#   docker build -f frontend.Dockerfile -t strata/frontend:latest <dir with strata-frontend>
#
# From source (needs network for the rust image and crates.io), context = repo root:
#   docker build -f frontend.Dockerfile --target from-source -t strata/frontend:latest .
#
# No `# syntax=` line: the engine's built-in Dockerfile frontend reads this,
# so building it never pulls an image.

ARG RUST_IMAGE=rust:1.88-bookworm

# What every variant shares: the labels and the entrypoint.
FROM scratch AS frontend-base
# The frontend needs no network: BuildKit runs it with NetMode none.
LABEL moby.buildkit.frontend.network.none="true"
# Capabilities callers may require (buildx asks for subrequests with --print/--call).
LABEL moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"
LABEL org.opencontainers.image.title="Strata frontend" \
      org.opencontainers.image.description="BuildKit frontend for Strata stack files (strata.toml)"
ENTRYPOINT ["/strata-frontend"]

# --- from source ------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY proto proto
COPY src src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked \
      --profile release-frontend --target x86_64-unknown-linux-gnu \
      --bin strata-frontend --no-default-features \
 && cp target/x86_64-unknown-linux-gnu/release-frontend/strata-frontend /strata-frontend

FROM frontend-base AS from-source
COPY --from=build /strata-frontend /strata-frontend

# --- default: the binary built on the host ----------------------------------
FROM frontend-base AS frontend
COPY strata-frontend /strata-frontend
