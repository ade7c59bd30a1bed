# Multi-stage build: compile with the Rust toolchain, ship only the binary on a slim,
# non-root runtime image. protox compiles the contract, so no protoc is needed.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo .cargo
COPY proto proto
COPY migrations migrations
COPY src src
RUN cargo build --release --locked --bin observer-registry

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home observer-registry
COPY --from=build /src/target/release/observer-registry /usr/local/bin/observer-registry
USER 10001
# Listening on all interfaces needs an agencies file (IDENTITIES_FILE) or, for trials,
# ALLOW_ANONYMOUS=true: the service refuses anonymous callers off loopback by default.
ENV LISTEN_ADDR=0.0.0.0:50051 \
    LOG_FORMAT=json
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/observer-registry"]
CMD ["serve"]
