// The 'auto' budget rule of src/device/resources.ts and the signal reader against fake navigators.
import { describe, expect, it } from 'vitest';
import { BASELINE_STORAGE_BINDING, budgetFromResources, readResourceSignals } from '../../src/device/resources.ts';
import type { AdapterSignal } from '../../src/device/resources.ts';

const BIG_GPU: AdapterSignal = {
  description: 'test gpu',
  isFallbackAdapter: false,
  maxStorageBufferBindingSize: 2 ** 31,
  maxBufferSize: 2 ** 32,
};

describe('budgetFromResources', () => {
  it('no constraining signal: no transform', () => {
    expect(budgetFromResources({ backend: 'webgpu', deviceMemory: 8, hardwareConcurrency: 8, adapter: BIG_GPU })).toEqual({ budget: null, reasons: [] });
    expect(budgetFromResources({ backend: 'cpu' })).toEqual({ budget: null, reasons: [] });
    expect(budgetFromResources({ backend: 'webgpu', battery: { level: 0.9, charging: false }, adapter: BIG_GPU }).budget).toBeNull();
  });

  it('memory tiers apply on every backend', () => {
    expect(budgetFromResources({ backend: 'cpu', deviceMemory: 2 }).budget).toBe(2.5);
    expect(budgetFromResources({ backend: 'cpu', deviceMemory: 1 }).budget).toBe(2);
    expect(budgetFromResources({ backend: 'cpu', deviceMemory: 0.5 }).budget).toBe(2);
    expect(budgetFromResources({ backend: 'webgpu', deviceMemory: 4, adapter: BIG_GPU }).budget).toBeNull();
  });

  it('GPU-only signals do not move the CPU path', () => {
    const weak = { deviceMemory: 4, hardwareConcurrency: 2, battery: { level: 0.1, charging: false } };
    expect(budgetFromResources({ backend: 'cpu', ...weak }).budget).toBeNull();
    const gpu = budgetFromResources({ backend: 'webgpu', ...weak, adapter: BIG_GPU });
    expect(gpu.budget).toBe(2);
    expect(gpu.reasons).toEqual(['battery discharging at 10 % -> 2 bits', '2 cores and 4 GiB: low-end device -> 2.5 bits']);
  });

  it('battery, software adapter and baseline limits', () => {
    expect(budgetFromResources({ backend: 'webgpu', battery: { level: 0.3, charging: false }, adapter: BIG_GPU }).budget).toBe(2.5);
    expect(budgetFromResources({ backend: 'webgpu', battery: { level: 0.1, charging: true }, adapter: BIG_GPU }).budget).toBeNull();
    expect(budgetFromResources({ backend: 'webgpu', adapter: { ...BIG_GPU, isFallbackAdapter: true } }).budget).toBe(2);
    expect(budgetFromResources({ backend: 'webgpu', adapter: { ...BIG_GPU, maxStorageBufferBindingSize: BASELINE_STORAGE_BINDING } }).budget).toBe(2.5);
  });
});

describe('readResourceSignals', () => {
  it('reads what the navigator has and skips what it does not', async () => {
    const nav = { deviceMemory: 4, hardwareConcurrency: 6, getBattery: async () => ({ level: 0.5, charging: false }) };
    expect(await readResourceSignals('webgpu', BIG_GPU, nav)).toEqual({
      backend: 'webgpu',
      deviceMemory: 4,
      hardwareConcurrency: 6,
      battery: { level: 0.5, charging: false },
      adapter: BIG_GPU,
    });
    expect(await readResourceSignals('cpu', undefined, {})).toEqual({ backend: 'cpu' });
    expect(await readResourceSignals('cpu', undefined, undefined)).toEqual({ backend: 'cpu' });
  });

  it('a blocked or hanging getBattery is left out', async () => {
    const blocked = { getBattery: async () => Promise.reject(new Error('NotAllowedError')) };
    expect(await readResourceSignals('cpu', undefined, blocked)).toEqual({ backend: 'cpu' });
    const hanging = { getBattery: () => new Promise<never>(() => undefined) };
    const t0 = Date.now();
    expect(await readResourceSignals('cpu', undefined, hanging)).toEqual({ backend: 'cpu' });
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
