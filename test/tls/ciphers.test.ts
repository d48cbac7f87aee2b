import t from 'tap'
import { cipherList } from '../../src/tls/ciphers.ts'

t.test("vault-k8s's Go names and OpenSSL names both work; TLS 1.3 stays on", async (t) => {
  t.equal(cipherList(''), 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305', 'empty: TLS 1.3, then ECDHE with AEAD only')
  t.equal(cipherList(' , '), cipherList(''))
  for (const weak of ['TLS_RSA_WITH_AES_128_GCM_SHA256', 'AES256-GCM-SHA384', 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA', 'ECDHE-RSA-AES128-SHA256', 'TLS_RSA_WITH_AES_128_CBC_SHA']) {
    t.throws(() => cipherList(weak), new RegExp(`"${weak}" is refused: TLS 1.2 suites must use ECDHE key exchange and an AEAD cipher`), weak)
  }
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
