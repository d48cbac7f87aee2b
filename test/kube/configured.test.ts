// clusterMaybeConfigured: where client-node's loadFromDefault would look, without loading it.
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { clusterMaybeConfigured } from '../../src/kube/configured.ts'

t.test('looks where client-node looks: KUBECONFIG, $HOME/.kube/config, the service-account token', async (t) => {
  const dir = t.testdir({})
  const noToken = join(dir, 'no-token')
  const home = join(dir, 'home')
  mkdirSync(home)
  t.equal(clusterMaybeConfigured({ HOME: home }, 'linux', noToken), false, 'nothing configured: client-node is not loaded')
  t.equal(clusterMaybeConfigured({}, 'linux', noToken), false, 'no HOME either')
  t.equal(clusterMaybeConfigured({ HOME: join(dir, 'missing') }, 'linux', noToken), false, 'a HOME that does not exist')
  t.equal(clusterMaybeConfigured({ HOME: home, KUBECONFIG: '/somewhere/config' }, 'linux', noToken), true, 'KUBECONFIG set')
  mkdirSync(join(home, '.kube'))
  writeFileSync(join(home, '.kube', 'config'), 'apiVersion: v1\n')
  t.equal(clusterMaybeConfigured({ HOME: home }, 'linux', noToken), true, '$HOME/.kube/config')
  const token = join(dir, 'token')
  writeFileSync(token, 'x')
  t.equal(clusterMaybeConfigured({}, 'linux', token), true, 'in a pod: the service-account token')
  t.equal(clusterMaybeConfigured({}, 'win32', noToken), true, 'Windows: client-node decides')
})
