// `vault-injector register`: create or update the MutatingWebhookConfiguration
// through the current kubeconfig (or in-cluster config); --dry-run prints it.
// client-node is imported only when the cluster is called: it is slow to load,
// and every other command would pay for it.
import type { V1MutatingWebhookConfiguration } from '@kubernetes/client-node'
import { Option, type Command } from 'commander'
import { readFileSync } from 'node:fs'
import { X509Certificate } from 'node:crypto'
import { stringify } from 'yaml'
import { valueProblem } from '../engine/read.ts'
import { integerType, portType, type ValueType } from '../engine/values.ts'
import { UsageError } from '../errors.ts'
import { SECRET_NAME } from '../kube/names.ts'
import { buildWebhookConfiguration, DEFAULT_WEBHOOK_OPTIONS, urlProblem, type WebhookConfigOptions } from '../kube/webhook-config.ts'
import { EXIT, runCommand } from './run.ts'

export interface RegisterOptions {
  name: string
  namespace: string
  service: string
  servicePort: string
  path: string
  url?: string
  caFile?: string
  caFromSecret?: boolean
  failurePolicy: 'Ignore' | 'Fail'
  timeoutSeconds: string
  matchConditions?: boolean
  dryRun?: boolean
}

// The API server allows webhook timeouts of 1 to 30 seconds.
const timeoutSecondsType = integerType(1, 30, 'is not accepted (1-30)')

// A flag's value through a value parser; a usage error (exit 2) if it does not parse.
function parsed<T>(flag: string, raw: string, type: ValueType<T>): T {
  const value = type.parse(raw)
  if (value === undefined) throw new UsageError(valueProblem(flag, raw, type.accepts))
  return value
}

export function webhookOptionsFrom(opts: RegisterOptions, caBundle?: string): WebhookConfigOptions {
  const timeoutSeconds = parsed('--timeout-seconds', opts.timeoutSeconds, timeoutSecondsType)
  const port = parsed('--service-port', opts.servicePort, portType)
  if (opts.caFile && opts.caFromSecret) throw new UsageError('--ca-file and --ca-from-secret: give one')
  const problem = opts.url === undefined ? undefined : urlProblem(opts.url)
  if (problem) throw new UsageError(problem)
  return {
    name: opts.name,
    ...(opts.url ? { url: opts.url } : { service: { name: opts.service, namespace: opts.namespace, path: opts.path, port } }),
    ...(caBundle ? { caBundle } : {}),
    failurePolicy: opts.failurePolicy,
    timeoutSeconds,
    ...(opts.matchConditions === false ? { matchConditions: false } : {}),
  }
}

// base64 of the PEM file, after checking it holds at least one certificate.
function caBundleFromFile(file: string): string {
  let pem: string
  try {
    pem = readFileSync(file, 'utf8')
  } catch (error) {
    throw new UsageError(`--ca-file: ${(error as Error).message}`)
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
  try {
    if (blocks.length === 0) throw new Error('no certificate')
    for (const block of blocks) new X509Certificate(block)
  } catch {
    throw new UsageError(`--ca-file: ${file} holds no PEM certificate`)
  }
  return Buffer.from(pem).toString('base64')
}

async function caBundleFrom(opts: RegisterOptions): Promise<string | undefined> {
  if (opts.caFile) return caBundleFromFile(opts.caFile)
  if (!opts.caFromSecret) return undefined
  // The CA auto-TLS stores; the previous one too during a rollover.
  const { CoreV1Api } = await import('@kubernetes/client-node')
  const { loadKubeConfig } = await import('../kube/client.ts')
  const api = loadKubeConfig().makeApiClient(CoreV1Api)
  const secret = await api.readNamespacedSecret({ name: SECRET_NAME, namespace: opts.namespace })
  const ca = secret.data?.['ca.crt']
  if (!ca) throw new Error(`secret ${opts.namespace}/${SECRET_NAME} has no ca.crt yet`)
  const previous = secret.data?.['ca-previous.crt']
  return previous ? Buffer.from(Buffer.from(ca, 'base64').toString('utf8') + Buffer.from(previous, 'base64').toString('utf8')).toString('base64') : ca
}

// What an update sends: our spec, with what others manage on the live object
// kept: a caBundle when we bring none (auto-TLS or cert-manager keeps it),
// and the live object's annotations and labels (cert-manager's
// inject-ca-from among them), ours winning on the same key.
export function mergeForUpdate(config: V1MutatingWebhookConfiguration, existing: V1MutatingWebhookConfiguration): V1MutatingWebhookConfiguration {
  const webhooks = (config.webhooks ?? []).map((w) => {
    const kept = existing.webhooks?.find((e) => e.name === w.name)?.clientConfig.caBundle ?? existing.webhooks?.[0]?.clientConfig.caBundle
    return w.clientConfig.caBundle || !kept ? w : { ...w, clientConfig: { ...w.clientConfig, caBundle: kept } }
  })
  const metadata = {
    ...config.metadata,
    labels: { ...existing.metadata?.labels, ...config.metadata?.labels },
    ...(existing.metadata?.annotations || config.metadata?.annotations ? { annotations: { ...existing.metadata?.annotations, ...config.metadata?.annotations } } : {}),
    resourceVersion: existing.metadata?.resourceVersion,
  }
  return { ...config, metadata, webhooks }
}

// Create, or replace the version read (a concurrent change makes it fail, not lost).
async function apply(config: V1MutatingWebhookConfiguration): Promise<'created' | 'updated'> {
  const { AdmissionregistrationV1Api } = await import('@kubernetes/client-node')
  const { isNotFound, loadKubeConfig } = await import('../kube/client.ts')
  const api = loadKubeConfig().makeApiClient(AdmissionregistrationV1Api)
  const name = config.metadata!.name!
  let existing: V1MutatingWebhookConfiguration | undefined
  try {
    existing = await api.readMutatingWebhookConfiguration({ name })
  } catch (error) {
    if (!isNotFound(error)) throw error
  }
  if (!existing) {
    await api.createMutatingWebhookConfiguration({ body: config })
    return 'created'
  }
  await api.replaceMutatingWebhookConfiguration({ name, body: mergeForUpdate(config, existing) })
  return 'updated'
}

export function register(program: Command): void {
  program
    .command('register')
    .description('Create or update the MutatingWebhookConfiguration through the current kubeconfig (or in-cluster config). --dry-run prints its YAML instead.')
    .option('--name <name>', 'name of the MutatingWebhookConfiguration', DEFAULT_WEBHOOK_OPTIONS.name)
    .option('--namespace <ns>', 'namespace of the injector (its Service; its own pods are excluded by label)', 'vault-injector')
    .option('--service <name>', 'Service in front of the injector', 'vault-injector')
    .option('--service-port <port>', 'Service port', '443')
    .option('--path <path>', 'path of the mutate endpoint', '/mutate')
    .option('--url <url>', 'call the webhook at this https:// URL instead of a Service (a server outside the cluster)')
    .option('--ca-file <file>', 'PEM CA(s) that signed the serving certificate, for caBundle')
    .option('--ca-from-secret', `caBundle from the auto-TLS Secret ${SECRET_NAME} in --namespace`)
    .addOption(new Option('--failure-policy <policy>', 'what the API server does when the webhook cannot answer (docs/deploy.md)').choices(['Ignore', 'Fail']).default('Ignore'))
    .option('--timeout-seconds <n>', 'webhook timeout, 1-30', String(DEFAULT_WEBHOOK_OPTIONS.timeoutSeconds))
    .option('--no-match-conditions', 'send every pod, not only those with the vault.hashicorp.com/agent-inject annotation (policy namespace defaults that turn injection on; clusters before 1.28)')
    .option('--dry-run', 'print the YAML; change nothing (reads the Secret with --ca-from-secret)')
    .action((opts: RegisterOptions) =>
      runCommand('register', async () => {
        const options = webhookOptionsFrom(opts) // options checked before any file or API read
        try {
          const caBundle = await caBundleFrom(opts)
          const config = buildWebhookConfiguration(caBundle ? { ...options, caBundle } : options)
          if (opts.dryRun) {
            process.stdout.write(stringify(config, { lineWidth: 0 }))
            return EXIT.ok
          }
          const outcome = await apply(config)
          process.stdout.write(`mutatingwebhookconfiguration/${opts.name} ${outcome}\n`)
          return EXIT.ok
        } catch (error) {
          if (error instanceof UsageError) throw error
          // The cluster refused or could not be reached.
          process.stderr.write(`vault-injector register: ${(await import('../kube/client.ts')).apiErrorText(error)}\n`)
          return EXIT.failed
        }
      }),
    )
}
