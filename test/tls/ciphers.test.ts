import t from 'tap'
import { cipherList } from '../../src/tls/ciphers.ts'

t.test("vault-k8s's Go names and OpenSSL names both work; TLS 1.3 stays on", async (t) => {
  t.equal(cipherList(''), undefined, 'empty: Node defaults')
  t.equal(cipherList(' , '), undefined)
  const list = cipherList('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ECDHE-RSA-AES256-GCM-SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305')!
  t.same(list.split(':').slice(-3), ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305'])
  t.ok(list.startsWith('TLS_AES_128_GCM_SHA256:'), 'TLS 1.3 suites kept when none are named')
  t.equal(cipherList('TLS_AES_256_GCM_SHA384'), 'TLS_AES_256_GCM_SHA384', 'named TLS 1.3 suites are used as given')
})

t.test('unknown or unusable names are refused by name', async (t) => {
  t.throws(() => cipherList('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,NOPE'), /"NOPE" is not a cipher suite/)
  t.throws(() => cipherList('TLS_RSA_WITH_RC4_128_SHA'), /"TLS_RSA_WITH_RC4_128_SHA"/)
  t.throws(() => cipherList('HIGH:!aNULL'), /"HIGH:!aNULL"/, 'OpenSSL cipher-string syntax is not a name')
})
