# syntax=docker/dockerfile:1
#
# Two images from one build stage:
#   docker build --target demo-api -t demo-api .   (the app the kit deploys; the default target)
#   docker build --target rollsafe -t rollsafe .   (the CLI, for in-cluster soak and CI gates)
# Both run as the distroless "nonroot" user (65532) with no shell: the
# Deployment's preStop uses the native sleep action for that reason.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w -X github.com/rollsafe/rollsafe/internal/cmd/root.Version=${VERSION}" \
      -o /out/ ./cmd/demo-api ./cmd/rollsafe

FROM gcr.io/distroless/static-debian12:nonroot AS rollsafe
COPY --from=build /out/rollsafe /usr/local/bin/rollsafe
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rollsafe"]

FROM gcr.io/distroless/static-debian12:nonroot AS demo-api
ARG VERSION=dev
# What / and /version answer, and the X-Version header the probe can follow.
ENV VERSION=${VERSION}
COPY --from=build /out/demo-api /usr/local/bin/demo-api
USER 65532:65532
EXPOSE 1325
ENTRYPOINT ["/usr/local/bin/demo-api"]
