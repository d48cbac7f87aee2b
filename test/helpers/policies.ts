// Policies the bypass and property tests share: pins on everything the policy can restrict.
const V = 'vault.hashicorp.com/'

export const PINS = `apiVersion: vault-injector.dev/v1alpha1
kind: InjectorPolicy
metadata: {name: pins}
spec:
  rules:
    - name: team-a
      namespaces: {names: [team-a]}
      allow:
        roles: [app]
        secretPaths: ["secret/data/team-a/**"]
        authPaths: [auth/kubernetes]
        vaultAddresses: ["https://vault-dr.corp.example.com:*", "https://*.vault.corp.example.com:8200"]
        vaultNamespaces: [team-a, root]
        agentImages: ["hashicorp/vault:*"]
      require: {resourceLimits: true, restrictedSecurityContext: true, noTlsSkipVerify: true}
      defaults:
        ${V}service: https://a.vault.corp.example.com:8200
`
// The same pins, with both json-patch annotations allowed: the patched agents are still judged.
export const PATCHES_ALLOWED = PINS.replace('agentImages: ["hashicorp/vault:*"]', 'agentImages: ["hashicorp/vault:*"]\n        escapeHatches: [agent-json-patch, agent-init-json-patch]')

