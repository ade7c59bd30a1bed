# syntax=docker/dockerfile:1
# Multi-stage build: compile with the Rust toolchain, ship only the stripped binary on a
# slim, non-root runtime image. protox compiles the contract, so no protoc is needed.
# Needs BuildKit (the default builder of Docker 23 and later) for the cache mounts.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo .cargo
COPY proto proto
COPY migrations migrations
COPY src src
# The workspace's other members: the service builds on the client crate's generated messages;
# the load generator is not built here (see below), but without its manifest and sources the
# workspace does not load.
COPY client client
COPY loadgen loadgen
# .git stays out of the build context: the commit for observer_registry_build_info comes as
# a build argument (`docker build --build-arg OBSERVER_REGISTRY_COMMIT=$(git rev-parse HEAD)`).
ARG OBSERVER_REGISTRY_COMMIT=unknown
ENV OBSERVER_REGISTRY_COMMIT=$OBSERVER_REGISTRY_COMMIT
# The registry and target/ live in BuildKit cache mounts, kept between builds: a change to
# src/ recompiles the crate, not its ~350 dependencies. A cache mount is not part of the
# image, so the binary is copied out in the same step. The `dist` profile is `release`
# with symbols stripped (Cargo.toml). Only the service's package and binary: the production
# image carries no load generator (loadgen/, run from bench/run on a bench machine).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --profile dist --locked -p observer-registry --bin observer-registry \
 && cp target/dist/observer-registry /usr/local/bin/observer-registry

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home observer-registry
COPY --from=build /usr/local/bin/observer-registry /usr/local/bin/observer-registry
USER 10001
# Listening on all interfaces needs an agencies file (IDENTITIES_FILE) or, for trials,
# ALLOW_ANONYMOUS=true: the service refuses anonymous callers off loopback by default.
# OBSERVER_REGISTRY_SERVER is where the health check (and operator commands run in the
# container) find the service: with TLS on the port, set it to https://localhost:50051 and
# OBSERVER_REGISTRY_CA_CERT to the CA file.
ENV LISTEN_ADDR=0.0.0.0:50051 \
    LOG_FORMAT=json \
    OBSERVER_REGISTRY_SERVER=http://127.0.0.1:50051
EXPOSE 50051 9464
# Healthy only while the gRPC health check of "" says SERVING: the database answers and no
# shutdown is under way. The start period covers waiting for PostgreSQL and migrating.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/observer-registry", "health", "--timeout", "4s"]
ENTRYPOINT ["/usr/local/bin/observer-registry"]
CMD ["serve"]
