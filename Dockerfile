# workerman-push as a container: a static binary on an empty base, run as a
# non-root user.
#
#   docker build -t workerman-push .
#   docker run --rm -p 8000:8000 -p 127.0.0.1:8001:8001 \
#     -e WORKERMAN_PUSH_API_KEY=change-me workerman-push
#
# Port 8000 is for clients (WebSocket, /workerman-push.js); 8001 is the API,
# /metrics, /healthz, /readyz and the dashboard: publish it to your backend
# and Prometheus only. Every flag is also an environment variable
# (WORKERMAN_PUSH_<NAME>); see cmd/workerman-push/README.md.

FROM golang:1.26 AS build
WORKDIR /src
# The modules first, so that the download is cached while only code changes.
COPY go.mod go.sum ./
COPY natsbroker/go.mod natsbroker/go.sum natsbroker/
COPY cmd/workerman-push/go.mod cmd/workerman-push/go.sum cmd/workerman-push/
ENV GOWORK=off CGO_ENABLED=0
RUN cd cmd/workerman-push && go mod download
COPY . .
RUN cd cmd/workerman-push && go build -trimpath -ldflags="-s -w" -o /out/workerman-push . \
 && mkdir -p /out/etc && echo 'push:x:10001:10001:workerman-push:/:/sbin/nologin' > /out/etc/passwd \
 && echo 'push:x:10001:' > /out/etc/group

FROM scratch
# CA certificates for an https:// -webhook or a TLS NATS URL.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build /out/workerman-push /workerman-push
USER 10001:10001
# Inside a container the API must listen beyond the loopback to be reached
# at all; publish it on a private interface only.
ENV WORKERMAN_PUSH_API=http://0.0.0.0:8001
# 8000 clients, 8001 API and metrics, 6222 embedded NATS routes (-cluster).
EXPOSE 8000 8001 6222
# SIGTERM (the default) drains: give the container more than the 10 s
# stop timeout (docker stop -t 15, terminationGracePeriodSeconds: 15).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/workerman-push"]
