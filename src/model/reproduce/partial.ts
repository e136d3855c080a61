/**
 * Where a report goes without losing what is committed. A results file rewritten from fewer runs
 * than it reports would drop rows no checkout can bring back (runs that finished before run
 * records existed, or whose records are not in this one): such a report goes to
 * `<name>.partial.json` and `.md` instead, and the full file stays as it is until a report holds
 * every run it lists.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ReportTarget {
  /** The results files' name without extension: `name`, or `<name>.partial`. */
  readonly name: string;
  /** The runs the full file reports that this report does not have (empty for the full file). */
  readonly missing: readonly string[];
}

/**
 * The name a report of the runs `present` is written under in `dir`: `name` when no
 * `<name>.json` exists or every run it reports (`reportedRuns` of its JSON) is present,
 * `<name>.partial` otherwise.
 */
export function reportTarget(dir: string, name: string, present: ReadonlySet<string>, reportedRuns: (json: unknown) => readonly string[]): ReportTarget {
  const full = join(dir, `${name}.json`);
  if (!existsSync(full)) return { name, missing: [] };
  const missing = [...new Set(reportedRuns(JSON.parse(readFileSync(full, 'utf8'))))].filter((k) => !present.has(k)).sort();
  return missing.length === 0 ? { name, missing } : { name: `${name}.partial`, missing };
}

/** The line a partial report opens with (after its title): which file it is part of and what that file has beyond it. */
export function partialNote(fullName: string, missing: readonly string[]): string {
  const shown = missing.slice(0, 6).join(', ');
  return (
    `**Partial report.** \`${fullName}.md\` stays the full table: it reports ${missing.length} runs this report does not have ` +
    `(${shown}${missing.length > 6 ? ', …' : ''}), which finished before their records were kept or in another checkout. ` +
    `This file is rewritten with every run of the current code and replaces it once it has them all.`
  );
}

/** `markdown` with `note` as its second paragraph (after the title line). */
export function withNote(markdown: string, note: string): string {
  const [title, ...rest] = markdown.split('\n');
  return [title, '', note, ...rest].join('\n');
}

/**
 * Writes a report's JSON (`indent` spaces) and markdown under reportTarget's name in `dir`: the full
 * files, or the partial ones with what the full table has beyond them (a `partial` field, an opening
 * note). Returns the name written.
 */
export function writeReport(
  dir: string,
  name: string,
  present: ReadonlySet<string>,
  reportedRuns: (json: unknown) => readonly string[],
  report: { readonly json: object; readonly markdown: string; readonly indent: number },
): string {
  const target = reportTarget(dir, name, present, reportedRuns);
  const partial = target.missing.length > 0;
  const json = partial ? { partial: { of: `${name}.json`, missing: target.missing }, ...report.json } : report.json;
  writeFileSync(join(dir, `${target.name}.json`), `${JSON.stringify(json, null, report.indent)}\n`);
  writeFileSync(join(dir, `${target.name}.md`), partial ? withNote(report.markdown, partialNote(name, target.missing)) : report.markdown);
  return target.name;
}
