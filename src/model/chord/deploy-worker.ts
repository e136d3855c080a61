/**
 * A worker thread of the split deployment evaluation (deploy-workers.ts): rebuilds the deployment
 * it is started with and answers each `rank` with its part's ranks and bits.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { deployOptionsOf, type RankRequest, type RowsReply } from './deploy-workers.ts';
import { deploymentFromPortable, rankDeploymentRows, type PortableDeployment } from './deployed.ts';
import { errorReply } from './worker-thread.ts';

const port = parentPort;
if (!port) throw new Error('deploy-worker.ts runs as a worker thread (deploy-workers.ts starts it)');

const dep = deploymentFromPortable(workerData as PortableDeployment);

port.on('message', (m: RankRequest) => {
  try {
    const users = Array.from(m.users);
    const { rows, bits } = rankDeploymentRows(dep, m.set, deployOptionsOf(m.options, users), users);
    const reply: RowsReply = { type: 'rows', rows, ...(bits ? { bits } : {}) };
    const buffers = [rows.users, rows.unmasked, rows.masked, rows.historyShare10, ...(bits ? [bits] : [])].map((a) => a.buffer as ArrayBuffer);
    port.postMessage(reply, buffers);
  } catch (e) {
    port.postMessage(errorReply(e));
  }
});
