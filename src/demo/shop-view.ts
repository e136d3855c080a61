/** The shop half of the page: category tabs, the product grid and the "recommended for you" row. */
import type { DemoCatalogue, DemoItem } from './catalogue.ts';
import { categoryHue, formatPrice, initials } from './format.ts';

function el<K extends keyof HTMLElementTagNameMap>(doc: Document, tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class ShopView {
  readonly #doc: Document;
  readonly #status: HTMLElement;
  readonly #tabs: HTMLElement;
  readonly #grid: HTMLElement;
  readonly #recs: HTMLElement;
  readonly #recNote: HTMLElement;
  #catalogue: DemoCatalogue | null = null;
  #active = 0;
  #seen = new Set<string>();
  #onClick: ((item: DemoItem) => void) | null = null;

  constructor(doc: Document) {
    this.#doc = doc;
    const need = (sel: string) => {
      const node = doc.querySelector<HTMLElement>(sel);
      if (!node) throw new Error(`index.html has no ${sel}`);
      return node;
    };
    this.#status = need('#status');
    this.#tabs = need('#tabs');
    this.#grid = need('#grid');
    this.#recs = need('#recs');
    this.#recNote = need('#rec-note');
    const clickHandler = (event: Event) => {
      const card = (event.target as HTMLElement).closest<HTMLElement>('[data-id]');
      const item = card && this.#catalogue?.items.find((it) => it.id === card.dataset.id);
      if (item) {
        this.#seen.add(item.id);
        card.classList.add('seen');
        this.#onClick?.(item);
      }
    };
    const keyHandler = (event: KeyboardEvent) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        clickHandler(event);
      }
    };
    for (const list of [this.#grid, this.#recs]) {
      list.addEventListener('click', clickHandler);
      list.addEventListener('keydown', keyHandler);
    }
    this.#tabs.addEventListener('click', (event) => {
      const tab = (event.target as HTMLElement).closest<HTMLElement>('[data-category]');
      if (tab) this.showCategory(Number(tab.dataset.category));
    });
  }

  setStatus(text: string): void {
    this.#status.textContent = text;
  }

  setRecommendationNote(text: string): void {
    this.#recNote.textContent = text;
  }

  onProductClick(handler: (item: DemoItem) => void): void {
    this.#onClick = handler;
  }

  renderCatalogue(catalogue: DemoCatalogue): void {
    this.#catalogue = catalogue;
    this.#tabs.replaceChildren(
      ...catalogue.categories.map((name, c) => {
        const tab = el(this.#doc, 'button', 'tab', name);
        tab.type = 'button';
        tab.dataset.category = String(c);
        tab.style.setProperty('--hue', String(categoryHue(c, catalogue.categories.length)));
        return tab;
      }),
    );
    this.showCategory(this.#active);
  }

  showCategory(category: number): void {
    const catalogue = this.#catalogue;
    if (!catalogue) return;
    this.#active = category;
    for (const tab of this.#tabs.querySelectorAll<HTMLElement>('[data-category]')) {
      tab.classList.toggle('active', Number(tab.dataset.category) === category);
      tab.setAttribute('aria-selected', String(Number(tab.dataset.category) === category));
    }
    const items = catalogue.items.filter((it) => it.category === category);
    this.#grid.dataset.category = String(category);
    this.#grid.replaceChildren(...items.map((it) => this.#card(catalogue, it, 'product')));
  }

  renderRecommended(catalogue: DemoCatalogue, ids: readonly string[], clicks: number): void {
    const byId = new Map(catalogue.items.map((it) => [it.id, it]));
    this.#recs.replaceChildren(
      ...ids.map((id, rank) => {
        const card = this.#card(catalogue, byId.get(id)!, 'rec');
        card.prepend(el(this.#doc, 'span', 'rank', String(rank + 1)));
        return card;
      }),
    );
    this.#recs.dataset.clicks = String(clicks);
  }

  /** Category of the most recent click, or null before any. */
  lastClickedCategory(catalogue: DemoCatalogue, clicks: readonly string[]): number | null {
    const last = clicks.at(-1);
    return last === undefined ? null : (catalogue.items.find((it) => it.id === last)?.category ?? null);
  }

  #card(catalogue: DemoCatalogue, item: DemoItem, kind: 'product' | 'rec'): HTMLElement {
    const card = el(this.#doc, 'li', `card ${kind}${this.#seen.has(item.id) ? ' seen' : ''}`);
    card.dataset.id = item.id;
    card.dataset.category = String(item.category);
    card.tabIndex = 0;
    card.title = `${item.title}, ${formatPrice(item.price)}`;
    card.style.setProperty('--hue', String(categoryHue(item.category, catalogue.categories.length)));
    const thumb = el(this.#doc, 'div', 'thumb');
    thumb.append(el(this.#doc, 'span', '', initials(item.title)));
    const meta = el(this.#doc, 'div', 'meta');
    meta.append(el(this.#doc, 'div', 'title', item.title));
    const row = el(this.#doc, 'div', 'row');
    row.append(el(this.#doc, 'span', 'chip', catalogue.categories[item.category]!), el(this.#doc, 'span', 'price', formatPrice(item.price)));
    meta.append(row);
    card.append(thumb, meta);
    return card;
  }
}
