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
