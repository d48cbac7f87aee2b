# vault-injector image: Node 24 on Alpine, production dependencies only,
# non-root, runs with a read-only root filesystem. The sources are the same
# TypeScript, bundled at build time by esbuild (scripts/build.ts), which
# spares the server the type stripper and hundreds of module loads.
#   docker build -t vault-injector:0.1.0 .
# Size estimate and how it was made: docs/deploy.md.

FROM node:24-alpine AS deps
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

FROM node:24-alpine AS build
WORKDIR /app
COPY package.json package-lock.json ./
# All dependencies, for esbuild (a devDependency) and the code it bundles.
# esbuild's binary comes in its platform package, so no install script runs.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
# The build checks that the files the code reads at run time are there.
COPY schemas ./schemas
COPY scripts/build.ts ./scripts/build.ts
RUN node --no-warnings scripts/build.ts

FROM node:24-alpine
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
# src/webhook/server.ts): peak resident memory stays under 128 MiB (README,
# Performance).
ENTRYPOINT ["node", "--max-semi-space-size=4", "--max-old-space-size=64", "dist/cli.js"]
CMD ["serve"]
