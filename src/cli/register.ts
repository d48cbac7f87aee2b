// `vault-injector register`: create or update the MutatingWebhookConfiguration
// through the current kubeconfig (or in-cluster config); --dry-run prints it.
import { AdmissionregistrationV1Api, CoreV1Api, type V1MutatingWebhookConfiguration } from '@kubernetes/client-node'
import { Option, type Command } from 'commander'
import { readFileSync } from 'node:fs'
import { stringify } from 'yaml'
import { SECRET_NAME } from '../kube/auto-tls.ts'
import { apiErrorText, isNotFound, loadKubeConfig } from '../kube/client.ts'
import { buildWebhookConfiguration, DEFAULT_WEBHOOK_OPTIONS, type WebhookConfigOptions } from '../kube/webhook-config.ts'

interface RegisterOptions {
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
  dryRun?: boolean
}

export function webhookOptionsFrom(opts: RegisterOptions, caBundle?: string): WebhookConfigOptions {
  const timeoutSeconds = Number(opts.timeoutSeconds)
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 30) throw new Error(`--timeout-seconds: "${opts.timeoutSeconds}" is not accepted (1-30)`)
  const port = Number(opts.servicePort)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--service-port: "${opts.servicePort}" is not a port number`)
  return {
    name: opts.name,
    ...(opts.url ? { url: opts.url } : { service: { name: opts.service, namespace: opts.namespace, path: opts.path, port } }),
    ...(caBundle ? { caBundle } : {}),
    failurePolicy: opts.failurePolicy,
    timeoutSeconds,
    ownNamespace: opts.namespace,
  }
}

async function caBundleFrom(opts: RegisterOptions): Promise<string | undefined> {
  if (opts.caFile) return Buffer.from(readFileSync(opts.caFile, 'utf8')).toString('base64')
  if (!opts.caFromSecret) return undefined
  const api = loadKubeConfig().makeApiClient(CoreV1Api)
  const secret = await api.readNamespacedSecret({ name: SECRET_NAME, namespace: opts.namespace })
  const ca = secret.data?.['ca.crt']
  if (!ca) throw new Error(`secret ${opts.namespace}/${SECRET_NAME} has no ca.crt yet`)
  return ca
}

// Create, or replace keeping the resourceVersion; an existing caBundle is kept
// when none is given (auto-TLS or cert-manager manages it).
async function apply(config: V1MutatingWebhookConfiguration): Promise<'created' | 'updated'> {
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
  const webhooks = (config.webhooks ?? []).map((w, i) => {
    const kept = existing.webhooks?.[i]?.clientConfig.caBundle
    return w.clientConfig.caBundle || !kept ? w : { ...w, clientConfig: { ...w.clientConfig, caBundle: kept } }
  })
  await api.replaceMutatingWebhookConfiguration({ name, body: { ...config, webhooks, metadata: { ...config.metadata, resourceVersion: existing.metadata?.resourceVersion } } })
  return 'updated'
}

export function register(program: Command): void {
  program
    .command('register')
    .description('Create or update the MutatingWebhookConfiguration through the current kubeconfig (or in-cluster config). --dry-run prints its YAML instead.')
    .option('--name <name>', 'name of the MutatingWebhookConfiguration', DEFAULT_WEBHOOK_OPTIONS.name)
    .option('--namespace <ns>', 'namespace of the injector (its Service, and excluded from injection)', 'vault-injector')
    .option('--service <name>', 'Service in front of the injector', 'vault-injector')
    .option('--service-port <port>', 'Service port', '443')
    .option('--path <path>', 'path of the mutate endpoint', '/mutate')
    .option('--url <url>', 'call the webhook at this URL instead of a Service (a server outside the cluster)')
    .option('--ca-file <file>', 'PEM CA that signed the serving certificate, for caBundle')
    .option('--ca-from-secret', `read caBundle from the auto-TLS Secret ${SECRET_NAME}`)
    .addOption(new Option('--failure-policy <policy>', 'what the API server does when the webhook cannot answer').choices(['Ignore', 'Fail']).default('Ignore'))
    .option('--timeout-seconds <n>', 'webhook timeout, 1-30', String(DEFAULT_WEBHOOK_OPTIONS.timeoutSeconds))
    .option('--dry-run', 'print the YAML; change nothing')
    .action(async (opts: RegisterOptions) => {
      try {
        const config = buildWebhookConfiguration(webhookOptionsFrom(opts, opts.dryRun && !opts.caFile ? undefined : await caBundleFrom(opts)))
        if (opts.dryRun) {
          process.stdout.write(stringify(config, { lineWidth: 0 }))
          return
        }
        const outcome = await apply(config)
        process.stdout.write(`mutatingwebhookconfiguration/${opts.name} ${outcome}\n`)
      } catch (error) {
        process.stderr.write(`vault-injector register: ${apiErrorText(error)}\n`)
        process.exitCode = 1
      }
    })
}
