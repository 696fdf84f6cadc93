# peerpigeon-c in a container: `docker build -t peerpigeon .` then
#   docker run -d -p 3000:3000 -e AUTH_TOKEN=... peerpigeon
# Stage 1 builds the static musl binary with `make static` on Debian 12; the image is
# FROM scratch with that one file (about 130 KB): no shell, no libc, no /etc.
# Settings are the environment variables of README.md (PORT, HOST, MAX_CONNECTIONS, IS_HUB,
# BOOTSTRAP_HUBS, AUTH_TOKEN, ...); flags after the image name work too (`... peerpigeon --is-hub true`).
# test/container.sh builds the final stage offline (buildah, from build/peerpigeon-static)
# and runs test/e2e.js against it.
ARG DEBIAN_IMAGE=debian:12-slim

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc make musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile *.c *.h ./
COPY deploy/build-static.sh deploy/
RUN make static && ./build/peerpigeon-static --version

FROM scratch
COPY --from=build /src/build/peerpigeon-static /peerpigeon
# listen on every interface of the container; publish the port with -p 3000:3000
ENV HOST=0.0.0.0 PORT=3000
# nobody:nogroup by number (scratch has no /etc/passwd); a port >= 1024 needs no privilege
USER 65534:65534
EXPOSE 3000
STOPSIGNAL SIGTERM
# GET /health of HOST:PORT (a wildcard HOST is asked on 127.0.0.1); exit 0 on 200
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 CMD ["/peerpigeon", "--health-check"]
ENTRYPOINT ["/peerpigeon"]
