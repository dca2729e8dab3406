# syntax=docker/dockerfile:1.7
#
# One recipe for every kgraph binary. From the repository root:
#
#   docker build --build-arg SERVICE=extractor -t kgraph/extractor .
#
# SERVICE is one of the seven services (ingest-api, dedup, extractor,
# graph-writer, vector-indexer, projection, query) or kg, the command-line
# client that also runs the one-process mode (`kg serve`).
#
# The context must be the whole repository: each service module reaches
# events/ and libs/ through go.work and its replace directives.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
ARG SERVICE
ARG TARGETOS
ARG TARGETARCH
# Static binaries: the runtime image has no libc. -buildvcs=false because the
# context carries no .git (see .dockerignore).
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
WORKDIR /src

# Fail before copying anything when SERVICE is missing or misspelt.
RUN case "${SERVICE}" in \
      ingest-api|dedup|extractor|graph-writer|vector-indexer|projection|query|kg) ;; \
      *) echo "build arg SERVICE must name a kgraph service or kg, got '${SERVICE}'" >&2; exit 1 ;; \
    esac

COPY . .

# Modules and compiled packages live in BuildKit cache mounts, so a source
# change neither re-downloads modules nor recompiles the dependencies.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    if [ "${SERVICE}" = kg ]; then pkg=./tools/cmd/kg; else pkg="./services/${SERVICE}/cmd/${SERVICE}"; fi; \
    GOOS="${TARGETOS}" GOARCH="${TARGETARCH}" \
      go build -trimpath -ldflags='-s -w' -o /out/kgraph-service "${pkg}"; \
    GOOS="${TARGETOS}" GOARCH="${TARGETARCH}" \
      go build -trimpath -ldflags='-s -w' -o /out/healthprobe ./tools/cmd/healthprobe; \
    mkdir -p /out/data

# distroless/static: CA certificates (LLM endpoints over HTTPS), tzdata and a
# nonroot user; no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
ARG SERVICE
ARG VERSION=dev
LABEL org.opencontainers.image.title="kgraph-${SERVICE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/kgraph-dev/kgraph"

COPY --from=build /out/kgraph-service /usr/local/bin/kgraph-service
# Docker Compose health checks exec this; Kubernetes probes use httpGet.
COPY --from=build /out/healthprobe /usr/local/bin/healthprobe
# Owned by the runtime user: Docker copies a mount point's ownership into a
# new named volume, so the compose data volume is writable without root.
COPY --from=build --chown=65532:65532 /out/data /var/lib/kgraph
ENV KG_DATA_DIR=/var/lib/kgraph

# 65532 is distroless's "nonroot"; numeric so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/kgraph-service"]
