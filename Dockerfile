# Multi-stage build: compile the release binary, ship it in a slim runtime image.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin sgbridge

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 sgbridge
COPY --from=build /src/target/release/sgbridge /usr/local/bin/sgbridge
COPY examples /usr/share/sgbridge/examples
USER sgbridge
ENTRYPOINT ["/usr/local/bin/sgbridge"]
CMD ["--help"]
