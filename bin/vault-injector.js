#!/usr/bin/env node
// Entry point of the `vault-injector` command. In a clone it runs the
// TypeScript sources (Node 24 strips the types; no build step). The npm
// package ships no sources but dist/, their stripped build: Node does not
// strip types under node_modules/ (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING).
import './require-node.js'
import { existsSync } from 'node:fs'

const cli = new URL(existsSync(new URL('../src/cli.ts', import.meta.url)) ? '../src/cli.ts' : '../dist/cli.js', import.meta.url)
const { buildProgram, dropShellRedirect } = await import(cli.href)
const argv = dropShellRedirect(process.argv)
await (await buildProgram(argv)).parseAsync(argv)
