/**
 * Adam with state keyed by parameter name. tfjs's own Adam keys its moments by position in the
 * gradient list (which shifts when a variable gets no gradient) and by tfjs variable names (which
 * differ between processes), so it cannot be checkpointed and resumed reliably.
 */
import * as tf from '@tensorflow/tfjs';

export interface AdamConfig {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** L2 penalty added to the gradient (PyTorch Adam's weight_decay); 0 = off. */
  readonly weightDecay: number;
}

export const ADAM_DEFAULTS: AdamConfig = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export class Adam {
  readonly config: AdamConfig;
  step = 0;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();

  constructor(config: Partial<AdamConfig> = {}) {
    this.config = { ...ADAM_DEFAULTS, ...config };
  }

  /** Applies one update; `grads` maps parameter names to gradients (missing = no update). */
  apply(vars: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>): void {
    this.step++;
    const { lr, beta1, beta2, eps, weightDecay } = this.config;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    tf.tidy(() => {
      for (const [name, g0] of Object.entries(grads)) {
        const p = vars[name];
        if (!p) throw new Error(`gradient for unknown parameter '${name}'`);
        const g = weightDecay > 0 ? tf.add(g0, tf.mul(p, weightDecay)) : g0;
        const m = this.moment(this.m, name, p);
        const v = this.moment(this.v, name, p);
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const update = tf.div(tf.mul(m, lr / c1), tf.add(tf.sqrt(tf.div(v, c2)), eps));
        p.assign(tf.sub(p, update));
      }
    });
  }

  private moment(store: Map<string, tf.Variable>, name: string, like: tf.Tensor): tf.Variable {
    let t = store.get(name);
    if (!t) {
      t = tf.variable(tf.zerosLike(like), false);
      store.set(name, t);
    }
    return t;
  }

  /** State as named tensors (`m/<param>`, `v/<param>`), for checkpoints. */
  stateTensors(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [k, t] of this.m) out[`m/${k}`] = t;
    for (const [k, t] of this.v) out[`v/${k}`] = t;
    return out;
  }

  loadState(step: number, tensors: Map<string, { shape: number[]; data: Float32Array }>): void {
    this.dispose();
    this.step = step;
    for (const [key, t] of tensors) {
      const slash = key.indexOf('/');
      const kind = key.slice(0, slash);
      const name = key.slice(slash + 1);
      const store = kind === 'm' ? this.m : kind === 'v' ? this.v : undefined;
      if (!store) throw new Error(`unexpected optimizer tensor '${key}'`);
      store.set(name, tf.variable(tf.tensor(t.data, t.shape, 'float32'), false));
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
