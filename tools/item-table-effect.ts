/**
 * What the page's 8-bit item table (src/core/item-table.ts) does to a trained model's ranking:
 * every test user ranked through the deployment path twice, with the artifact's float32 item
 * table and with the 8-bit table the page scores with, and the paired NDCG@10 difference.
 *
 *   npm run item-table-effect -- <artifact dir> --data <dataset> [--k-core 10] [--gru-window 20]
 */
import { parseArgs } from 'node:util';
import { UsageError, runCli } from '../src/cli/run-cli.ts';
import { dequantizeItemTable, quantizeItemTable } from '../src/core/item-table.ts';
import { pairedDifference } from '../src/core/paired.ts';
import { parseCoreThreshold } from '../src/data/kcore.ts';
import { loadDataset } from '../src/data/load.ts';
import { prepareDataset } from '../src/data/split.ts';
import { testHistories } from '../src/model/chord/data.ts';
import { prepareDeployment, rankDeployment } from '../src/model/chord/deployed.ts';
import { readArtifact } from '../src/model/export.ts';
import { mean, ndcgs } from './probe-strategy.ts';

const USAGE = `usage: npm run item-table-effect -- <artifact dir> --data <dataset> [--k-core 10] [--gru-window 20]
  Ranks the test users with the artifact's float32 item table and with the page's 8-bit one, and prints
  both NDCG@10s, their paired difference (8-bit − float32, 95% interval) and the share of users whose
  target rank did not move.`;

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { data: { type: 'string' }, 'k-core': { type: 'string', default: '10' }, 'gru-window': { type: 'string', default: '20' } },
  });
  if (positionals.length !== 1) throw new UsageError('expects one artifact dir');
  if (!values.data) throw new UsageError('--data <dataset> is required');
  const ds = prepareDataset(loadDataset(values.data).interactions, { k: parseCoreThreshold(values['k-core']!) }).split;
  const artifact = readArtifact(positionals[0]!);
  const emb = artifact.backbone.get('item_emb');
  if (!emb || emb.shape.length !== 2) throw new UsageError('the artifact has no [rows, dim] item_emb');
  const [rows, dim] = emb.shape as [number, number];
  const eightBit = dequantizeItemTable(quantizeItemTable(emb.data as Float32Array, rows, dim));
  const withEightBit = { ...artifact, backbone: new Map(artifact.backbone).set('item_emb', { ...emb, data: eightBit }) };
  const opts = { gruWindow: Number(values['gru-window']) };
  const test = testHistories(ds);
  const fp32 = rankDeployment(await prepareDeployment(artifact), test, opts);
  const q8 = rankDeployment(await prepareDeployment(withEightBit), test, opts);
  let unmoved = 0;
  for (let i = 0; i < fp32.unmasked.length; i++) if (fp32.unmasked[i] === q8.unmasked[i]) unmoved++;
  console.log(
    JSON.stringify({
      artifact: positionals[0],
      ndcg10: { fp32: mean(ndcgs(fp32.unmasked)), q8: mean(ndcgs(q8.unmasked)) },
      q8MinusFp32: { unmasked: pairedDifference(ndcgs(q8.unmasked), ndcgs(fp32.unmasked)), masked: pairedDifference(ndcgs(q8.masked), ndcgs(fp32.masked)) },
      targetRankUnmoved: unmoved / fp32.unmasked.length,
    }),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) void runCli({ program: 'item-table-effect', usage: USAGE, main });
