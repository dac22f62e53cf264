# tali bridge. No build step: Node 24 runs the TypeScript sources directly (type stripping).
#   docker build -t tali .
#   docker run -p 1883:1883 -p 8080:8080 -p 40000-40100:40000-40100/udp -v tali-data:/data tali
FROM node:24-slim

WORKDIR /app
ENV NODE_ENV=production
# Debian's ffmpeg decodes the dashboard's camera stills (GET /api/snapshots/{id}.jpg, option ffmpegPath); without it
# the grid says it has no stills.
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
# Runtime dependencies only: the `node` dev dependency (a Node 24 for old hosts) is not needed on this base.
COPY package.json package-lock.json ./
COPY patches ./patches
COPY scripts/patch-deps.js ./scripts/
# Without install scripts, then the reviewed dependency patches (docs/werift-patches.md) by hand.
RUN npm ci --omit=dev --ignore-scripts && node scripts/patch-deps.js && npm cache clean --force
COPY bin ./bin
COPY src ./src
# devices/ is the simulated camera (`tali camera`), used by the compose file's cameras.
COPY devices ./devices

# Everything the bridge writes (identities, the admin secret, recordings) goes to the volume.
RUN mkdir -p /data && chown node:node /data
ENV TALI_DATA_DIR=/data \
    TALI_HOST=0.0.0.0 \
    TALI_UDP_PORT_RANGE=40000-40100
VOLUME ["/data"]

# MQTT, HTTP (dashboard, MQTT over WebSocket, /metrics, /healthz), MQTT over TLS, WebRTC media.
EXPOSE 1883 8080 8883 40000-40100/udp

# The image's own user, uid 1000: never root.
USER node
# Fills that user's compile cache (~/.cache/tali, see bin/tali.js): `start --help` loads every module `start` does,
# so even a container's first start skips compiling and type stripping (about a third of start → ready).
RUN node bin/tali.js start --help > /dev/null

# /healthz answers while the process serves HTTP; it follows TALI_HTTP_PORT if that is changed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.TALI_HTTP_PORT || 8080}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# SIGTERM drains (bye to cameras, recordings finalised) within TALI_SHUTDOWN_TIMEOUT_MS (default 5 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/tali.js"]
CMD ["start"]
