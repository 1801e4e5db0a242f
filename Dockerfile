# Multi-stage build: compile with the pinned toolchain (the same version as
# `rust-version` in Cargo.toml), run in a slim Debian image as a non-root user.
# SQLite is compiled in; PostgreSQL needs no client library.
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in a layer of their own: it is rebuilt only when
# Cargo.toml, Cargo.lock or build.rs change. Stub sources stand in for the project's.
COPY Cargo.toml Cargo.lock rustfmt.toml build.rs ./
RUN mkdir -p src tests/it \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs tests/it/main.rs \
 && cargo build --release --locked --bin freedompay-receiver \
 && rm -rf src tests
COPY src ./src
COPY migrations ./migrations
# No .git in the build context: pass the revision for --version with
# `--build-arg FPR_GIT_REVISION=$(git rev-parse --short HEAD)`.
ARG FPR_GIT_REVISION
# The stubs' outputs are older than the real sources; touching makes sure
# cargo rebuilds the project itself.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin freedompay-receiver

FROM debian:bookworm-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="freedompay-receiver" \
      org.opencontainers.image.description="Merchant-side webhook receiver for the FreedomPay payment gateway" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# CA roots: the reconciler and the API commands call FreedomPay over HTTPS.
# Without them `serve` still answers callbacks but logs that the reconciler
# is disabled (README, "Deployment").
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/freedompay-receiver --create-home receiver
COPY --from=build /src/target/release/freedompay-receiver /usr/local/bin/freedompay-receiver
# The example configuration carries a demo key, which `serve` refuses on any
# address but loopback: the image ships no usable key. Set the merchant's own
# (FPR__MERCHANTS__0__SECRET_KEY, or secret_key_file on a mounted secret).
COPY config/example.toml /etc/freedompay-receiver/config.toml
USER receiver
WORKDIR /var/lib/freedompay-receiver
# The SQLite database (when no PostgreSQL URL is given) lives here.
VOLUME /var/lib/freedompay-receiver
# /metrics listens on 9090 inside the container so that Prometheus on the
# container network can scrape it; publish 8080 only, never 9090.
ENV FPR_CONFIG=/etc/freedompay-receiver/config.toml \
    FPR__SERVER__LISTEN=0.0.0.0:8080 \
    FPR__METRICS__LISTEN=0.0.0.0:9090 \
    FPR__DATABASE__URL=sqlite:///var/lib/freedompay-receiver/freedompay-receiver.db \
    FPR__LOG__FORMAT=json
EXPOSE 8080 9090
# Readiness without a shell or curl (a distroless base works too).
HEALTHCHECK --interval=10s --timeout=5s --retries=3 CMD ["freedompay-receiver", "healthcheck"]
# SIGTERM: in-flight requests get server.shutdown_timeout_secs, then the
# reconciler's round as long again; give `docker stop -t` at least that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["freedompay-receiver"]
CMD ["serve"]
