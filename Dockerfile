# syntax=docker/dockerfile:1
# The Shoal image: `shoal` on PATH, Node.js 24 (LTS), non-root by default, read-only
# root filesystem friendly (writes only to /data and /tmp). `npm run image` builds
# the same image without a Docker daemon (tools/src/image/build.ts).
ARG NODE_VERSION=24.22.3

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
# Manifests first: the dependency layer is cached until they change.
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages/core/package.json packages/core/
COPY packages/store/package.json packages/store/
COPY packages/service-kit/package.json packages/service-kit/
COPY packages/registry-client/package.json packages/registry-client/
COPY packages/testkit/package.json packages/testkit/
COPY services/supernode/package.json services/supernode/
COPY services/peer/package.json services/peer/
COPY services/proxy/package.json services/proxy/
COPY services/shoal/package.json services/shoal/
COPY e2e/package.json e2e/
COPY load-tests/package.json load-tests/
COPY tools/package.json tools/
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY packages packages
COPY services services
RUN npx tsc -b packages/core packages/store packages/service-kit packages/registry-client services/supernode services/peer services/proxy services/shoal

# Production dependencies of the `shoal` executable only.
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /opt/shoal
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/packages packages
COPY --from=build /src/services services
COPY --from=build /src/e2e/package.json e2e/
COPY --from=build /src/load-tests/package.json load-tests/
COPY --from=build /src/tools/package.json tools/
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund --workspace=@shoal/cli \
 && rm -rf node_modules/@shoal/e2e node_modules/@shoal/load-tests node_modules/@shoal/testkit node_modules/@shoal/tools \
      e2e load-tests tools packages/testkit \
 && find packages services \( -name '*.d.ts' -o -name '*.map' -o -name '*.tsbuildinfo' \) -delete \
 && rm -rf packages/*/src packages/*/test packages/*/dist/test services/*/src services/*/test services/*/dist/test

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_OPTIONS=--max-semi-space-size=4 \
    NODE_ENV=production
COPY --from=deps /opt/shoal /opt/shoal
RUN ln -s /opt/shoal/services/shoal/bin/shoal.js /usr/local/bin/shoal \
 && chmod 0755 /opt/shoal/services/shoal/bin/shoal.js \
 && groupadd --gid 65532 shoal && useradd --uid 65532 --gid 65532 --home-dir /data --shell /usr/sbin/nologin shoal \
 && mkdir -p /data && chown 65532:65532 /data
USER 65532:65532
WORKDIR /data
VOLUME /data
# PID 1 is node itself (no shell in between): `shoal` closes its services on SIGTERM.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/shoal"]
CMD ["--help"]
