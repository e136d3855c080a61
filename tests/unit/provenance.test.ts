/**
 * Run provenance: codeRevision on a real git checkout (commit, dirty tracked files, results/
 * ignored, outside git), and the results file's line counting runs per commit.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { codeRevision } from '../../src/model/provenance.ts';
import { codeRevisionsLine } from '../../src/model/reproduce/markdown.ts';
import type { FinishedRun } from '../../src/model/reproduce/plan.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'chord-provenance-'));
  dirs.push(d);
  return d;
}

describe('codeRevision', () => {
  it('gives the checkout commit, dirty only for tracked changes outside results/', () => {
    const repo = tempDir();
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();
    git('init', '-q');
    mkdirSync(join(repo, 'results'));
    writeFileSync(join(repo, 'a.ts'), 'export const a = 1;\n');
    writeFileSync(join(repo, 'results', 'r.md'), 'old\n');
    git('add', '.');
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'first');
    const head = git('rev-parse', 'HEAD');
    expect(codeRevision(repo)).toEqual({ commit: head, dirty: false });
    writeFileSync(join(repo, 'results', 'r.md'), 'rewritten by reproduce\n');
    writeFileSync(join(repo, 'untracked.ts'), 'x\n');
    expect(codeRevision(repo)).toEqual({ commit: head, dirty: false });
    writeFileSync(join(repo, 'a.ts'), 'export const a = 2;\n');
    expect(codeRevision(repo)).toEqual({ commit: head, dirty: true });
  });

  it('is null outside a git checkout', () => {
    expect(codeRevision(tempDir())).toBeNull();
  });
});

describe('codeRevisionsLine', () => {
  const run = (code?: { commit: string; dirty: boolean } | null) =>
    ({ spec: {}, training: { ...(code === undefined ? {} : { code }) } }) as unknown as FinishedRun;

  it('counts runs per short commit and those that predate the record', () => {
    const a = 'a'.repeat(40);
    const b = 'b'.repeat(40);
    const line = codeRevisionsLine([run({ commit: a, dirty: false }), run({ commit: a, dirty: false }), run({ commit: b, dirty: true }), run(), run(null)]);
    expect(line).toMatch(/^Code: 3 runs record the commit that finished them \(aaaaaaa: 2, bbbbbbb with uncommitted changes: 1\); 2 do not \(finished before/);
  });
});
