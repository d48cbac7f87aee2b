// `vault-injector serve` (what `npm start` runs): the admission webhook.
//
// Certificates, in order: AGENT_INJECT_TLS_CERT_FILE/KEY_FILE (reloaded when
// they change), AGENT_INJECT_TLS_AUTO (a CA and short-lived certificates kept
// in a Secret, caBundle patched), or, with neither, an embedded CA and
// certificate for localhost in certs/ and a server on 127.0.0.1:8080.
import type { Command } from 'commander'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULT_VAULT_ADDRESS } from '../engine/settings.ts'
import { SETTINGS, type Settings } from '../settings.ts'
import type { Logger } from '../log.ts'
import type { CertSource } from '../tls/source.ts'
import type { NamespaceLabels } from '../kube/namespaces.ts'
import type { PolicyWatcher } from '../policy/load.ts'
import type { ServerOptions, WebhookServer } from '../webhook/server.ts'
import { UsageError } from '../errors.ts'
import { addServeSettingsOptions, settingsFromOptions } from './options.ts'
import { EXIT, reportUsageError } from './run.ts'
import { VERSION } from './version.ts'
import { registerBuildInfo, registerLeadership } from '../webhook/metrics.ts'

// After SIGTERM: readiness fails at once and the server keeps answering for
// the drain window (AGENT_INJECT_DRAIN_SECONDS, 5 s: clients still holding its
// address find out), then it stops accepting and finishes what is in flight;
// it exits by SHUTDOWN_LIMIT_MS whatever happens. The Deployment's preStop
// pause (5 s) plus this stays inside terminationGracePeriodSeconds (30 s); a
// test checks the sum.
export const SHUTDOWN_LIMIT_MS = 20_000
// Time to finish reviews in flight after the drain window (a review holds its
// slot at most 10 s, see server.ts).
const FINISH_MS = 15_000

// What a signal finds: nothing yet (still starting), or the server and what
// feeds it. Signal handlers are installed before anything that waits (the
// first certificate may take minutes with auto-TLS), so SIGTERM always works
// and SIGHUP never kills the process.
interface Running {
  server?: WebhookServer
  certSource?: CertSource
  policy?: PolicyWatcher
  csiRestarts?: { stop(): Promise<void> }
}

function installSignals(logger: Logger, running: Running, drainMs: number): void {
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    const force = setTimeout(() => process.exit(1), Math.max(SHUTDOWN_LIMIT_MS, drainMs + FINISH_MS))
    force.unref()
    const { server } = running
    if (!server) {
      logger.info({ signal }, 'stopping before the server started')
      void Promise.resolve(running.certSource?.close()).finally(() => process.exit(0))
      return
    }
    logger.info({ signal, drainMs }, 'shutting down: readiness fails now; answering for the drain window, then finishing reviews in flight')
    server.drain()
    setTimeout(() => {
      running.policy?.close()
      Promise.all([server.close(), running.csiRestarts?.stop()]).then(
        () => process.exit(0),
        () => process.exit(1),
      )
    }, drainMs)
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // SIGHUP: read the certificate files and the policy again now.
  process.on('SIGHUP', () => {
    logger.info({ signal: 'SIGHUP' }, 'reloading the certificate and the policy')
    running.certSource?.reload?.()
    running.policy?.reload()
  })
}
// How often serve says it is still waiting for its first certificate.
const CERT_WAIT_LOG_INTERVAL_MS = 10_000
// The embedded default's certificates: certs/ at the top of the checkout.
const DEFAULT_CERTS_DIR = fileURLToPath(new URL('../../certs/', import.meta.url))

// The server's modules (fastify, pino, TLS) are loaded only once the settings
// are good: a bad setting is reported and exits 2 without paying for them.
async function serverModules(): Promise<{ createLogger: typeof import('../log.ts').createLogger; buildServer: typeof import('../webhook/server.ts').buildServer; FileCertSource: typeof import('../tls/files.ts').FileCertSource }> {
  const [log, server, files] = await Promise.all([import('../log.ts'), import('../webhook/server.ts'), import('../tls/files.ts')])
  return { createLogger: log.createLogger, buildServer: server.buildServer, FileCertSource: files.FileCertSource }
}

interface Startup {
  settings: Settings
  certSource: CertSource
  notes: string[]
  // Set in the embedded default: the local CA, for the note on stderr.
  localCa?: { caFile: string; created: boolean }
}

async function certSourceFor(settings: Settings, listenSet: boolean, logger: Logger, certsDir: string, FileCertSource: typeof import('../tls/files.ts').FileCertSource): Promise<Startup> {
  const notes: string[] = []
  if (settings.tlsCertFile || settings.tlsKeyFile) {
    return { settings, certSource: new FileCertSource({ certFile: settings.tlsCertFile, keyFile: settings.tlsKeyFile, logger }), notes }
  }
  if (settings.tlsAuto) {
    // Loaded only here: the embedded and file modes never touch cluster code.
    const { createAutoTlsSource } = await import('../kube/auto-tls.ts')
    return { settings, certSource: createAutoTlsSource(settings, logger), notes }
  }
  // node-forge is loaded only for the local CA.
  const { ensureEmbeddedCerts } = await import('../tls/embedded.ts')
  const certs = ensureEmbeddedCerts(certsDir)
  const local = listenSet ? settings : { ...settings, listen: '127.0.0.1:8080' }
  notes.push(`${certs.created ? 'generated' : 'reusing'} a local CA and serving certificate: the CA is ${certs.caFile}`)
  const certSource = new FileCertSource({ certFile: certs.certFile, keyFile: certs.keyFile, caFile: certs.caFile, logger })
  return { settings: local, certSource, notes, localCa: { caFile: certs.caFile, created: certs.created } }
}

// Said plainly on stderr, beside the JSON log: what a first-time user needs next.
function printLocalCaNote(localCa: { caFile: string; created: boolean }, address: string): void {
  const caPath = relative(process.cwd(), localCa.caFile) || localCa.caFile
  process.stderr.write(
    `vault-injector: no certificate configured (AGENT_INJECT_TLS_CERT_FILE / AGENT_INJECT_TLS_AUTO), so it serves with a local CA.\n` +
      `  CA certificate: ${localCa.caFile}${localCa.created ? ' (new)' : ''}\n` +
      `  try: curl --cacert ${caPath} -H 'Content-Type: application/json' --data @examples/admission-review.json ${address}/mutate\n`,
  )
}

// Label selectors in the policy need namespace labels: watched when a cluster
// is configured. Without one (local runs) no namespace's labels are known, and
// rules that select by label restrict every namespace their names allow.
// client-node (~50 MiB resident once loaded) is loaded only where a cluster
// may be configured (see configured.ts).
async function namespaceLabelsIfCluster(logger: Logger): Promise<NamespaceLabels | undefined> {
  const noCluster = (): undefined => {
    logger.warn({}, 'no cluster configured: namespace labels cannot be read, so policy rules that select namespaces by label apply to every namespace')
    return undefined
  }
  const { clusterMaybeConfigured } = await import('../kube/configured.ts')
  if (!clusterMaybeConfigured()) return noCluster()
  const { loadKubeConfig } = await import('../kube/client.ts')
  let kc
  try {
    kc = loadKubeConfig()
  } catch {
    return noCluster()
  }
  const { watchNamespaceLabels } = await import('../kube/namespaces.ts')
  return watchNamespaceLabels(kc, logger)
}

export interface ServeOptions {
  // Whether the listen address was chosen (flag or env), not defaulted.
  listenSet: boolean
  // Where the embedded default keeps its CA and certificate.
  certsDir?: string
}

export async function runServe(settings: Settings, serveOptions: ServeOptions, extra: Partial<ServerOptions> = {}): Promise<void> {
  const { createLogger, buildServer, FileCertSource } = await serverModules()
  const logger = createLogger(settings)
  const running: Running = {}
  installSignals(logger, running, settings.drainSeconds * 1000)
  // The policy code (YAML, JSON Schema) is loaded only when a policy is set;
  // a bad policy stops serve before any certificate work (exit 2).
  const policy: PolicyWatcher | undefined = settings.policyFile ? new (await import('../policy/load.ts')).PolicyWatcher(settings.policyFile, logger) : undefined
  if (policy) running.policy = policy
  const startup = await certSourceFor(settings, serveOptions.listenSet, logger, serveOptions.certsDir ?? DEFAULT_CERTS_DIR, FileCertSource)
  running.certSource = startup.certSource
  const namespaces = policy ? await namespaceLabelsIfCluster(logger) : undefined
  // The certificate sources' timers do not hold the process open (so that
  // closing never waits on them). Until the first certificate is there, which
  // with auto-TLS waits on the leader and the API server, this does, and says
  // so; without it Node would exit with an unsettled top-level await.
  const waiting = setInterval(() => logger.info('waiting for the serving certificate'), CERT_WAIT_LOG_INTERVAL_MS)
  const server = await buildServer({
    settings: startup.settings,
    certSource: startup.certSource,
    logger,
    ...(policy ? { policy: () => policy.current() } : {}),
    ...(namespaces ? { namespaceLabels: namespaces.labels, namespacesSynced: namespaces.synced } : {}),
    ...extra,
  }).finally(() => clearInterval(waiting))
  running.server = server
  if (policy) (await import('../policy/metrics.ts')).registerPolicyMetrics(server.metrics.registry, policy)
  registerBuildInfo(server.metrics.registry, VERSION)
  const leading = startup.certSource.isLeader?.bind(startup.certSource)
  if (leading) registerLeadership(server.metrics.registry, leading)
  for (const note of startup.notes) server.app.log.info(note)
  const vaultNote = startup.settings.vaultAddress === DEFAULT_VAULT_ADDRESS ? ' (the default; set AGENT_INJECT_VAULT_ADDR)' : ''
  server.app.log.info({ vaultAddress: startup.settings.vaultAddress }, `agents will use Vault at ${startup.settings.vaultAddress}${vaultNote}`)
  // Rolling restarts on CSI secret rotation: the API code is loaded only when asked for.
  if (startup.settings.csiRestartOnRotation) {
    const { loadKubeConfig } = await import('../kube/client.ts')
    const { startCsiRestarts } = await import('../kube/csi-restart.ts')
    const s = startup.settings
    const { namespaceList } = await import('../webhook/settings.ts')
    running.csiRestarts = startCsiRestarts(loadKubeConfig(), { logger, minIntervalMs: s.csiRestartMinIntervalSeconds * 1000, namespace: s.namespace, podName: s.podName, useLeaderElector: s.useLeaderElector, watchNamespaces: namespaceList(s.csiRestartNamespaces) })
  }
  const address = await server.listen()
  server.app.log.info({ address, version: VERSION }, `vault-injector ${VERSION} serving AdmissionReviews on ${address}/mutate`)
  if (startup.localCa) printLocalCaNote(startup.localCa, address)
}

export function register(program: Command): void {
  const command = program
    .command('serve')
    .alias('agent-inject')
    .description('Run the HTTPS admission webhook (POST /mutate, GET /health/ready, GET /metrics). Every flag has an AGENT_INJECT_* environment variable, which wins.')
  addServeSettingsOptions(command)
  command.option('--certs-dir <dir>', 'Where the embedded default (no certificate configured, no auto-TLS) keeps its CA and serving certificate', DEFAULT_CERTS_DIR)
  command.action(async (opts: Record<string, unknown>) => {
    try {
      const settings = settingsFromOptions(opts, process.env, SETTINGS)
      const listenSet = (process.env.AGENT_INJECT_LISTEN ?? '') !== '' || typeof opts.listen === 'string'
      await runServe(settings, { listenSet, certsDir: String(opts.certsDir) })
    } catch (error) {
      // process.exit, not exitCode: timers started before the failure would keep the process alive.
      if (error instanceof UsageError) process.exit(reportUsageError('serve', error))
      process.stderr.write(`vault-injector serve: ${(error as Error).message}\n`)
      process.exit(EXIT.failed)
    }
  })
}
