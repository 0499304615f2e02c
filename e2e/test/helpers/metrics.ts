import { request } from 'undici';

/** Reads one counter family from a service's /metrics, summed per label value of `label`. */
export async function counterByLabel(baseUrl: string, metric: string, label: string): Promise<Map<string, number>> {
  const res = await request(`${baseUrl}/metrics`);
  const text = await res.body.text();
  const out = new Map<string, number>();
  const re = new RegExp(`^${metric}\\{([^}]*)\\} ([0-9.e+]+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const labels = m[1] ?? '';
    const value = Number(m[2]);
    const lv = new RegExp(`${label}="([^"]*)"`).exec(labels)?.[1] ?? '';
    out.set(lv, (out.get(lv) ?? 0) + value);
  }
  return out;
}

/** The value of one sample (`name` with exactly these labels, or the unlabelled one); 0 when absent. */
export async function metricValue(baseUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await request(`${baseUrl}/metrics`);
  const text = await res.body.text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',').filter((x) => x !== '');
    if (wanted.every((w) => have.includes(w))) sum += Number(m[3]);
  }
  return sum;
}
