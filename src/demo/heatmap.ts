/**
 * Bits per output channel per layer, as in the CHORD paper's Figure 5: one row per quantizable
 * layer, its channels left to right (a layer with more channels gets narrower cells, so every
 * row spans the full width), coloured by bit width; switched-off channels (the off level, 0 bits)
 * in a neutral grey outside the blue scale, so "off" never reads as "few bits".
 */
import { OFF_BITS, type Strategy } from '../core/strategy.ts';

/** Colour per bit width (2 pale -> 8 dark; 0 = off: grey), shared with the legend. */
export const BIT_COLOURS: Readonly<Record<number, string>> = {
  [OFF_BITS]: '#b8b8b8',
  1: '#fbfdff',
  2: '#e3eef9',
  3: '#c6dbef',
  4: '#8fbfe0',
  5: '#5a9bd0',
  6: '#2f73b8',
  7: '#1a5597',
  8: '#0b2f6b',
};

const LABEL_WIDTH = 92;
const ROW_HEIGHT = 15;
const ROW_GAP = 3;

/** "block0.attn.q" -> "b0 attn.q": the rows' labels. */
export function shortLayerName(name: string): string {
  return name.replace(/^block(\d+)\./, 'b$1 ');
}

export function heatmapHeight(layers: number): number {
  return layers * (ROW_HEIGHT + ROW_GAP) - ROW_GAP;
}

/** Draws `strategy` on `canvas`, at the CSS width of its box (device pixels for sharpness). */
export function drawHeatmap(canvas: HTMLCanvasElement, strategy: Strategy): void {
  const cssWidth = canvas.clientWidth || 320;
  const cssHeight = heatmapHeight(strategy.layers.length);
  const dpr = globalThis.devicePixelRatio || 1;
  canvas.width = Math.round(cssWidth * dpr);
  canvas.height = Math.round(cssHeight * dpr);
  canvas.style.height = `${cssHeight}px`;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssWidth, cssHeight);
  ctx.font = '11px ui-monospace, SFMono-Regular, Menlo, monospace';
  ctx.textBaseline = 'middle';
  const width = cssWidth - LABEL_WIDTH;
  strategy.layers.forEach((layer, row) => {
    const y = row * (ROW_HEIGHT + ROW_GAP);
    ctx.fillStyle = '#4a5568';
    ctx.fillText(shortLayerName(layer.name), 0, y + ROW_HEIGHT / 2);
    const n = layer.levels.length;
    // Runs of equal bits are filled as one rectangle: crisp edges at any width.
    let start = 0;
    for (let j = 1; j <= n; j++) {
      if (j < n && layer.levels[j] === layer.levels[start]) continue;
      const bits = strategy.levelTable[layer.levels[start]!]!;
      const x0 = LABEL_WIDTH + (start * width) / n;
      const x1 = LABEL_WIDTH + (j * width) / n;
      ctx.fillStyle = BIT_COLOURS[bits] ?? '#000';
      ctx.fillRect(x0, y, x1 - x0, ROW_HEIGHT);
      start = j;
    }
  });
}

/** Legend items (bits, label, colour) for the level table in use: "off" for the off level. */
export function legendEntries(strategy: Strategy): { bits: number; label: string; colour: string; channels: number }[] {
  const counts = [0, 0, 0, 0];
  for (const l of strategy.layers) for (const v of l.levels) counts[v] = counts[v]! + 1;
  return strategy.levelTable.map((bits, i) => ({
    bits,
    label: bits === OFF_BITS ? 'off' : `${bits} bit`,
    colour: BIT_COLOURS[bits] ?? '#000',
    channels: counts[i]!,
  }));
}
