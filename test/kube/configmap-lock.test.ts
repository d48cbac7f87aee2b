// The ConfigMap lock (vault-k8s-leader) under the same elector as the Lease,
// through the real client-node against the fake API.
import t from 'tap'
import { configMapLockStore, LEADER_ANNOTATION, leaseFromConfigMap } from '../../src/kube/configmap-lock.ts'
import { injectorNamespace } from '../../src/kube/client.ts'
import { LeaderElector } from '../../src/kube/leader.ts'
import { startFakeApi, type FakeApi } from '../helpers/fake-api.ts'
import { manualTimers } from '../helpers/manual-timers.ts'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const NS = 'vault'
const LOCK = `/api/v1/namespaces/${NS}/configmaps/vault-k8s-leader`
const quiet = { info() {}, warn() {}, error() {} }

function elector(api: FakeApi, clock: { ms: number }, identity: string, events: string[]): LeaderElector {
  return new LeaderElector({
    store: configMapLockStore(api.kubeConfig, NS),
    namespace: NS,
    name: 'vault-k8s-leader',
    identity,
    now: () => clock.ms,
    timers: manualTimers(),
    logger: quiet,
    onChange: (leading) => events.push(`${identity}:${leading}`),
  })
}

const record = (api: FakeApi): Record<string, unknown> => JSON.parse(api.objects.get(LOCK)!.metadata.annotations[LEADER_ANNOTATION])

t.test('one leader on the ConfigMap; renewals keep it; takeover after a whole unrenewed lease duration; release on stop', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  const clock = { ms: Date.parse('2026-12-03T08:00:00Z') }
  const events: string[] = []
  const a = elector(api, clock, 'pod-a', events)
  const b = elector(api, clock, 'pod-b', events)
  t.equal(await a.tryAcquireOrRenew(), true, 'the first candidate creates the ConfigMap')
  t.match(record(api), { holderIdentity: 'pod-a', leaseDurationSeconds: 15, leaderTransitions: 0 })
  t.equal(await b.tryAcquireOrRenew(), false, 'the second follows')
  clock.ms += 5_000
  const renewed = String(record(api).renewTime)
  t.equal(await a.tryAcquireOrRenew(), true, 'the holder renews')
  t.not(record(api).renewTime, renewed, 'renewTime moved')
  clock.ms += 14_000
  t.equal(await b.tryAcquireOrRenew(), false, 'b sees the renewed version for the first time: its 15 s start now')
  clock.ms += 15_000
  t.equal(await b.tryAcquireOrRenew(), true, 'unrenewed for a whole lease duration: b takes over')
  t.match(record(api), { holderIdentity: 'pod-b', leaderTransitions: 1 })
  await b.stop()
  t.equal(record(api).holderIdentity, '', 'released on stop')
  t.equal(await a.tryAcquireOrRenew(), true, 'a released lock is taken at once')
})

t.test('vault-k8s\'s leader-for-life lock (owned by its pod, no record) reads as held by that pod and is taken over, owner reference dropped, once unrenewed for a lease duration', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  api.put(LOCK, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'vault-k8s-leader', namespace: NS, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'vault-agent-injector-abc', uid: 'u1' }] } })
  t.match(leaseFromConfigMap(api.objects.get(LOCK)!).spec, { holderIdentity: 'vault-agent-injector-abc' })
  const clock = { ms: Date.parse('2026-12-03T08:00:00Z') }
  const ours = elector(api, clock, 'pod-a', [])
  t.equal(await ours.tryAcquireOrRenew(), false, 'held by the vault-k8s pod')
  clock.ms += 15_000
  t.equal(await ours.tryAcquireOrRenew(), true, 'taken over')
  t.same(api.objects.get(LOCK)!.metadata.ownerReferences, undefined, 'the owner reference is gone: the garbage collector will not delete our lock')
})

t.test('the namespace: NAMESPACE, else the service account\'s namespace file, else default', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vault-injector-sa-'))
  const file = join(dir, 'namespace')
  writeFileSync(file, 'vault\n')
  t.equal(injectorNamespace('ops', file), 'ops')
  t.equal(injectorNamespace('', file), 'vault')
  t.equal(injectorNamespace('', join(dir, 'missing')), 'default')
})
