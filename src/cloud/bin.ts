#!/usr/bin/env node
/**
 * The package's command line (`npx chord-rerank <command>`), built to dist/bin.js so it runs on
 * plain Node, without tsx:
 *   chord-rerank serve --models <dir> [...]     the strategy server (src/cloud/serve.ts)
 *   chord-rerank export-page <artifact> <out>   the page's files of a trained artifact, nothing else
 *                                               (the item table in 8 bits unless --item-table fp32)
 */
import { runCli, UsageError } from '../cli/run-cli.ts';
import { parseArgs } from 'node:util';
import { EXPORT_ITEM_TABLES, EXPORT_PAGE_USAGE, exportPage, type ExportItemTable } from './export-page.ts';
import { serveCommand, serveUsage } from './serve.ts';

const USAGE = `usage: chord-rerank <command> [options]   (chord-rerank <command> --help for its options)
  serve --models <dir> [--port 8080] [--host 127.0.0.1] ...   the strategy server over <dir>/<modelId>/
  export-page <artifact dir> <out dir> [--item-table q8|fp32]  write a trained model's page files (no hypernets)`;

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
        let parsed;
        try {
          parsed = parseArgs({ args: [...argv], allowPositionals: true, options: { 'item-table': { type: 'string', default: 'q8' } } });
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
        const [artifact, out, ...extra] = parsed.positionals;
        if (artifact === undefined || out === undefined || extra.length > 0) {
          throw new UsageError('expects exactly two arguments: <artifact dir> <out dir>');
        }
        const itemTable = parsed.values['item-table'] as ExportItemTable;
        if (!EXPORT_ITEM_TABLES.includes(itemTable)) throw new UsageError(`--item-table must be one of ${EXPORT_ITEM_TABLES.join(', ')}, got ${itemTable}`);
        const written = await exportPage(artifact, out, { itemTable });
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
