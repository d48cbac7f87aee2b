// Every name and path the injector puts into a pod, in one place (vault-k8s's
// names). Re-injection strips exactly these; a pod that already uses one
// without our status annotation is denied.

export const CONTAINER = {
  init: 'vault-agent-init',
  sidecar: 'vault-agent',
} as const

export const VOLUME = {
  homeInit: 'home-init',
  homeSidecar: 'home-sidecar',
  secrets: 'vault-secrets',
  config: 'vault-config',
  extraSecrets: 'extra-secrets',
  tlsSecrets: 'vault-tls-secrets',
  cache: 'vault-agent-cache',
  // The agents' own projected service-account token.
  token: 'vault-agent-token',
} as const

// Per-secret mount paths other than the main one: one volume each, numbered.
export const customSecretsVolume = (index: number): string => `vault-secrets-custom-${index}`
const CUSTOM_SECRETS_VOLUME = /^vault-secrets-custom-\d+$/

export const MOUNT_PATH = {
  home: '/home/vault',
  extraSecrets: '/vault/custom',
  configMap: '/vault/configs',
  tlsSecrets: '/vault/tls',
  cache: '/vault/agent-cache',
} as const

// Files in the agents' home.
export const TOKEN_SINK = `${MOUNT_PATH.home}/.vault-token`
export const PID_FILE = `${MOUNT_PATH.home}/.pid`

export const OWNED_CONTAINERS: ReadonlySet<string> = new Set(Object.values(CONTAINER))
const OWNED_VOLUMES: ReadonlySet<string> = new Set(Object.values(VOLUME))

export function isOwnedVolume(name: string): boolean {
  return OWNED_VOLUMES.has(name) || CUSTOM_SECRETS_VOLUME.test(name)
}
