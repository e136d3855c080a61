#!/usr/bin/env node
/**
 * The package's command line (`npx chord-rerank <command>`), built to dist/bin.js so it runs on
 * plain Node, without tsx:
 *   chord-rerank serve --models <dir> [...]     the strategy server (src/cloud/serve.ts)
 *   chord-rerank export-page <artifact> <out>   the page's files of a trained artifact, nothing else
 */
import { runCli, UsageError } from '../cli/run-cli.ts';
import { EXPORT_PAGE_USAGE, exportPage } from './export-page.ts';
import { serveCommand, serveUsage } from './serve.ts';

const USAGE = `usage: chord-rerank <command> [options]   (chord-rerank <command> --help for its options)
  serve --models <dir> [--port 8080] [--host 127.0.0.1] ...   the strategy server over <dir>/<modelId>/
  export-page <artifact dir> <out dir>                         copy a trained model's page files (no hypernets)`;

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case 'serve':
    await runCli({ program: 'chord-rerank serve', usage: serveUsage('chord-rerank serve'), argv: rest, main: serveCommand });
    break;
  case 'export-page':
    await runCli({
      program: 'chord-rerank export-page',
      usage: EXPORT_PAGE_USAGE,
      argv: rest,
      main: async (argv) => {
        const [artifact, out, ...extra] = argv;
        if (artifact === undefined || out === undefined || extra.length > 0 || [artifact, out].some((a) => a.startsWith('-'))) {
          throw new UsageError('expects exactly two arguments: <artifact dir> <out dir>');
        }
        const written = await exportPage(artifact, out);
        console.log(`wrote ${written.join(', ')} to ${out}`);
      },
    });
    break;
  default:
    await runCli({
      program: 'chord-rerank',
      usage: USAGE,
      argv: command === undefined ? ['--help'] : [command, ...rest],
      main: () => {
        throw new UsageError(`unknown command "${command}"`);
      },
    });
}
