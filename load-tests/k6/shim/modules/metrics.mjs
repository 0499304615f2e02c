// @ts-check
// `k6/metrics`: Counter, Rate, Trend (tags are accepted and ignored).
import { emit } from './runtime.mjs';

class Metric {
  /** @param {string} name @param {'counter' | 'trend' | 'rate'} kind */
  constructor(name, kind) {
    this.name = name;
    this.kind = kind;
  }
  /** @param {number | boolean} value @param {Record<string, string>} [_tags] */
  add(value, _tags) {
    emit({ type: 'sample', metric: this.name, kind: this.kind, value: Number(value) });
  }
}

export class Counter extends Metric {
  /** @param {string} name */
  constructor(name) {
    super(name, 'counter');
  }
}
export class Trend extends Metric {
  /** @param {string} name @param {boolean} [_isTime] */
  constructor(name, _isTime) {
    super(name, 'trend');
  }
}
export class Rate extends Metric {
  /** @param {string} name */
  constructor(name) {
    super(name, 'rate');
  }
  /** @param {number | boolean} value */
  add(value) {
    super.add(value ? 1 : 0);
  }
}

export default { Counter, Trend, Rate };
