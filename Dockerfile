# vault-injector image: Node 24 on Alpine, production dependencies only,
# non-root, runs with a read-only root filesystem.
#   docker build -t vault-injector:0.1.0 .
FROM node:24-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev skips the `node` devDependency (the image has Node 24) and the test
# tooling; --ignore-scripts: no production dependency needs an install script.
# Source maps, type declarations and docs are not needed at run time (109 MB → 59 MB).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force \
 && find node_modules \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.md' \) -delete

FROM node:24-alpine
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
# Numeric user, so runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["node", "bin/vault-injector.js"]
CMD ["serve"]
