import t from 'tap'
import { CoreV1Api } from '@kubernetes/client-node'
import { startControlPlane } from './harness.ts'

t.test('control plane starts', async (t) => {
  const cp = await startControlPlane()
  t.teardown(() => cp.stop())
  const api = cp.kubeConfig.makeApiClient(CoreV1Api)
  const ns = await api.listNamespace()
  t.ok(ns.items.some((n) => n.metadata?.name === 'default'))
})
