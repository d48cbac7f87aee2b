// Loading the policy file (YAML or JSON), validated against
// schemas/policy.schema.json, and keeping it current while the webhook runs.
import { Ajv2020 } from 'ajv/dist/2020.js'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { UsageError } from '../errors.ts'
import { FilePoll } from '../file-poll.ts'
import type { Logger } from '../log.ts'
import { readAnnotations } from '../engine/read.ts'
import { defaultSettings } from '../settings.ts'
import { Policy, PolicyFieldError, type PolicyDocument } from './policy.ts'

// A policy that cannot be used: the message names the file and the field.
// Every command exits 2 on it; the webhook keeps its last good policy.
export class PolicyError extends UsageError {
  override name = 'PolicyError'
}

const schema = JSON.parse(readFileSync(new URL('../../schemas/policy.schema.json', import.meta.url), 'utf8')) as object
const validate = new Ajv2020({ allErrors: true, strict: false }).compile<PolicyDocument>(schema)

export function parsePolicy(text: string, origin: string): Policy {
  let document: unknown
  try {
    document = parse(text)
  } catch (error) {
    throw new PolicyError(`${origin}: not valid YAML: ${(error as Error).message.split('\n')[0]}`)
  }
  if (!validate(document)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'allowedValues' in e.params ? ` (${(e.params.allowedValues as string[]).join(', ')})` : ''}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`)
    throw new PolicyError(`${origin}: not a valid InjectorPolicy: ${problems.join('; ')}`)
  }
  const names = new Set<string>()
  document.spec.rules.forEach((rule, i) => {
    if (names.has(rule.name)) throw new PolicyError(`${origin}: /spec/rules/${i}/name: rule name "${rule.name}" is used twice`)
    names.add(rule.name)
    checkDefaults(rule.defaults ?? {}, `/spec/rules/${i}/defaults`, origin)
  })
  try {
    return new Policy(document)
  } catch (error) {
    if (error instanceof PolicyFieldError) throw new PolicyError(`${origin}: ${error.message}`)
    throw error
  }
}

// Namespace defaults are read like pod annotations: an unknown key or a value
// that does not parse would deny every pod of those namespaces, so the policy
// is refused instead.
function checkDefaults(defaults: Record<string, string>, field: string, origin: string): void {
  const reading = readAnnotations({}, defaults, defaultSettings())
  const problems = [...reading.errors, ...reading.warnings.filter((w) => w.includes('unknown annotation'))]
  if (problems.length > 0) throw new PolicyError(`${origin}: ${field}: ${problems.join('; ')}`)
}

export function loadPolicyFile(path: string): Policy {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new PolicyError(`cannot read policy ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
  }
  return parsePolicy(text, path)
}

// The webhook's view of the policy file: polled, reloaded on change; a broken
// file is reported and the last good policy stays in force.
export class PolicyWatcher {
  readonly #file: FilePoll<Policy>
  // For the metrics: failed reloads since start, and whether the file on disk is the policy in force.
  reloadFailures = 0
  fileInForce = true

  constructor(path: string, logger: Logger, pollIntervalMs = 1000) {
    this.#file = new FilePoll({
      files: [path],
      load: () => loadPolicyFile(path),
      onLoaded: (policy, previous) => {
        this.fileInForce = true
        logger.info({ policy: path, name: policy.name }, previous ? 'policy reloaded' : 'policy loaded')
      },
      onFailed: (error) => {
        this.reloadFailures++
        this.fileInForce = false
        logger.error({ policy: path, err: error.message }, 'policy not reloaded; the last good policy stays in force')
      },
    })
    // The first policy must load: serve does not start without it.
    this.#file.loadNow()
    this.#file.start(pollIntervalMs)
  }

  poll(): void {
    this.#file.poll()
  }

  // Read the file again now, changed or not (SIGHUP).
  reload(): void {
    this.#file.pollNow()
  }

  current(): Policy | undefined {
    return this.#file.current()
  }

  close(): void {
    this.#file.stop()
  }
}
