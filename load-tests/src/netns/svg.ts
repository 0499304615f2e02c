/**
 * A grouped bar chart as hand-written SVG (no dependencies): one group per node, one bar
 * per mode, heights in units of S/B, with dashed reference lines (1 × S/B, targets).
 */

export interface Series {
  label: string;
  color: string;
  /** One value per node, in S/B units; null = did not finish (drawn as a red ×). */
  values: ReadonlyArray<number | null>;
}

export interface BarChart {
  title: string;
  subtitle: string;
  yLabel: string;
  xLabels: readonly string[];
  series: readonly Series[];
  references: ReadonlyArray<{ value: number; label: string }>;
}

const W = 960;
const H = 460;
const M = { top: 64, right: 24, bottom: 64, left: 64 };

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A "nice" axis maximum and step (1, 2 or 5 × 10^k) for about 6 ticks. */
function niceAxis(max: number): { top: number; step: number } {
  const raw = Math.max(max, 1) / 6;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  return { top: Math.ceil(Math.max(max, 1) / step) * step, step };
}

export function barChartSvg(c: BarChart): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const all = c.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const { top, step } = niceAxis(Math.max(...all, ...c.references.map((r) => r.value)) * 1.05);
  const y = (v: number): number => M.top + ph - (v / top) * ph;
  const n = c.xLabels.length;
  const groupW = pw / Math.max(n, 1);
  const barW = (groupW * 0.8) / Math.max(c.series.length, 1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${esc(c.title)}</text>`,
    `<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">${esc(c.subtitle)}</text>`,
  ];
  for (let v = 0; v <= top + 1e-9; v += step) {
    const yy = y(v).toFixed(1);
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${yy}" y2="${yy}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${Number(v.toFixed(2))}</text>`);
  }
  out.push(`<text transform="translate(18 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`);
  c.series.forEach((s, si) => {
    s.values.forEach((v, i) => {
      const x = M.left + i * groupW + groupW * 0.1 + si * barW;
      if (v === null) {
        const cx = x + barW / 2;
        out.push(`<text x="${cx.toFixed(1)}" y="${(M.top + 12).toFixed(1)}" text-anchor="middle" fill="#d00" font-weight="bold">×</text>`);
        return;
      }
      out.push(`<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${Math.max(barW - 1, 1).toFixed(1)}" height="${(M.top + ph - y(v)).toFixed(1)}" fill="${s.color}"><title>${esc(`${s.label} ${c.xLabels[i] ?? ''}: ${v.toFixed(2)}`)}</title></rect>`);
    });
  });
  for (const r of c.references) {
    const yy = y(r.value).toFixed(1);
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${yy}" y2="${yy}" stroke="#333" stroke-dasharray="5 4"/>`);
    // A white halo keeps the label readable over the bars.
    out.push(`<text x="${M.left + pw - 4}" y="${(Number(yy) - 4).toFixed(1)}" text-anchor="end" fill="#333" stroke="#fff" stroke-width="3" paint-order="stroke">${esc(r.label)}</text>`);
  }
  c.xLabels.forEach((l, i) => {
    out.push(`<text x="${(M.left + (i + 0.5) * groupW).toFixed(1)}" y="${M.top + ph + 16}" text-anchor="middle">${esc(l)}</text>`);
  });
  out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#333"/>`);
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="#333"/>`);
  c.series.forEach((s, si) => {
    const lx = M.left + si * 200;
    const ly = H - 18;
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 18}" y="${ly}">${esc(s.label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
