import t from 'tap'
import { parseAttributes, parseObjects, vaultPathOf } from '../../src/csi/params.ts'

// Attributes as the driver sends them: the class's parameters plus the pod's.
function attributes(params: Record<string, string>, tokens?: Record<string, { token: string; expirationTimestamp: string }>): string {
  return JSON.stringify({
    'csi.storage.k8s.io/pod.name': 'web-0',
    'csi.storage.k8s.io/pod.namespace': 'team-a',
    'csi.storage.k8s.io/pod.uid': '1a2b',
    'csi.storage.k8s.io/serviceAccount.name': 'web',
    'csi.storage.k8s.io/ephemeral': 'false',
    secretProviderClass: 'vault-db',
    ...(tokens ? { 'csi.storage.k8s.io/serviceAccount.tokens': JSON.stringify(tokens) } : {}),
    ...params,
  })
}

const OBJECTS = `- objectName: "db-password"
  secretPath: "secret/data/db"
  secretKey: "password"
- objectName: cert.pem
  secretPath: pki/issue/web
  method: PUT
  secretArgs:
    common_name: web.example.com
  filePermission: 0600
  encoding: base64
`

t.test('HashiCorp parameter names and meanings', async (t) => {
  const p = parseAttributes(attributes({ roleName: 'db', vaultAddress: 'https://vault:8200', vaultNamespace: 'ns1', vaultAuthMountPath: 'k8s-east', audience: 'vault-east', vaultSkipTLSVerify: 'false', vaultCACertPath: '/ca.pem', vaultCADirectory: '/cas', vaultTLSServerName: 'vault.internal', vaultTLSClientCertPath: '/c.pem', vaultTLSClientKeyPath: '/k.pem', objects: OBJECTS }, { 'vault-east': { token: 'jwt-east', expirationTimestamp: '2026-01-01T00:00:00Z' }, vault: { token: 'jwt-default', expirationTimestamp: '' } }), '/var/lib/kubelet/pods/1a2b/volumes/x/mount', '420')
  t.equal(p.roleName, 'db')
  t.equal(p.vaultAddress, 'https://vault:8200')
  t.equal(p.vaultNamespace, 'ns1')
  t.equal(p.authMountPath, 'k8s-east')
  t.equal(p.serviceAccountToken, 'jwt-east', 'the token for the configured audience')
  t.same(p.tls, { caCertPath: '/ca.pem', caDirectory: '/cas', serverName: 'vault.internal', clientCertPath: '/c.pem', clientKeyPath: '/k.pem', skipVerify: false })
  t.same(p.pod, { name: 'web-0', uid: '1a2b', namespace: 'team-a', serviceAccountName: 'web' })
  t.equal(p.permission, 0o644)
  t.same(p.objects, [
    { objectName: 'db-password', secretPath: 'secret/data/db', secretKey: 'password', method: '', filePermission: 0, encoding: '' },
    { objectName: 'cert.pem', secretPath: 'pki/issue/web', secretKey: '', method: 'PUT', secretArgs: { common_name: 'web.example.com' }, filePermission: 0o600, encoding: 'base64' },
  ])
})

t.test('defaults: audience "vault", the old mount-path name, no token when the driver sent none', async (t) => {
  const p = parseAttributes(attributes({ roleName: 'db', vaultKubernetesMountPath: 'kubernetes-old', objects: OBJECTS }, { vault: { token: 'jwt-default', expirationTimestamp: '' } }), '/t', '420')
  t.equal(p.serviceAccountToken, 'jwt-default')
  t.equal(p.authMountPath, 'kubernetes-old')
  t.equal(p.vaultAddress, '', 'the provider default applies')
  t.equal(parseAttributes(attributes({ roleName: 'db', objects: OBJECTS }), '/t', '420').serviceAccountToken, '')
  t.equal(parseAttributes(attributes({ roleName: 'db', audience: 'other', objects: OBJECTS }, { vault: { token: 'x', expirationTimestamp: '' } }), '/t', '420').serviceAccountToken, '', 'a token for another audience is not used')
})

t.test('refusals as HashiCorp words them', async (t) => {
  const bad = (params: Record<string, string>, pattern: RegExp, targetPath = '/t'): void => {
    t.throws(() => parseAttributes(attributes(params), targetPath, '420'), pattern, pattern.source)
  }
  bad({ objects: OBJECTS }, /missing 'roleName' in SecretProviderClass definition/)
  bad({ roleName: 'r' }, /no secrets configured/)
  bad({ roleName: 'r', objects: OBJECTS }, /missing target path/, '')
  bad({ roleName: 'r', objects: OBJECTS, vaultKubernetesMountPath: 'a', vaultAuthMountPath: 'b' }, /cannot set both vaultKubernetesMountPath and vaultAuthMountPath/)
  bad({ roleName: 'r', objects: OBJECTS, vaultSkipTLSVerify: 'yes' }, /vaultSkipTLSVerify: "yes" is not a boolean/)
  bad({ roleName: 'r', objects: '- objectName: a\n  secretPath: x\n- objectName: a\n  secretPath: y\n' }, /must be unique, but the following keys were duplicated: a/)
  bad({ roleName: 'r', objects: '- objectName: ../etc/passwd\n  secretPath: x\n' }, /objectName "\.\.\/etc\/passwd" must be a relative path/)
  bad({ roleName: 'r', objects: '- objectName: /abs\n  secretPath: x\n' }, /must be a relative path/)
  bad({ roleName: 'r', objects: '- objectName: a\n  secretPath: x\n  encoding: rot13\n' }, /encoding "rot13" is not utf-8, base64 or hex/)
  bad({ roleName: 'r', objects: '- objectName: a\n  secretPath: x\n  filePermission: 0999\n' }, /filePermission "0999" is not a file mode/)
  bad({ roleName: 'r', objects: 'objectName: a' }, /must be a YAML list/)
  t.throws(() => parseAttributes('{"roleName": 5}', '/t', '420'), /parameter roleName: must be a string/)
})

t.test('objects YAML: scalars read as Go reads them into strings', async (t) => {
  t.same(parseObjects('- objectName: 123\n  secretPath: secret/data/x\n  secretKey: true\n  filePermission: 0o640\n  unknown: ignored\n'), [{ objectName: '123', secretPath: 'secret/data/x', secretKey: 'true', method: '', filePermission: 0o640, encoding: '' }])
  t.equal(parseObjects('- objectName: a\n  secretPath: x\n  filePermission: 384\n')[0]!.filePermission, 0o600, 'decimal')
  t.same(parseObjects(''), [])
})

t.test('secret paths as Vault sees them', async (t) => {
  for (const [path, expected] of [['secret/data/app', 'secret/data/app'], ['/v1/secret/data/app?version=2', 'secret/data/app'], ['v1/pki/issue/web', 'pki/issue/web'], ['/database/creds/ro', 'database/creds/ro']]) {
    t.equal(vaultPathOf(path!), expected)
  }
})
