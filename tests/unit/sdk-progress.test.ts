import { describe, expect, it } from 'vitest';
import { readWithProgress } from '../../src/device/artifacts.ts';
import type { ProgressReport } from '../../src/device/progress.ts';

function streamOf(chunks: number[][]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(new Uint8Array(c));
      controller.close();
    },
  });
}

async function reports(res: Response): Promise<ProgressReport[]> {
  const seen: ProgressReport[] = [];
  await readWithProgress(res, 'x.bin', (r) => seen.push(r));
  return seen;
}

describe('download progress', () => {
  it('reports total undefined (not 0) when the size is unknown', async () => {
    const seen = await reports(new Response(streamOf([[1, 2], [3]])));
    expect(seen.map((r) => [r.loaded, r.total])).toEqual([
      [0, undefined],
      [2, undefined],
      [3, undefined],
    ]);
  });

  it('reports the Content-Length as total', async () => {
    const seen = await reports(new Response(streamOf([[1, 2], [3]]), { headers: { 'content-length': '3' } }));
    expect(seen.map((r) => [r.loaded, r.total])).toEqual([
      [0, 3],
      [2, 3],
      [3, 3],
    ]);
  });

  it('treats the Content-Length of a compressed body as unknown (it counts compressed bytes)', async () => {
    const headers = { 'content-length': '2', 'content-encoding': 'gzip' };
    const seen = await reports(new Response(streamOf([[1, 2], [3]]), { headers }));
    expect(seen.at(-1)).toMatchObject({ loaded: 3, total: undefined });
  });

  it('reports an empty body of known size as 0 of 0', async () => {
    const seen = await reports(new Response(streamOf([]), { headers: { 'content-length': '0' } }));
    expect(seen).toEqual([{ stage: 'download', item: 'x.bin', loaded: 0, total: 0 }]);
  });
});
