import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { goJson, parseVaultJson } from '../../src/csi/gojson.ts'
import { CsiProvider, MountError, type MountAudit } from '../../src/csi/provider.ts'
import type { MountRequest } from '../../src/csi/proto.ts'
import { parsePolicy } from '../../src/policy/load.ts'

// A stand-in for Vault's HTTP API: Kubernetes login and KV v2 reads, with every request recorded.
interface FakeVault {
  address: string
  kv: Map<string, Record<string, unknown>>
  requests: { method: string; path: string; token: string; namespace: string; body: string }[]
  close(): Promise<void>
}

async function fakeVault(): Promise<FakeVault> {
  const kv = new Map<string, Record<string, unknown>>()
  const requests: FakeVault['requests'] = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      requests.push({ method: req.method!, path: req.url!, token: String(req.headers['x-vault-token'] ?? ''), namespace: String(req.headers['x-vault-namespace'] ?? ''), body })
      const send = (status: number, json: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(JSON.stringify(json))
      }
      if (req.url === '/v1/auth/kubernetes/login') {
        const { jwt, role } = JSON.parse(body) as { jwt: string; role: string }
        if (jwt !== 'pod-jwt' || role !== 'web') return send(403, { errors: ['permission denied'] })
        return send(200, { auth: { client_token: 'hvs.token' } })
      }
      if (req.headers['x-vault-token'] !== 'hvs.token') return send(403, { errors: ['permission denied'] })
      const data = kv.get(req.url!.split('?')[0]!.replace(/^\/v1\//, ''))
      if (!data) return send(404, { errors: [] })
      send(200, { request_id: `r${requests.length}`, lease_id: '', renewable: false, lease_duration: 0, data: { data, metadata: { version: 1 } }, wrap_info: null, warnings: null, auth: null, mount_type: 'kv' })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { address: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, kv, requests, close: () => new Promise((r) => server.close(() => r())) }
}

function request(params: Record<string, string>, current: MountRequest['currentObjectVersion'] = []): MountRequest {
  const attributes = {
    'csi.storage.k8s.io/pod.name': 'web-0',
    'csi.storage.k8s.io/pod.namespace': 'team-a',
    'csi.storage.k8s.io/pod.uid': 'uid-1',
    'csi.storage.k8s.io/serviceAccount.name': 'web',
    'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify({ vault: { token: 'pod-jwt', expirationTimestamp: '2030-01-01T00:00:00Z' } }),
    roleName: 'web',
    ...params,
  }
  return { attributes: JSON.stringify(attributes), secrets: '{}', targetPath: '/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/secrets/mount', permission: '420', currentObjectVersion: current }
}

const OBJECTS = `
- objectName: password
  secretPath: secret/data/db
  secretKey: password
- objectName: config/db.json
  secretPath: secret/data/db
  filePermission: 0600
- objectName: api-key
  secretPath: secret/data/api
  secretKey: key
  encoding: base64
`

function provider(vault: FakeVault, logs: { fields: MountAudit; message: string }[] = [], policyYaml?: string, namespaceLabels?: (ns: string) => Record<string, string> | undefined): CsiProvider {
  const policy = policyYaml ? parsePolicy(policyYaml, 'test') : undefined
  return new CsiProvider({
    ...(namespaceLabels ? { namespaceLabels } : {}),
    defaults: { vaultAddress: vault.address, authMountPath: 'kubernetes', vaultNamespace: '', tls: { caCertPath: '', caDirectory: '', serverName: '', clientCertPath: '', clientKeyPath: '', skipVerify: false } },
    logger: { info: (fields, message) => logs.push({ fields: fields as MountAudit, message }), warn: (fields, message) => logs.push({ fields: fields as MountAudit, message }) },
    ...(policy ? { policy: () => policy } : {}),
  })
}

t.test('one login, one read per distinct path; files as HashiCorp writes them', async (t) => {
  const vault = await fakeVault()
  t.teardown(() => vault.close())
  vault.kv.set('secret/data/db', { password: 's3cret<&>', port: 5432 })
  vault.kv.set('secret/data/api', { key: Buffer.from('api-key-value').toString('base64') })
  const logs: { fields: MountAudit; message: string }[] = []
  const p = provider(vault, logs)
  t.teardown(() => p.close())
  const { response, audit } = await p.mount(request({ objects: OBJECTS }))
  t.same(vault.requests.map((r) => `${r.method} ${r.path}`).sort(), ['GET /v1/secret/data/api', 'GET /v1/secret/data/db', 'POST /v1/auth/kubernetes/login'])
  t.same([audit.logins, audit.reads], [1, 2])
  t.same(response.files.map((f) => [f.path, f.mode]), [['password', 0o644], ['config/db.json', 0o600], ['api-key', 0o644]])
  t.equal(response.files[0]!.contents.toString(), 's3cret<&>')
  t.equal(response.files[1]!.contents.toString().replace(/"request_id":"r\d+"/, '"request_id":"r"'), '{"request_id":"r","lease_id":"","lease_duration":0,"renewable":false,"data":{"data":{"password":"s3cret\\u003c\\u0026\\u003e","port":5432},"metadata":{"version":1}},"warnings":null,"mount_type":"kv"}', 'the whole response, as Go marshals api.Secret')
  t.equal(response.files[2]!.contents.toString(), 'api-key-value', 'base64 decoded')
  t.same(response.objectVersion.map((v) => v.id), ['password', 'config/db.json', 'api-key'])
  const line = JSON.stringify(logs)
  t.notMatch(line, /s3cret|api-key-value|pod-jwt|hvs\.token/, 'no secret, token or value in the log')
  t.match(logs, [{ message: 'csi mount', fields: { decision: 'mount', namespace: 'team-a', pod: 'web-0', role: 'web', authPath: 'auth/kubernetes', secretPaths: ['secret/data/db', 'secret/data/api'], logins: 1, reads: 2 } }])
})

const ROTATED_KEY = 'rotated-api-key-2f9c'

t.test('rotation: unchanged objects keep their versions, a changed one gets a new version and file', async (t) => {
  const vault = await fakeVault()
  t.teardown(() => vault.close())
  vault.kv.set('secret/data/db', { password: 'one', port: 5432 })
  vault.kv.set('secret/data/api', { key: Buffer.from('k').toString('base64') })
  const p = provider(vault)
  t.teardown(() => p.close())
  const first = await p.mount(request({ objects: OBJECTS }))
  const again = await p.mount(request({ objects: OBJECTS }, first.response.objectVersion))
  t.same(again.response.objectVersion, first.response.objectVersion, 'same contents, same versions (a whole response\'s request_id, new on every read, does not count)')
  t.same(again.audit.changed, [])
  // Long enough that a random version cannot contain it by chance (a two-letter
  // value matched a random HMAC about once in a hundred runs).
  vault.kv.set('secret/data/api', { key: Buffer.from(ROTATED_KEY).toString('base64') })
  const rotated = await p.mount(request({ objects: OBJECTS }, first.response.objectVersion))
  t.same(rotated.audit.changed, ['api-key'])
  t.equal(rotated.response.files[2]!.contents.toString(), ROTATED_KEY)
  t.not(rotated.response.objectVersion[2]!.version, first.response.objectVersion[2]!.version)
  t.notOk([ROTATED_KEY, Buffer.from(ROTATED_KEY).toString('base64')].some((v) => rotated.response.objectVersion[2]!.version.includes(v)), 'the version is not the value')
  const other = provider(vault)
  t.teardown(() => other.close())
  t.not((await other.mount(request({ objects: OBJECTS }))).response.objectVersion[0]!.version, rotated.response.objectVersion[0]!.version, 'another process (another key) gives other versions: equal contents cannot be told apart across processes')
})

t.test('errors name the object and Vault\'s answer', async (t) => {
  const vault = await fakeVault()
  t.teardown(() => vault.close())
  vault.kv.set('secret/data/db', { password: 'x' })
  const p = provider(vault)
  t.teardown(() => p.close())
  await t.rejects(p.mount(request({ objects: '- objectName: missing\n  secretPath: secret/data/nope\n' })), { message: /object "missing": Vault answered 404 for GET \/v1\/secret\/data\/nope/ })
  await t.rejects(p.mount(request({ objects: '- objectName: pw\n  secretPath: secret/data/db\n  secretKey: user\n' })), { message: /object "pw" \(secret\/data\/db\): key "user" does not exist at the secret path/ })
  await t.rejects(p.mount(request({ roleName: 'admin', objects: OBJECTS })), { message: /Vault login at \/v1\/auth\/kubernetes\/login with role "admin" failed: 403 permission denied/ })
  const noToken = JSON.parse(request({ objects: OBJECTS }).attributes) as Record<string, string>
  delete noToken['csi.storage.k8s.io/serviceAccount.tokens']
  await t.rejects(p.mount({ ...request({}), attributes: JSON.stringify(noToken) }), { message: /no service-account token for audience "vault".*tokenRequests/, grpcCode: 'INVALID_ARGUMENT' })
  await t.rejects(p.mount(request({})), { message: /SecretProviderClass: no secrets configured/, grpcCode: 'INVALID_ARGUMENT' })
})

t.test('the injector policy judges the class; a denial reaches Vault not at all', async (t) => {
  const vault = await fakeVault()
  t.teardown(() => vault.close())
  vault.kv.set('secret/data/db', { password: 'x' })
  const logs: { fields: MountAudit; message: string }[] = []
  const policy = `apiVersion: vault-injector.dev/v1alpha1\nkind: InjectorPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: team-a\n      namespaces: {names: [team-a]}\n      allow: {roles: [web], secretPaths: ["secret/data/db"], authPaths: [auth/kubernetes], vaultAddresses: ["${vault.address}"], vaultNamespaces: [root, team-a]}\n      require: {noTlsSkipVerify: true}\n`
  const p = provider(vault, logs, policy)
  t.teardown(() => p.close())
  await p.mount(request({ objects: '- objectName: pw\n  secretPath: secret/data/db\n  secretKey: password\n' }))
  const before = vault.requests.length
  const denied = await p.mount(request({ objects: OBJECTS })).catch((e: unknown) => e)
  t.ok(denied instanceof MountError)
  t.equal((denied as MountError).grpcCode, 'PERMISSION_DENIED')
  t.match((denied as Error).message, /denied by the vault-injector policy: policy rule "team-a": secret path "secret\/data\/api" \(rendered to api-key\) is not allowed in namespace team-a/)
  await t.rejects(p.mount(request({ vaultAuthMountPath: 'other', objects: '- objectName: pw\n  secretPath: secret/data/db\n' })), { message: /auth path "auth\/other" is not allowed/ })
  await t.rejects(p.mount(request({ vaultAddress: 'https://vault.evil.example:8200', vaultSkipTLSVerify: 'true', objects: '- objectName: pw\n  secretPath: secret/data/db\n' })), { message: /Vault address "https:\/\/vault.evil.example:8200" is not allowed.*tls-skip-verify must not be true/ })
  await t.rejects(p.mount(request({ vaultNamespace: 'team-b', objects: '- objectName: pw\n  secretPath: secret/data/db\n' })), { message: /Vault namespace "team-b" is not allowed/ })
  await t.rejects(p.mount(request({ objects: '- objectName: pw\n  secretPath: secret/data/db/../../sys/raw\n' })), { message: /secret path "secret\/data\/db\/..\/..\/sys\/raw" \(rendered to pw\) is refused: it has an empty, . or .. segment/ })
  t.equal(vault.requests.length, before, 'no Vault call for a denied mount')
  t.match(logs.at(-1), { message: 'csi mount', fields: { decision: 'deny', policyFindings: [{ rule: 'team-a', mode: 'enforce' }] } })
})

t.test('a namespace whose labels are unknown: rules that select by label judge the class (fail closed)', async (t) => {
  const vault = await fakeVault()
  t.teardown(() => vault.close())
  vault.kv.set('secret/data/db', { password: 'x' })
  const policy = `apiVersion: vault-injector.dev/v1alpha1\nkind: InjectorPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: by-label\n      namespaces: {selector: {matchLabels: {team: a}}}\n      allow: {roles: [other]}\n`
  const objects = '- objectName: pw\n  secretPath: secret/data/db\n  secretKey: password\n'
  const seenElsewhere = provider(vault, [], policy, () => ({ 'kubernetes.io/metadata.name': 'team-a', team: 'b' }))
  t.teardown(() => seenElsewhere.close())
  await seenElsewhere.mount(request({ objects }))
  t.pass('labels known and not selected: mounted')
  for (const [what, labels] of [['not seen by the watch yet', () => undefined], ['no cluster to read labels from', undefined]] as const) {
    const p = provider(vault, [], policy, labels)
    t.teardown(() => p.close())
    await t.rejects(p.mount(request({ objects })), { message: /Vault role "web" is not allowed.*not known to vault-injector yet/ }, what)
  }
})

// An app team's class against a rule that allows one path: every way of writing a secretPath is either denied
// or read from Vault at exactly the path the policy judged (a query aside), and a method other than GET
// changes nothing about which path is judged.
t.test('what the policy judges is what the provider reads: every spelling of a secretPath', async (t) => {
  const vault = await fakeVault()
  t.teardown(() => vault.close())
  vault.kv.set('secret/data/db', { password: 'x' })
  const policy = `apiVersion: vault-injector.dev/v1alpha1\nkind: InjectorPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: team-a\n      namespaces: {names: [team-a]}\n      allow: {roles: [web], secretPaths: ["secret/data/db"]}\n`
  const p = provider(vault, [], policy)
  t.teardown(() => p.close())
  const spellings = ['secret/data/db', '/secret/data/db', 'v1/secret/data/db', '/v1/secret/data/db', 'secret/data/db?version=1', 'secret/data/db?/../../team-b/x', '//v1/secret/data/team-b', '/v1/v1/secret/data/db', 'secret/data/db/', 'secret/data//db', 'secret/data/db/../../team-b', 'secret/data/./db', 'secret/data/%64b', 'secret\\data\\db', 'secret/data/db#x', 'secret/data/team-b', 'auth/token/create']
  for (const secretPath of spellings) {
    for (const method of ['', 'POST']) {
      const before = vault.requests.length
      const objects = `- objectName: pw\n  secretPath: ${JSON.stringify(secretPath)}\n${method ? `  method: ${method}\n` : ''}`
      const outcome = await p.mount(request({ objects })).then(() => 'mounted', (e: Error) => e.message)
      // The two ends, so that a provider refusing everything fails here too.
      if (secretPath === 'secret/data/db' && method === '') t.equal(outcome, 'mounted', 'the plain, allowed spelling mounts')
      if (secretPath === 'secret/data/team-b') t.match(outcome, /denied by the vault-injector policy/, `${method || 'GET'} another team's path is denied`)
      const reads = vault.requests.slice(before).filter((r) => !r.path.startsWith('/v1/auth/kubernetes/login')).map((r) => r.path.split('?')[0])
      if (outcome === 'mounted') t.same(reads, ['/v1/secret/data/db'], `${method || 'GET'} ${secretPath}: read at the judged path only`)
      else if (/denied by the vault-injector policy/.test(outcome)) t.same(reads, [], `${method || 'GET'} ${secretPath}: denied, no read`)
      else t.ok(reads.every((r) => r === '/v1/secret/data/db'), `${method || 'GET'} ${secretPath}: failed (${outcome.slice(0, 80)}); nothing read but the judged path`)
    }
  }
})

t.test('Go-style JSON: sorted keys, HTML escapes, numbers as sent', async (t) => {
  t.equal(goJson(parseVaultJson('{"b":1.50,"a":[true,null,"<x>"],"\u00e9":{"z":1e3,"y":12345678901234567890}}')), '{"a":[true,null,"\\u003cx\\u003e"],"b":1.50,"é":{"y":12345678901234567890,"z":1e3}}')
  t.equal(goJson('tab\there\u2028\u0001'), '"tab\\there\\u2028\\u0001"')
})
