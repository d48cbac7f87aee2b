// The version, from package.json (read once): `vault-injector version`, the
// server's startup line and its build-info metric all say the same.
import { readFileSync } from 'node:fs'

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
