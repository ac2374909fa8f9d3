# syntax=docker/dockerfile:1

# Build the `eye` binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep downloaded crates and compiled dependencies between builds; the binary is copied
# out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release -p eye-server --locked \
    && install -m 0755 target/release/eye /usr/local/bin/eye

# Run it.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/eye eye \
    && mkdir -p /var/lib/eye/data \
    && chown -R eye:eye /var/lib/eye
COPY --from=build /usr/local/bin/eye /usr/local/bin/eye
# The embedded defaults (sqlite://data/eye.db, data/queue.db) resolve under /var/lib/eye/data.
WORKDIR /var/lib/eye
USER eye
ENV EYE_BIND=0.0.0.0:8080
# glibc keeps a malloc arena per busy thread and gives little back: two arenas hold the api's peak RSS
# under load at 47 instead of 54 MiB (BENCHMARKS.md, issue 14).
ENV MALLOC_ARENA_MAX=2
EXPOSE 8080
ENTRYPOINT ["eye"]
CMD ["serve"]
