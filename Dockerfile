# Multi-stage build: compile the release binary, ship it in a slim runtime image.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
RUN cargo build --release --locked --bin sgbridge

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 sgbridge && mkdir -p /etc/sgbridge
COPY --from=build /src/target/release/sgbridge /usr/local/bin/sgbridge
USER sgbridge
EXPOSE 8080
# Mount a config at this path (see README: it must listen on 0.0.0.0 with real credentials).
ENTRYPOINT ["/usr/local/bin/sgbridge"]
CMD ["serve", "--config", "/etc/sgbridge/sgbridge.toml"]
