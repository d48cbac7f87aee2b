// Names of the objects the injector owns in its namespace, in a module with
// no dependencies, so the CLI can name them without loading client-node
// (which takes a second or two to import).
export const SECRET_NAME = 'vault-injector-certs'
export const LEASE_NAME = 'vault-injector-leader'
