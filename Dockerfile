# syntax=docker/dockerfile:1
#
# pitr container image.
#
#   docker build -t pitr .
#   docker run --rm -p 127.0.0.1:5555:5555 -v pitr-data:/data pitr
#
# Without PITR_STORE the store is pitr's default file://pitr-data/store, i.e.
# /data/pitr-data/store in the same volume: fine for a try, not a backup. Pass
# -e PITR_STORE=minio://... or s3://... (and credentials) for real use; see
# docker-compose.yml for a complete stack with MinIO as the store.

# The golang images set GOTOOLCHAIN=local, so the image must already be at
# least the go.mod version (1.26.8): build with --pull if a cached golang:1.26
# is older.
ARG GO_VERSION=1.26

# ---------------------------------------------------------------------------
# Build stage: a static, CGO-free binary.
# Runs on the build host's platform and cross-compiles for the target one, so
# `docker buildx build --platform linux/amd64,linux/arm64` needs no emulation.
# Needs BuildKit (the default builder since Docker 23, and what compose uses).
# ---------------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build

WORKDIR /src

# Module downloads get their own layer: it is only rebuilt when go.mod or
# go.sum change, not on every source edit.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .

ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/pitr ./cmd/pitr

# The data directory, pre-created so that it belongs to the non-root user
# (65532 = "nonroot" in distroless): the final image has no shell to mkdir or
# chown with. COPY --chown below gives /data itself that owner, and Docker
# copies it into a fresh named volume mounted on /data, so pitr can write there.
RUN mkdir -p /out/data

# ---------------------------------------------------------------------------
# Final stage.
#
# Base: gcr.io/distroless/static-debian12:nonroot, chosen over alpine because:
#   * the binary is static (CGO_ENABLED=0), so it needs no libc;
#   * it ships what pitr does need at run time: CA certificates (TLS to AWS S3
#     and to MinIO behind TLS), tzdata (`pitr restore --at` reads zone-less
#     times in $TZ) and an /etc/passwd with the unprivileged user 65532;
#   * no shell or package manager: a smaller attack surface and fewer CVE
#     scanner hits than alpine.
# Trade-off: no shell or curl inside, so `docker exec ... sh` does not work and
# no HEALTHCHECK is defined here; probe GET /healthz from outside instead.
# Other pitr commands run fine: `docker exec <ctr> pitr saves`.
# ---------------------------------------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/pitr /usr/local/bin/pitr
COPY --from=build --chown=65532:65532 /out/data /data

# Inside a container the server must listen on all interfaces to be reachable
# through a published port (pitr's own default is 127.0.0.1:5555). Publish the
# port on the host's loopback (`-p 127.0.0.1:5555:5555`) unless you mean to
# expose it. The session's local copy lives in the /data volume.
ENV PITR_LISTEN=0.0.0.0:5555 \
    PITR_DATA_DIR=/data/session

# Numeric so that runtimes can check it is non-root (e.g. Kubernetes runAsNonRoot).
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 5555

# pitr runs as PID 1 (exec form, no shell) and so receives SIGTERM directly; it
# makes a final save before exiting. It may take up to 2 x --shutdown-timeout
# (default 1m) + 10 s: HTTP requests in flight, then the final save, then
# releasing its writer claim. Give it that: `docker stop -t 150`, or
# `stop_grace_period: 150s` in compose (the default 10 s may cut a save short).
STOPSIGNAL SIGTERM
ENTRYPOINT ["pitr"]
CMD ["serve"]
