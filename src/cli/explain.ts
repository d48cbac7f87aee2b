// `vault-injector explain -f FILE`: for every pod or pod template, whether it
// would be injected and exactly what, or why not.
import { Option, type Command } from 'commander'
import { OWNED_CONTAINERS } from '../engine/names.ts'
import type { AgentSummary } from '../engine/types.ts'
import { explainClass } from '../csi/evaluate.ts'
import { loadPolicyFile } from '../policy/load.ts'
import { evaluate, parseLabels, type Evaluation, type EvaluateOptions } from './evaluate.ts'
import { readManifests } from './manifests.ts'
import { addAgentSettingsOptions, addInputOptions, settingsFromOptions } from './options.ts'
import { EXIT, runCommand } from './run.ts'

function containersLine(e: Evaluation): string {
  type Agent = { name?: string; restartPolicy?: string }
  const spec = e.result.pod.spec as { containers?: Agent[]; initContainers?: Agent[] }
  const agents = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].filter((c) => OWNED_CONTAINERS.has(String(c.name)))
  return agents.map((c) => (c.restartPolicy === 'Always' ? `${c.name} (native sidecar)` : c.name)).join(', ')
}

function tokenLine(agent: AgentSummary): string {
  const t = agent.tokenSource
  const how = t.kind === 'projected' ? `projected token for the agents only${t.audience ? `, audience ${t.audience}` : ''}, ${t.expirationSeconds ?? 3600} s` : t.kind === 'named-volume' ? `volume ${t.volume} (agent-service-account-token-volume-name)` : `the pod's own token mount (${t.volume})`
  return `${t.tokenPath}: ${how}`
}

export function explainOne(e: Evaluation): string {
  if (e.csi) return explainClass(e.name, e.namespace, e.csi, e.warnings)
  const lines = [`${e.name} (namespace ${e.namespace}): ${e.decision === 'inject' ? 'INJECTED' : e.decision === 'skip' ? 'not injected' : 'DENIED'}`]
  const agent = e.result.agent
  if (e.decision === 'inject' && agent) {
    lines.push(`  agents: ${containersLine(e)} (mode ${agent.mode})`)
    // With a policy, what the decoded configuration says (what was judged).
    const facts = e.judgement.facts
    const role = facts ? facts.roles.join(', ') : agent.role || '(from auth-config)'
    lines.push(`  auth: ${agent.authType} at ${facts ? facts.authPaths.join(', ') : agent.authPath}, role ${role}; Vault ${facts ? facts.addresses.join(', ') : agent.vaultAddress}`)
    lines.push(`  token: ${tokenLine(agent)}`)
    lines.push(`  secrets into ${agent.appContainers.join(', ') || '(no app container)'}:`)
    for (const s of agent.secrets) {
      const template = s.template.startsWith('file:') ? `template file ${s.template.slice(5)}` : s.template === 'inline' ? 'inline template' : `${s.template.replace('default-', 'default ')} template`
      lines.push(`    ${s.file} ← ${s.path || '(template only)'} (${template}${s.pathsRead.length > (s.path ? 1 : 0) ? `; reads ${s.pathsRead.join(', ')}` : ''})`)
    }
    if (agent.secrets.length === 0) lines.push('    (none: token only)')
  } else {
    lines.push(`  why: ${e.reason}`)
  }
  for (const w of e.warnings) lines.push(`  warning: ${w}`)
  for (const f of e.verdict?.findings ?? []) if (f.mode === 'audit') lines.push(`  audit: ${f.message}`)
  return lines.join('\n')
}

// The same facts for scripts: one object per pod or pod template.
export function explainJson(e: Evaluation): Record<string, unknown> {
  const agent = e.decision === 'inject' ? e.result.agent : undefined
  return {
    name: e.name,
    namespace: e.namespace,
    decision: e.decision,
    reason: e.reason,
    ...(agent
      ? {
          agents: containersLine(e).split(', '),
          mode: agent.mode,
          auth: { type: agent.authType, path: agent.authPath, role: agent.role },
          vaultAddress: agent.vaultAddress,
          token: agent.tokenSource,
          appContainers: agent.appContainers,
          secrets: agent.secrets,
        }
      : {}),
    warnings: e.warnings,
    audit: (e.verdict?.findings ?? []).filter((f) => f.mode === 'audit').map((f) => f.message),
  }
}

export function register(program: Command): void {
  const command = program
    .command('explain')
    .description('For every pod or pod template in the files, say whether it would be injected and exactly what (agents, secrets → files, auth and token), or why not (annotation, policy rule, namespace). Exit 0, 1 if any is denied, 2 on a usage or input error.')
    .option('--strict', 'an annotation under our prefixes that is not known (a typo) denies the pod')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
  addInputOptions(command)
  addAgentSettingsOptions(command)
  command.action((opts: Record<string, unknown>) =>
    runCommand('explain', () => {
      const options: EvaluateOptions = {
        settings: settingsFromOptions(opts),
        namespace: String(opts.namespace),
        policy: typeof opts.policy === 'string' ? loadPolicyFile(opts.policy) : undefined,
        namespaceLabels: parseLabels(opts.namespaceLabels as string | undefined),
        strict: opts.strict === true,
      }
      const evaluations: Evaluation[] = []
      for (const doc of readManifests(opts.filename as string[])) {
        const object = doc.object as { kind?: unknown; items?: unknown[] }
        const items = object?.kind === 'List' && Array.isArray(object.items) ? object.items : [object]
        for (const item of items) {
          const e = evaluate(item, options)
          if (e) evaluations.push(e)
        }
      }
      if (opts.output === 'json') process.stdout.write(JSON.stringify(evaluations.map(explainJson), null, 2) + '\n')
      else process.stdout.write((evaluations.length > 0 ? evaluations.map(explainOne).join('\n\n') : 'no pods or pod templates found') + '\n')
      // As inject and kyverno apply: a denial is a failed check in CI.
      return evaluations.some((e) => e.decision === 'deny') ? EXIT.failed : EXIT.ok
    }),
  )
}
