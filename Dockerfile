# Multi-stage build: compile in the Rust image, run in a slim Debian image as
# a non-root user. SQLite is compiled in; PostgreSQL needs no client library.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml build.rs ./
COPY src ./src
COPY migrations ./migrations
# No .git in the build context: pass the revision for --version with
# `--build-arg FPR_GIT_REVISION=$(git rev-parse --short HEAD)`.
ARG FPR_GIT_REVISION
RUN cargo build --release --locked --bin freedompay-receiver

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/freedompay-receiver --create-home receiver
COPY --from=build /src/target/release/freedompay-receiver /usr/local/bin/freedompay-receiver
COPY config/example.toml /etc/freedompay-receiver/config.toml
USER receiver
WORKDIR /var/lib/freedompay-receiver
ENV FPR_CONFIG=/etc/freedompay-receiver/config.toml \
    FPR__SERVER__LISTEN=0.0.0.0:8080 \
    FPR__LOG__FORMAT=json
EXPOSE 8080
# Readiness without extra packages: bash's /dev/tcp.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["bash", "-c", \
  "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["freedompay-receiver"]
CMD ["serve"]
