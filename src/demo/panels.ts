/** The side panels: device and latency, bytes, the bits heatmap, the budget control, the timeline. */
import type { Strategy } from '../core/strategy.ts';
import type { BackendKind, StrategyInfo } from '../device/index.ts';
import { budgetLabel, categoryHue, clockTime, formatBytes, formatMs } from './format.ts';
import { drawHeatmap, legendEntries } from './heatmap.ts';

export type TimelineKind = 'click' | 'drift' | 'strategy' | 'budget' | 'error';

const TIMELINE_LIMIT = 60;

function need<T extends HTMLElement>(doc: Document, sel: string): T {
  const node = doc.querySelector<T>(sel);
  if (!node) throw new Error(`index.html has no ${sel}`);
  return node;
}

export class Timeline {
  readonly #doc: Document;
  readonly #list: HTMLElement;

  constructor(doc: Document) {
    this.#doc = doc;
    this.#list = need(doc, '#timeline');
  }

  /** Newest first; `category` colours a click's marker. */
  add(kind: TimelineKind, text: string, category?: number, categories?: number): void {
    const li = this.#doc.createElement('li');
    li.className = `event ${kind}`;
    li.dataset.kind = kind;
    if (category !== undefined && categories !== undefined) li.style.setProperty('--hue', String(categoryHue(category, categories)));
    const time = this.#doc.createElement('time');
    time.textContent = clockTime(Date.now());
    const label = this.#doc.createElement('span');
    label.className = 'kind';
    label.textContent = kind;
    const body = this.#doc.createElement('span');
    body.className = 'text';
    body.textContent = text;
    li.append(time, label, body);
    this.#list.prepend(li);
    while (this.#list.children.length > TIMELINE_LIMIT) this.#list.lastElementChild?.remove();
  }
}

export class Panels {
  readonly timeline: Timeline;
  readonly #doc: Document;
  readonly #budgetButtons: HTMLButtonElement[];
  readonly #canvas: HTMLCanvasElement;
  #lastLevels: Strategy | null = null;

  constructor(doc: Document, budgets: readonly (number | null)[], initial: number | null) {
    this.#doc = doc;
    this.timeline = new Timeline(doc);
    this.#canvas = need<HTMLCanvasElement>(doc, '#heatmap');
    const group = need(doc, '#budget');
    this.#budgetButtons = budgets.map((b) => {
      const button = doc.createElement('button');
      button.type = 'button';
      button.textContent = budgetLabel(b);
      button.dataset.budget = b === null ? 'sent' : String(b);
      button.setAttribute('aria-pressed', String(b === initial));
      group.append(button);
      return button;
    });
    // Redraw at the new width when the layout changes (the canvas takes its width from CSS).
    new ResizeObserver(() => {
      if (this.#lastLevels) drawHeatmap(this.#canvas, this.#lastLevels);
    }).observe(this.#canvas);
  }

  onBudget(handler: (budget: number | null) => Promise<void>): void {
    for (const button of this.#budgetButtons) {
      button.addEventListener('click', () => {
        if (button.getAttribute('aria-pressed') === 'true') return;
        for (const b of this.#budgetButtons) {
          b.setAttribute('aria-pressed', String(b === button));
          b.disabled = true;
        }
        const value = button.dataset.budget === 'sent' ? null : Number(button.dataset.budget);
        void handler(value).finally(() => {
          for (const b of this.#budgetButtons) b.disabled = false;
        });
      });
    }
  }

  showBudgetResult(text: string): void {
    need(this.#doc, '#budget-result').textContent = text;
  }

  showLatency(backend: BackendKind, name: string, ms: number, candidates: number): void {
    need(this.#doc, '#backend').textContent = backend === 'webgpu' ? 'WebGPU' : 'CPU';
    need(this.#doc, '#backend').dataset.backend = backend;
    need(this.#doc, '#adapter').textContent = name || '—';
    need(this.#doc, '#latency').textContent = `${formatMs(ms)} for ${candidates}`;
  }

  /** Bytes and heatmap for the strategy in use; `levels` null when its channels are unknown here. */
  showStrategy(info: StrategyInfo, levels: Strategy | null, received: number, requests: number): void {
    need(this.#doc, '#strategy-bytes').textContent = formatBytes(info.bytes);
    need(this.#doc, '#weight-bytes').textContent = formatBytes(info.weightBytes);
    need(this.#doc, '#bytes-ratio').textContent = `1 : ${Math.round(info.weightBytes / info.bytes).toLocaleString('en-US')}`;
    need(this.#doc, '#bytes-total').textContent = `${formatBytes(received)} in ${requests} request${requests === 1 ? '' : 's'}`;
    // The bar: strategy bytes on a log scale against the weights (linear would be invisible).
    const share = Math.log10(info.bytes) / Math.log10(info.weightBytes);
    need(this.#doc, '#bytes-bar').style.setProperty('--share', String(Math.max(0.02, Math.min(1, share))));

    const source = info.source === 'default' ? 'default (before any click)' : info.stale ? `${info.source}, stale` : info.source;
    need(this.#doc, '#strategy-source').textContent = source;
    need(this.#doc, '#strategy-revision').textContent = info.revision ?? '—';
    need(this.#doc, '#avg-bits').textContent =
      info.budget === null || Math.abs(info.receivedAverageBits - info.averageBits) < 0.005
        ? `${info.averageBits.toFixed(2)} bits`
        : `${info.averageBits.toFixed(2)} bits (sent ${info.receivedAverageBits.toFixed(2)}, T to ${info.budget})`;
    this.#canvas.dataset.revision = info.revision ?? 'default';
    this.#canvas.dataset.averageBits = info.averageBits.toFixed(4);
    const legend = need(this.#doc, '#legend');
    if (!levels) {
      legend.textContent = 'channel levels of this strategy are not known to the page';
      return;
    }
    this.#lastLevels = levels;
    drawHeatmap(this.#canvas, levels);
    legend.replaceChildren(
      ...legendEntries(levels).map(({ label, colour, channels }) => {
        const item = this.#doc.createElement('span');
        item.className = 'swatch';
        item.style.setProperty('--swatch', colour);
        item.textContent = `${label} · ${channels}`;
        return item;
      }),
    );
  }
}
