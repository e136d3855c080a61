/** Small display helpers for the demo's panels. */

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;
}

export function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

export function formatPrice(price: number): string {
  return `$${price.toFixed(2)}`;
}

export function clockTime(at: number): string {
  return new Date(at).toLocaleTimeString([], { hour12: false, hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Initials of a title for the product tile ("Trail Sneakers" -> "TS"). */
export function initials(title: string): string {
  return title
    .split(/\s+/)
    .filter((w) => /^[A-Za-z]/.test(w))
    .slice(0, 2)
    .map((w) => w[0]!.toUpperCase())
    .join('');
}

/** A hue per category (evenly spread, starting at a warm red). */
export function categoryHue(category: number, categories: number): number {
  return Math.round((12 + (360 * category) / Math.max(1, categories)) % 360);
}

/** Ranking change between two top-k lists: items whose position changed, and items replaced. */
export function rankingChange(before: readonly string[], after: readonly string[]): { moved: number; replaced: number } {
  const afterSet = new Set(after);
  let moved = 0;
  let replaced = 0;
  before.forEach((id, i) => {
    if (!afterSet.has(id)) replaced++;
    else if (after[i] !== id) moved++;
  });
  return { moved, replaced };
}

/** The budget control's label: null = the strategy as the server sent it (no T). */
export function budgetLabel(budget: number | null): string {
  return budget === null ? 'as sent' : `${budget} bits`;
}
