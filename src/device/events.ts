/**
 * A small typed event emitter. A handler that throws does not stop the others or the Reranker:
 * its error is re-thrown on a fresh task, where the page's error reporting sees it (as with
 * EventTarget listeners).
 */
export type Handler<T> = (payload: T) => void;

export class Emitter<Events extends object> {
  readonly #handlers = new Map<keyof Events, Set<Handler<never>>>();

  on<K extends keyof Events>(type: K, handler: Handler<Events[K]>): () => void {
    if (typeof handler !== 'function') throw new TypeError(`handler for "${String(type)}" is not a function`);
    let set = this.#handlers.get(type);
    if (!set) {
      set = new Set();
      this.#handlers.set(type, set);
    }
    set.add(handler as Handler<never>);
    return () => this.off(type, handler);
  }

  off<K extends keyof Events>(type: K, handler: Handler<Events[K]>): void {
    this.#handlers.get(type)?.delete(handler as Handler<never>);
  }

  emit<K extends keyof Events>(type: K, payload: Events[K]): void {
    const set = this.#handlers.get(type);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        (handler as Handler<Events[K]>)(payload);
      } catch (error) {
        setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }

  clear(): void {
    this.#handlers.clear();
  }
}
