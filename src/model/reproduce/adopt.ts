/**
 * Finished runs that another cache trained with a planned run's very settings, taken into
 * reproduce's cache instead of training them again (`reproduce --adopt <dir>`). The strategy study
 * trains Quant-pre and CHORD variants on reproduce's own Bases, so some of its runs are rows of the
 * plan. Settings are compared as plan.ts's trainingSettings parses them (flag order, defaults and
 * output folders do not count). A frozen-pretrained run must start from the Base of the same key,
 * one that has not trained on since (staleReason). The copy keeps its training.json, with the
 * command and the commit that trained it, and gains adopted.json saying where it came from.
 */
import { cpSync, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTrainArgs } from '../train-cli.ts';
import { ADOPTED_FILE, findTraining, recordedArgs, staleReason, trainArgs, trainingSettings, type DatasetProfile, type RunSpec } from './plan.ts';

export interface Adoption {
  readonly key: string;
  readonly from: string;
}

/**
 * Copies into cacheDir, under the planned key, each finished run of `sources` (cache folders of
 * run folders) whose settings equal a run of `todo`; returns what it copied. A planned run is
 * adopted once, from the first source that has it; a run whose copy would be stale stays where it is.
 */
export function adoptRuns(
  todo: readonly RunSpec[],
  sources: readonly string[],
  opts: { data: string; cacheDir: string; profile: DatasetProfile },
): Adoption[] {
  const wanted = new Map<string, RunSpec>();
  for (const spec of todo) wanted.set(trainingSettings(parseTrainArgs(trainArgs(spec, opts.data, opts.cacheDir, opts.profile))), spec);
  const adopted: Adoption[] = [];
  for (const source of sources) {
    if (!existsSync(source)) throw new Error(`--adopt: no folder ${source}`);
    for (const name of readdirSync(source).sort()) {
      const runDir = join(source, name);
      if (!statSync(runDir).isDirectory()) continue; // the study's evaluation sidecars lie beside its runs
      const run = findTraining(runDir);
      if (!run) continue;
      const recorded = recordedArgs(run.training);
      if (!recorded) continue;
      let settings: string;
      try {
        settings = trainingSettings(parseTrainArgs(recorded));
      } catch {
        continue; // a command this train-cli no longer parses is no row of this plan
      }
      const spec = wanted.get(settings);
      if (!spec || staleReason(spec, run, opts)) continue;
      const target = join(opts.cacheDir, spec.key);
      if (existsSync(target)) continue; // an unfinished or stale run of reproduce's own: reproduce decides
      cpSync(runDir, target, { recursive: true, preserveTimestamps: true });
      writeFileSync(join(target, ADOPTED_FILE), `${JSON.stringify({ from: runDir, key: spec.key, adoptedAt: new Date().toISOString() }, null, 2)}\n`);
      wanted.delete(settings);
      adopted.push({ key: spec.key, from: runDir });
    }
  }
  return adopted;
}
