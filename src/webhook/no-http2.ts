// Bundled in place of node:http2 (scripts/build.ts). fastify requires
// node:http2 when it loads, for its HTTP/2 server; vault-injector serves
// HTTPS/1.1 only, as vault-k8s does, and never starts one. Loading Node's
// http2 module cost ~2 MiB resident and ~25 ms of start-up. It lives in src/
// because the image's build stage copies src/ and scripts/build.ts only.
function unavailable(): never {
  throw new Error('HTTP/2 is not part of the vault-injector build')
}

export const createServer = unavailable
export const createSecureServer = unavailable
