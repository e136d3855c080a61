// The shaders take their shared numbers from src/gpu/shader-constants.ts: the generated header
// declares each once, no kernel declares one of them again (WGSL would refuse the redeclaration
// only when that kernel is compiled), every constant is used by some shader, and no workgroup size
// is a bare number the host could disagree with.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SHADER_CONSTANTS, WGSL_CONSTANTS } from '../../src/gpu/shader-constants.ts';
import { withWgslLibs } from '../../src/gpu/wgsl-libs.ts';

const SHADERS = resolve(import.meta.dirname, '../../shaders');
const shaders = readdirSync(SHADERS)
  .filter((f) => f.endsWith('.wgsl'))
  .map((name) => ({ name, text: readFileSync(join(SHADERS, name), 'utf8') }));
const names = Object.keys(SHADER_CONSTANTS);
/** WGSL without comments, so a name in prose does not count as a use. */
const code = (text: string): string => text.replace(/\/\/.*$/gm, '');

describe('shader constants', () => {
  it('the header declares every constant once, as a u32', () => {
    for (const [name, value] of Object.entries(SHADER_CONSTANTS)) {
      const lines = WGSL_CONSTANTS.split('\n').filter((l) => l.startsWith(`const ${name}:`));
      expect(lines).toEqual([`const ${name}: u32 = ${value}u;`]);
    }
  });

  it('every program gets the header first', () => {
    expect(withWgslLibs('fn f() {}', 'packed').startsWith(WGSL_CONSTANTS)).toBe(true);
    expect(withWgslLibs('fn f() {}')).toBe(`${WGSL_CONSTANTS}\nfn f() {}`);
  });

  it('no shader declares a shared constant again', () => {
    for (const { name, text } of shaders) {
      for (const constant of names) {
        expect(code(text), `${name} redeclares ${constant}`).not.toMatch(new RegExp(`\\b(const|override|var|let)\\s+${constant}\\b`));
      }
    }
  });

  it('every constant is used by a shader', () => {
    const all = shaders.map((s) => code(s.text)).join('\n');
    const unused = names.filter((constant) => !new RegExp(`\\b${constant}\\b`).test(all));
    expect(unused).toEqual([]);
  });

  it('workgroup sizes are named, not bare numbers', () => {
    for (const { name, text } of shaders) {
      expect(code(text), name).not.toMatch(/@workgroup_size\(\s*\d/);
    }
  });
});
