#!/usr/bin/env node
// Entry point for `npx vault-injector`. The sources are TypeScript that Node 24
// runs directly by stripping types; older Node versions cannot, so say so plainly.
const major = Number(process.versions.node.split('.')[0])
if (major < 24) {
  process.stderr.write(
    `vault-injector needs Node.js 24 or later (this is ${process.version}).\n` +
      'Run it through npm (npx vault-injector, npm start) after `npm ci`: the project brings its own Node 24.\n',
  )
  process.exit(2)
}
const { buildProgram } = await import('../src/cli.ts')
await (await buildProgram(process.argv)).parseAsync(process.argv)
