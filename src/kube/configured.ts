// Whether client-node's loadFromDefault() would find a cluster, answered
// without loading client-node (~17 MB of code: about 50 MiB resident once
// imported, measured on `serve` with a policy file and no cluster). It looks
// where loadFromDefault looks, in the same order: KUBECONFIG, $HOME/.kube/config,
// the pod's service-account token. True means "maybe": loadKubeConfig() then
// decides, as before.
import { accessSync, existsSync } from 'node:fs'
import { join } from 'node:path'

export const SERVICE_ACCOUNT_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token'

export function clusterMaybeConfigured(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, tokenFile = SERVICE_ACCOUNT_TOKEN_FILE): boolean {
  // Windows has more places (WSL, USERPROFILE): leave it to client-node.
  if (platform === 'win32') return true
  if (env.KUBECONFIG) return true
  if (env.HOME && readable(env.HOME) && existsSync(join(env.HOME, '.kube', 'config'))) return true
  return existsSync(tokenFile)
}

function readable(path: string): boolean {
  try {
    accessSync(path)
    return true
  } catch {
    return false
  }
}
