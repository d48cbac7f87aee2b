// Node.js 24 or a clear message, checked first by every entry point: the
// `vault-injector` command (bin/vault-injector.js), dist/cli.js (the image,
// `npm start`) and `npm start`'s build step. Plain JavaScript that any Node
// parses: on Node 20, dist/cli.js would otherwise exit 0 without a word
// (`import.meta.main` is undefined there, so its main block never runs).
const major = Number(process.versions.node.split('.')[0])
if (major < 24) {
  process.stderr.write(
    `vault-injector needs Node.js 24 or later; this is Node.js ${process.version} (${process.execPath}).\n` +
      'Install Node.js 24 (https://nodejs.org), or in a clone of the repository run it through npm\n' +
      '(npx vault-injector, npm start) after `npm ci`: the project brings its own Node 24.\n',
  )
  process.exit(1)
}
