# Build a static binary, then ship it alone on a distroless non-root base:
# no shell, no package manager, nothing to exploit but egressd itself.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/egressd ./cmd/egressd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/egressd /egressd
USER 65532:65532
EXPOSE 3128 9090
ENTRYPOINT ["/egressd"]
CMD ["serve", "-config", "/etc/egressd/config.yaml"]
