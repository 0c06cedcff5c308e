# Multi-stage build: compile the release binary, ship it in a slim runtime image.
#   docker build --build-arg SGBRIDGE_COMMIT=$(git rev-parse --short=12 HEAD) -t sgbridge .
FROM rust:1.95-slim-bookworm AS build
ARG SGBRIDGE_COMMIT=unknown
ENV SGBRIDGE_COMMIT=${SGBRIDGE_COMMIT}
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY templates ./templates
COPY config ./config
RUN cargo build --release --locked --bin sgbridge

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 sgbridge && mkdir -p /etc/sgbridge/secrets
COPY --from=build /src/target/release/sgbridge /usr/local/bin/sgbridge
# Listens on 0.0.0.0:8080 (API) and 0.0.0.0:9090 (health, readiness,
# metrics), logs JSON to stderr, audit records to stdout; it holds no
# credentials and refuses to start until SGBRIDGE_CF_TOKEN and
# SGBRIDGE_GCORE_KEY are set (or a config of your own is mounted here).
COPY deploy/docker/sgbridge.toml /etc/sgbridge/sgbridge.toml
USER sgbridge
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/sgbridge", "healthcheck", "--config", "/etc/sgbridge/sgbridge.toml"]
# SIGTERM drains (readyz 503, delay, grace ≥ the wait deadline): give
# `docker stop` a timeout above 75 s, e.g. `docker stop -t 90`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sgbridge"]
CMD ["serve", "--config", "/etc/sgbridge/sgbridge.toml"]
