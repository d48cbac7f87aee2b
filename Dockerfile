# vault-injector image: Node 24 on Debian 12 (bookworm), production
# dependencies only, no npm and no package manager's cache at run time,
# non-root, runs with a read-only root filesystem. The sources are the same
# TypeScript, bundled at build time by esbuild (scripts/build.ts), which
# spares the server the type stripper and hundreds of module loads.
#   docker build -t vault-injector:0.1.0 .
# Built and run in CI by `npm run image:test` (test/image/run.sh).
#
# The bases, pinned by digest (the digests Docker Hub served for the tags named
# before the @, as other projects pin them; our CI cannot reach Docker Hub to
# check them. Update them together, e.g. with Renovate):
# - NODE_IMAGE builds (npm ci, the type stripping) and gives the runtime its
#   `node` binary;
# - RUNTIME_IMAGE runs it: the same Debian release as NODE_IMAGE (so the glibc
#   the binary was linked against is there) without npm, yarn or corepack.
# Where nothing can be pulled (our CI sandbox), test/image/base.sh builds local
# stand-ins carrying the same names without the digest: a Debian bookworm
# minbase rootfs from mmdebstrap (how debian:bookworm-slim is made), and for
# node: that rootfs plus the Node 24 binary and npm from their npm packages,
# laid out as the official image lays them out (/usr/local/bin/node,
# /usr/local/lib/node_modules/npm). It passes them with --build-arg, since a
# locally built image cannot have the registry's digest.
ARG NODE_IMAGE=docker.io/library/node:24-bookworm-slim@sha256:ba849c60be29959425b8734d57b8b4b7d56f98edd9504c9af091d5281095a71e
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim@sha256:88200866dfff7ea7f5cbcb6ec7c8a701889efe6fe859fe64d6990e4b07ea4171

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev leaves out the `node` devDependency (the npm package that brings
# Node 24 to development machines; the image has Node 24 already) and all the
# test tooling. --ignore-scripts: no production dependency needs an install
# script, so the package.json `allowScripts` entry (for `node`) never matters here.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
# Nothing at run time reads source maps or type declarations: about half of
# client-node's 62 MB. This takes node_modules from 109 MB to 62 MB on disk.
RUN find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete \
 && rm -rf node_modules/@types

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# All dependencies, for esbuild (a devDependency) and the code it bundles.
# esbuild's binary comes in its platform package, so no install script runs.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
# The Node version check src/cli.ts imports first (bundled into dist/cli.js).
COPY bin/require-node.js ./bin/require-node.js
# The build checks that the files the code reads at run time are there.
COPY schemas ./schemas
COPY scripts/build.ts ./scripts/build.ts
RUN node --no-warnings scripts/build.ts

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="vault-injector" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook that injects HashiCorp Vault Agent into pods; vault-k8s compatible." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MPL-2.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
# The node binary alone: npm stays in the build stages.
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
ENV NODE_ENV=production
# Only what runs: dependencies, sources, the JSON Schemas the CLI loads at
# start (policy and test suites), and package.json (version, "type": "module").
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY schemas ./schemas
# Numeric user and group (not in /etc/passwd), so the kubelet can check
# runAsNonRoot; manifests/base/deployment.yaml runs as the same 10001.
USER 10001:10001
EXPOSE 8080
# The Node flags npm start uses and `npm run bench` measures (a test keeps the
# three alike). A small young generation (4 MiB semi-spaces; V8's 16 MiB let
# resident memory grow by ~80 MiB under load) and an old generation bounded at
# 64 MiB, which the reviews in flight cannot fill (at most 8 MiB of bodies,
# src/webhook/server.ts). V8 optimizes hot functions on the main thread
# (--no-concurrent-recompilation): compile jobs on helper threads held ~15 MiB
# more resident memory under load for no measurable CPU per review. Peak
# resident memory stays under 128 MiB (README, Performance).
ENTRYPOINT ["node", "--max-semi-space-size=4", "--max-old-space-size=64", "--no-concurrent-recompilation", "dist/cli.js"]
CMD ["serve"]
