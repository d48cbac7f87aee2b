// The namespace-label cache (policy label selectors) through client-node's
// informer against the fake API: filled from a list, kept current by a watch.
import t from 'tap'
import { watchNamespaceLabels } from '../../src/kube/namespaces.ts'
import { startFakeApi } from '../helpers/fake-api.ts'

const quiet = { info() {}, warn() {}, error() {} }
const ns = (name: string, labels: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } })

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
}

t.test('labels come from the list, follow changes, and default to the name label', async (t) => {
  const api = await startFakeApi()
  t.teardown(() => api.close())
  api.put('/api/v1/namespaces/shop', ns('shop', { environment: 'production' }))
  const cache = watchNamespaceLabels(api.kubeConfig, quiet)
  t.teardown(() => cache.stop())
  t.equal(cache.synced(), false, 'not synced before the list')
  await until(() => cache.synced())
  t.equal(cache.labels('shop')?.environment, 'production', 'once synced, the listed labels are there')
  t.same(cache.labels('shop'), { 'kubernetes.io/metadata.name': 'shop', environment: 'production' })
  t.equal(cache.labels('new-one'), undefined, 'not seen yet: unknown, so the policy fails closed for rules that select by label')

  api.put('/api/v1/namespaces/shop', ns('shop', { environment: 'staging' }))
  await until(() => cache.labels('shop')?.environment === 'staging')
  t.equal(cache.labels('shop')?.environment, 'staging', 'a relabel arrives through the watch')
  api.put('/api/v1/namespaces/team-b', ns('team-b', { team: 'b' }))
  await until(() => cache.labels('team-b')?.team === 'b')
  t.equal(cache.labels('team-b')?.team, 'b', 'a new namespace too')
  t.ok(api.requests.some((r) => r.path === '/api/v1/namespaces' && new URLSearchParams(r.query).get('watch') === 'true'), 'watched, not polled')
})
