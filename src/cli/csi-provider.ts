// `vault-injector csi-provider`: a provider for the Secrets Store CSI Driver
// (README, "CSI provider"). Serves the driver's provider API on
// <provider-dir>/vault.sock; reads the SecretProviderClass parameters that
// HashiCorp's vault-csi-provider reads; judges each mount by the same policy
// as the webhook.
import { Option, type Command } from 'commander'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { UsageError } from '../errors.ts'
import { createLogger } from '../log.ts'
import { EXIT, reportUsageError } from './run.ts'

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

export interface CsiProviderOptions {
  providerDir: string
  socket?: string
  vaultAddr: string
  vaultMount: string
  vaultNamespace: string
  vaultTlsCaCert: string
  vaultTlsCaDirectory: string
  vaultTlsServerName: string
  vaultTlsClientCert: string
  vaultTlsClientKey: string
  vaultTlsSkipVerify: boolean
  policy?: string
  hmacKeyFile?: string
  healthListen?: string
  logLevel: string
  kubernetes: boolean
}

async function run(opts: CsiProviderOptions): Promise<void> {
  const logger = createLogger({ logLevel: opts.logLevel }).child({ component: 'csi-provider' })
  const { CsiProvider } = await import('../csi/provider.ts')
  const { serveProvider } = await import('../csi/server.ts')
  const policy = opts.policy ? new (await import('../policy/load.ts')).PolicyWatcher(opts.policy, logger) : undefined

  let kube: { requestToken?: (pod: import('../csi/params.ts').PodInfo, audience: string) => Promise<string>; labels?: (ns: string) => Readonly<Record<string, string>> | undefined } = {}
  if (opts.kubernetes) {
    const { loadKubeConfig } = await import('../kube/client.ts')
    try {
      const kc = loadKubeConfig()
      const { tokenRequester } = await import('../csi/kube.ts')
      kube = { requestToken: tokenRequester(kc) }
      if (policy) kube.labels = (await import('../kube/namespaces.ts')).watchNamespaceLabels(kc, logger).labels
    } catch (error) {
      logger.info({ err: (error as Error).message }, 'no Kubernetes API: mounts need the token the driver sends (tokenRequests on the CSIDriver); no namespace labels can be read, so policy rules that select namespaces by label apply to every namespace')
    }
  }

  let hmacKey: Buffer | undefined
  if (opts.hmacKeyFile) {
    try {
      hmacKey = readFileSync(opts.hmacKeyFile)
    } catch (error) {
      throw new UsageError(`--hmac-key-file ${opts.hmacKeyFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`)
    }
    if (hmacKey.length < 32) throw new UsageError(`--hmac-key-file ${opts.hmacKeyFile}: needs at least 32 bytes`)
  }
  const provider = new CsiProvider({
    defaults: {
      vaultAddress: opts.vaultAddr,
      authMountPath: opts.vaultMount,
      vaultNamespace: opts.vaultNamespace,
      tls: { caCertPath: opts.vaultTlsCaCert, caDirectory: opts.vaultTlsCaDirectory, serverName: opts.vaultTlsServerName, clientCertPath: opts.vaultTlsClientCert, clientKeyPath: opts.vaultTlsClientKey, skipVerify: opts.vaultTlsSkipVerify },
    },
    logger,
    ...(policy ? { policy: () => policy.current() } : {}),
    namespaceLabels: kube.labels,
    requestToken: kube.requestToken,
    hmacKey,
  })
  const socketPath = opts.socket ?? join(opts.providerDir, 'vault.sock')
  const server = await serveProvider(provider, socketPath, pkg.version)
  logger.info({ socket: socketPath, vaultAddress: opts.vaultAddr, policy: opts.policy ?? null, versions: hmacKey ? 'hmac key from file' : 'hmac key per process' }, `vault-injector CSI provider serving on ${socketPath}`)

  let health: http.Server | undefined
  if (opts.healthListen) {
    const at = opts.healthListen.lastIndexOf(':')
    health = http.createServer((req, res) => {
      res.statusCode = req.url === '/health/ready' || req.url === '/health/live' ? 204 : 404
      res.end()
    })
    health.listen(Number(opts.healthListen.slice(at + 1)), opts.healthListen.slice(0, at) || '0.0.0.0')
  }

  const stop = (signal: string): void => {
    logger.info({ signal }, 'shutting down: finishing mounts in flight')
    health?.close()
    policy?.close()
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
}

export function register(program: Command): void {
  const env = (name: string, fallback = ''): string => process.env[name] ?? fallback
  program
    .command('csi-provider')
    .description('Serve the Secrets Store CSI Driver provider API (Version, Mount) on <provider-dir>/vault.sock: SecretProviderClasses written for HashiCorp\'s vault-csi-provider mount through it, judged by the same policy as the webhook.')
    .option('--provider-dir <dir>', 'the driver\'s provider folder; the socket is vault.sock in it', '/etc/kubernetes/secrets-store-csi-providers')
    .option('--socket <path>', 'the socket path instead of <provider-dir>/vault.sock')
    .option('--vault-addr <url>', 'Vault address when a class sets no vaultAddress [env VAULT_ADDR]', env('VAULT_ADDR', 'https://127.0.0.1:8200'))
    .option('--vault-mount <path>', 'Kubernetes auth mount when a class sets no vaultAuthMountPath', 'kubernetes')
    .option('--vault-namespace <ns>', 'Vault Enterprise namespace when a class sets none [env VAULT_NAMESPACE]', env('VAULT_NAMESPACE'))
    .option('--vault-tls-ca-cert <file>', 'CA certificate for Vault [env VAULT_CACERT]', env('VAULT_CACERT'))
    .option('--vault-tls-ca-directory <dir>', 'folder of CA certificates for Vault [env VAULT_CAPATH]', env('VAULT_CAPATH'))
    .option('--vault-tls-server-name <name>', 'TLS server name for Vault [env VAULT_TLS_SERVER_NAME]', env('VAULT_TLS_SERVER_NAME'))
    .option('--vault-tls-client-cert <file>', 'client certificate for Vault [env VAULT_CLIENT_CERT]', env('VAULT_CLIENT_CERT'))
    .option('--vault-tls-client-key <file>', 'client key for Vault [env VAULT_CLIENT_KEY]', env('VAULT_CLIENT_KEY'))
    .option('--vault-tls-skip-verify', 'do not verify Vault\'s certificate (not for production)', false)
    .option('--policy <file>', 'an InjectorPolicy: every mount is judged by it, as admissions are [env AGENT_INJECT_POLICY_FILE]', process.env.AGENT_INJECT_POLICY_FILE)
    .option('--hmac-key-file <file>', 'key (32+ bytes) for the object versions, so they survive restarts; random per process without it')
    .option('--health-listen <host:port>', 'serve GET /health/ready and /health/live here')
    .addOption(new Option('--log-level <level>', 'trace, debug, info, warn, error [env AGENT_INJECT_LOG_LEVEL]').choices(['trace', 'debug', 'info', 'warn', 'error']).default(env('AGENT_INJECT_LOG_LEVEL', 'info')))
    .option('--no-kubernetes', 'never call the Kubernetes API (no token requests, no namespace labels)')
    .action(async (opts: CsiProviderOptions) => {
      try {
        await run(opts)
      } catch (error) {
        // A bad policy or key file exits 2 naming it; a socket that cannot be served exits 1.
        if (error instanceof UsageError) process.exit(reportUsageError('csi-provider', error))
        process.stderr.write(`vault-injector csi-provider: ${(error as Error).message}\n`)
        process.exit(EXIT.failed)
      }
    })
}
