/**
 * The simulator's event queue: a binary min-heap on time over parallel typed
 * arrays (no object per event), so tens of millions of events stay cheap.
 * Events at equal times come out in no particular (but deterministic) order.
 */
export class EventQueue {
  private times = new Float64Array(1 << 16);
  private kinds = new Uint8Array(1 << 16);
  private ids = new Int32Array(1 << 16);
  private versions = new Int32Array(1 << 16);
  private n = 0;

  get size(): number {
    return this.n;
  }

  push(time: number, kind: number, id: number, version: number): void {
    if (this.n === this.times.length) this.grow();
    let i = this.n++;
    const { times, kinds, ids, versions } = this;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = times[parent] as number;
      if (pt <= time) break;
      times[i] = pt;
      kinds[i] = kinds[parent] as number;
      ids[i] = ids[parent] as number;
      versions[i] = versions[parent] as number;
      i = parent;
    }
    times[i] = time;
    kinds[i] = kind;
    ids[i] = id;
    versions[i] = version;
  }

  /** Time of the earliest event; the queue must not be empty. */
  peekTime(): number {
    return this.times[0] as number;
  }

  /** Removes the earliest event into `out` ([time, kind, id, version]); false when empty. */
  pop(out: { time: number; kind: number; id: number; version: number }): boolean {
    if (this.n === 0) return false;
    const { times, kinds, ids, versions } = this;
    out.time = times[0] as number;
    out.kind = kinds[0] as number;
    out.id = ids[0] as number;
    out.version = versions[0] as number;
    const last = --this.n;
    if (last === 0) return true;
    const t = times[last] as number;
    const k = kinds[last] as number;
    const d = ids[last] as number;
    const v = versions[last] as number;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= last) break;
      if (c + 1 < last && (times[c + 1] as number) < (times[c] as number)) c++;
      if ((times[c] as number) >= t) break;
      times[i] = times[c] as number;
      kinds[i] = kinds[c] as number;
      ids[i] = ids[c] as number;
      versions[i] = versions[c] as number;
      i = c;
    }
    times[i] = t;
    kinds[i] = k;
    ids[i] = d;
    versions[i] = v;
    return true;
  }

  private grow(): void {
    const size = this.times.length * 2;
    const times = new Float64Array(size);
    times.set(this.times);
    const kinds = new Uint8Array(size);
    kinds.set(this.kinds);
    const ids = new Int32Array(size);
    ids.set(this.ids);
    const versions = new Int32Array(size);
    versions.set(this.versions);
    this.times = times;
    this.kinds = kinds;
    this.ids = ids;
    this.versions = versions;
  }
}
