# flatnet: build the CLI (TypeScript + the native addon) and run it.
#
#   docker build -t flatnet .
#   docker run --rm --network host --cap-add NET_ADMIN --cap-add NET_RAW \
#     -v /etc/flatnet:/etc/flatnet flatnet vtep --config /etc/flatnet/node.json
#
# The builder has the toolchain and libpcap's headers (for the optional `cap` package); the
# runtime image has Node, libpcap and iproute2 (the daemon configures its TAP with `ip`).

FROM node:20-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ libpcap-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# node-gyp builds against the image's own Node headers: no download.
ENV npm_config_nodedir=/usr/local
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY native ./native
COPY src ./src
COPY bench ./bench
COPY test/support ./test/support
RUN npm run build:native \
 && node_modules/.bin/tsc -p tsconfig.json \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/flatnet
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/native/build/Release/flatnet.node ./native/build/Release/flatnet.node
ENTRYPOINT ["node", "/opt/flatnet/dist/src/cli/main.js"]
CMD ["--help"]
