// The metrics serve registers beside the webhook's own: which build runs,
// when the serving certificate expires, whether this replica leads.
import t from 'tap'
import { Registry } from 'prom-client'
import { registerBuildInfo, registerCertificateExpiry, registerLeadership } from '../../src/webhook/metrics.ts'
import { generateCA, generateServingCert } from '../../src/tls/ca.ts'
import type { CertPair } from '../../src/tls/source.ts'
import { X509Certificate } from 'node:crypto'

t.test('build info: 1, with the version and Node.js version as labels', async (t) => {
  const registry = new Registry()
  registerBuildInfo(registry, '1.2.3')
  t.match(await registry.metrics(), new RegExp(`^vault_injector_build_info\\{version="1\\.2\\.3",node_version="${process.version.replaceAll('.', '\\.')}"\\} 1$`, 'm'))
})

t.test('certificate expiry: the notAfter of the pair in use, following a rotation', async (t) => {
  const registry = new Registry()
  const ca = generateCA({ commonName: 'test CA', validityMs: 86_400_000 })
  let pair: CertPair | undefined
  registerCertificateExpiry(registry, () => pair)
  for (const validityMs of [3_600_000, 7_200_000]) {
    const cert = generateServingCert({ ca, hosts: ['localhost'], validityMs })
    pair = { certPem: cert.certPem, keyPem: cert.keyPem }
    const want = Math.floor(new Date(new X509Certificate(cert.certPem).validTo).getTime() / 1000)
    t.match(await registry.metrics(), new RegExp(`^vault_injector_serving_certificate_expiry_timestamp_seconds ${want}$`, 'm'))
  }
})

t.test('leadership follows the elector', async (t) => {
  const registry = new Registry()
  let leading = false
  registerLeadership(registry, () => leading)
  t.match(await registry.metrics(), /^vault_injector_leader 0$/m)
  leading = true
  t.match(await registry.metrics(), /^vault_injector_leader 1$/m)
})
