# syntax=docker/dockerfile:1
# The hub as a container image: built with the `dist` profile (fully optimised, for shipping), run as a non-root user
# on a distroless base (glibc, CA roots, no shell). `docker compose up` runs it on PostgreSQL (compose.yaml).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The registry and the target folder are cache mounts: a rebuild after a source change recompiles the hub, not its
# dependencies.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --profile dist --bin cnh-hub \
    && cp target/dist/cnh-hub /cnh-hub

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /cnh-hub /usr/local/bin/cnh-hub
USER nonroot:nonroot
ENV CNH_LISTEN=0.0.0.0:8080 \
    CNH_PROFILE=production \
    CNH_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/cnh-hub"]
CMD ["serve"]
