# krustlet: a Kubernetes node agent that runs pods as WebAssembly modules.
# wasmtime-go links its static library through cgo, so the build stage needs
# a C toolchain and the binary needs glibc at run time.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.0.0-dev
RUN CGO_ENABLED=1 go build -trimpath \
      -ldflags "-s -w -X github.com/krustlet/krustlet-go/pkg/version.gitVersion=${VERSION}" \
      -o /out/krustlet ./cmd/krustlet

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/krustlet /usr/local/bin/krustlet
VOLUME /var/lib/krustlet
EXPOSE 10250
ENTRYPOINT ["/usr/local/bin/krustlet"]
