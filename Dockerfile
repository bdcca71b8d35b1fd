# Build static binaries, then ship each alone on a distroless non-root base:
# no shell, no package manager, nothing to exploit but the binary itself.
#   docker build -t egressd .                              the proxy (default target)
#   docker build --target egressd-inject -t egressd-inject .   the admission webhook
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/egressd ./cmd/egressd \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/egressd-inject ./cmd/egressd-inject

# The webhook: its own image, so the proxy image carries no Kubernetes code.
FROM gcr.io/distroless/static-debian12:nonroot AS egressd-inject
COPY --from=build /out/egressd-inject /egressd-inject
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["/egressd-inject"]
CMD ["-config", "/etc/egressd-inject/config/config.yaml"]

FROM gcr.io/distroless/static-debian12:nonroot AS egressd
COPY --from=build /out/egressd /egressd
USER 65532:65532
EXPOSE 3128 9090
ENTRYPOINT ["/egressd"]
CMD ["serve", "-config", "/etc/egressd/config.yaml"]
