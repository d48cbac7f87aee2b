import t from 'tap'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { certificateValidity, generateCA, generateClientCert, generateServingCert } from '../../src/tls/ca.ts'

const HOUR = 3_600_000

t.test('a CA signs serving and client certificates that verify against it', async (t) => {
  const ca = generateCA({ commonName: 'test CA', validityMs: 24 * HOUR })
  const caCert = new X509Certificate(ca.certPem)
  t.ok(caCert.ca, 'is a CA')
  const leaf = generateServingCert({ ca, hosts: ['vault-injector.vault-injector.svc', '127.0.0.1', '::1'], validityMs: HOUR })
  const cert = new X509Certificate(leaf.certPem)
  t.ok(cert.verify(caCert.publicKey), 'signed by the CA')
  t.equal(cert.issuer, caCert.subject)
  t.notOk(cert.ca)
  t.match(cert.subjectAltName, /DNS:vault-injector\.vault-injector\.svc/)
  t.match(cert.subjectAltName, /IP Address:127\.0\.0\.1/)
  t.ok(cert.checkHost('vault-injector.vault-injector.svc'))
  t.ok(cert.checkIP('127.0.0.1'))
  t.ok(cert.checkPrivateKey(createPrivateKey(leaf.keyPem)), 'key matches')
  t.match(cert.keyUsage ?? [], ['1.3.6.1.5.5.7.3.1'], 'serverAuth')
  const validity = certificateValidity(leaf.certPem)
  t.ok(validity.notAfter.getTime() - Date.now() <= HOUR + 1000)
  t.ok(validity.notBefore.getTime() <= Date.now())

  const client = new X509Certificate(generateClientCert({ ca, commonName: 'admin', organizations: ['system:masters'], validityMs: HOUR }).certPem)
  t.ok(client.verify(caCert.publicKey))
  t.match(client.subject, /O=system:masters/)
  t.match(client.keyUsage ?? [], ['1.3.6.1.5.5.7.3.2'], 'clientAuth')
})

t.test('serials differ; a certificate needs a host', async (t) => {
  const ca = generateCA({ commonName: 'test CA', validityMs: HOUR })
  const a = certificateValidity(generateServingCert({ ca, hosts: ['a'], validityMs: HOUR }).certPem)
  const b = certificateValidity(generateServingCert({ ca, hosts: ['a'], validityMs: HOUR }).certPem)
  t.not(a.serialNumber, b.serialNumber)
  t.throws(() => generateServingCert({ ca, hosts: [], validityMs: HOUR }), /at least one host/)
})
