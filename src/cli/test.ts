// `vault-injector test DIR|FILE`: run injector test suites. Exit 0 when all
// pass, 1 when any fails, 2 when a suite is malformed.
import { Option, type Command } from 'commander'
import { writeFileSync } from 'node:fs'
import { EXIT, runCommand } from './run.ts'
import { formatJunit, formatTap, formatText, runSuites } from './test-suite.ts'

export function register(program: Command): void {
  program
    .command('test')
    .description('Run injector test suites (*injector-test.yaml, searched recursively): expectations on injection, denials, warnings, JSON pointers and golden output, plus built-in checks (idempotent, deterministic, valid Pod). Exit 0 all pass, 1 any fails, 2 malformed suite.')
    .argument('<path>', 'a suite file, or a directory to search')
    .addOption(new Option('-o, --output <format>', 'report format').choices(['text', 'junit', 'tap']).default('text'))
    .option('--output-file <file>', 'write the report to a file instead of stdout (a text summary still goes to stdout)')
    .action((path: string, opts: { output: 'text' | 'junit' | 'tap'; outputFile?: string }) =>
      runCommand('test', () => {
        const results = runSuites(path)
        const report = opts.output === 'junit' ? formatJunit(results) : opts.output === 'tap' ? formatTap(results) : formatText(results)
        if (opts.outputFile) {
          writeFileSync(opts.outputFile, report)
          if (opts.output !== 'text') process.stdout.write(formatText(results))
        } else process.stdout.write(report)
        return results.some((r) => r.failures.length > 0) ? EXIT.failed : EXIT.ok
      }),
    )
}
