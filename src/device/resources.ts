/**
 * Device-state signals for the resource transform T, and the rule that turns them into a bit
 * budget (`budget: 'auto'`).
 *
 * T lowers the weight-weighted average bits of a strategy (3 -> 2.5 -> 2 with the default
 * [2, 4, 6, 8] levels). Fewer bits mean smaller packed weights on the GPU (less memory and
 * bandwidth, hence energy), at some accuracy cost; on the CPU path the weights are dequantized
 * to f32 anyway, so there T only costs accuracy and 'auto' reads the memory signal alone.
 *
 * Rule (each signal proposes a budget; the lowest wins; none -> no T, the strategy as sent):
 * - navigator.deviceMemory (GiB, Chromium rounds and caps it at 8): <= 1 -> 2, <= 2 -> 2.5.
 * - WebGPU only: a fallback (software) adapter -> 2: it runs on the CPU with the CPU's bandwidth.
 * - WebGPU only: battery discharging at <= 15 % -> 2, at <= 40 % -> 2.5.
 * - WebGPU only: hardwareConcurrency <= 2 together with deviceMemory <= 4 (a low-end phone's
 *   shared-memory GPU) -> 2.5.
 * - WebGPU only: maxStorageBufferBindingSize at the 128 MiB spec minimum (an adapter that offers
 *   nothing beyond the baseline) -> 2.5.
 * Signals a browser does not expose are simply absent; an explicit `budget` always wins.
 */

export interface BatterySignal {
  readonly level: number;
  readonly charging: boolean;
}

export interface AdapterSignal {
  readonly isFallbackAdapter: boolean;
  readonly maxStorageBufferBindingSize: number;
  readonly maxBufferSize: number;
  readonly description: string;
}

export interface ResourceSignals {
  readonly backend: 'webgpu' | 'cpu';
  /** GiB, as navigator.deviceMemory reports it; absent where the browser does not. */
  readonly deviceMemory?: number;
  readonly hardwareConcurrency?: number;
  readonly battery?: BatterySignal;
  readonly adapter?: AdapterSignal;
}

export interface BudgetChoice {
  /** Average bits per weight for T, or null for no transform. */
  readonly budget: number | null;
  /** Why, one line per signal that proposed a budget (empty when none did). */
  readonly reasons: readonly string[];
}

/** The WebGPU spec's minimum for maxStorageBufferBindingSize (128 MiB). */
export const BASELINE_STORAGE_BINDING = 128 * 1024 * 1024;

interface NavigatorSignals {
  readonly deviceMemory?: number;
  readonly hardwareConcurrency?: number;
  getBattery?: () => Promise<{ readonly level: number; readonly charging: boolean }>;
}

/** Battery status in 250 ms at most: getBattery can hang where a permission policy blocks it. */
async function readBattery(nav: NavigatorSignals): Promise<BatterySignal | undefined> {
  if (typeof nav.getBattery !== 'function') return undefined;
  try {
    const battery = await Promise.race([
      nav.getBattery.call(nav),
      new Promise<undefined>((resolve) => setTimeout(resolve, 250, undefined)),
    ]);
    if (!battery || typeof battery.level !== 'number') return undefined;
    return { level: battery.level, charging: Boolean(battery.charging) };
  } catch {
    return undefined; // blocked by a permissions policy, or not allowed in this context
  }
}

/** Reads what the browser exposes; `adapter` comes from the WebGPU backend when there is one. */
export async function readResourceSignals(
  backend: 'webgpu' | 'cpu',
  adapter?: AdapterSignal,
  nav: NavigatorSignals | undefined = globalThis.navigator as NavigatorSignals | undefined,
): Promise<ResourceSignals> {
  const memory = nav?.deviceMemory;
  const cores = nav?.hardwareConcurrency;
  const battery = nav ? await readBattery(nav) : undefined;
  return {
    backend,
    ...(typeof memory === 'number' && memory > 0 ? { deviceMemory: memory } : {}),
    ...(typeof cores === 'number' && cores > 0 ? { hardwareConcurrency: cores } : {}),
    ...(battery ? { battery } : {}),
    ...(adapter ? { adapter } : {}),
  };
}

/** The budget the signals call for (see the module comment); pure, for tests and telemetry. */
export function budgetFromResources(signals: ResourceSignals): BudgetChoice {
  const proposals: { budget: number; reason: string }[] = [];
  const { deviceMemory: memory, hardwareConcurrency: cores, battery, adapter } = signals;
  if (memory !== undefined) {
    if (memory <= 1) proposals.push({ budget: 2, reason: `deviceMemory ${memory} GiB <= 1` });
    else if (memory <= 2) proposals.push({ budget: 2.5, reason: `deviceMemory ${memory} GiB <= 2` });
  }
  if (signals.backend === 'webgpu') {
    if (adapter?.isFallbackAdapter) proposals.push({ budget: 2, reason: `software adapter (${adapter.description})` });
    if (battery && !battery.charging) {
      const pct = Math.round(battery.level * 100);
      if (battery.level <= 0.15) proposals.push({ budget: 2, reason: `battery discharging at ${pct} %` });
      else if (battery.level <= 0.4) proposals.push({ budget: 2.5, reason: `battery discharging at ${pct} %` });
    }
    if (cores !== undefined && cores <= 2 && memory !== undefined && memory <= 4) {
      proposals.push({ budget: 2.5, reason: `${cores} cores and ${memory} GiB: low-end device` });
    }
    if (adapter && adapter.maxStorageBufferBindingSize <= BASELINE_STORAGE_BINDING) {
      proposals.push({ budget: 2.5, reason: 'adapter offers only the baseline storage-buffer limit' });
    }
  }
  if (proposals.length === 0) return { budget: null, reasons: [] };
  const budget = Math.min(...proposals.map((p) => p.budget));
  return { budget, reasons: proposals.map((p) => `${p.reason} -> ${p.budget} bits`) };
}
