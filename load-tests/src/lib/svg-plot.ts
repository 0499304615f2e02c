/** A small dependency-free SVG line plot (for docs/img). */
export interface Series {
  name: string;
  points: Array<[number, number]>;
  /** Dashed line (a reference or a second quantity of the same series). */
  dashed?: boolean;
  /** Fixed colour; otherwise the next of the palette. */
  color?: string;
}

export interface LinePlot {
  title: string;
  series: Series[];
  subtitle?: string;
  xLabel?: string;
  yLabel?: string;
  /** Logarithmic x axis, ticks at the x values of the points (a rate sweep). */
  logX?: boolean;
  width?: number;
  height?: number;
  yMin?: number;
  /** Horizontal reference lines. */
  references?: Array<{ value: number; label: string }>;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Tick labels with as many decimals as the step needs. */
function tickText(v: number, step: number): string {
  const digits = step >= 1 ? 0 : Math.min(3, Math.ceil(-Math.log10(step)));
  return v.toFixed(digits);
}

export function linePlotSvg(options: LinePlot): string {
  const width = options.width ?? 720;
  const height = options.height ?? 360;
  const m = { left: 64, right: 210, top: options.subtitle === undefined ? 36 : 52, bottom: options.xLabel === undefined ? 40 : 56 };
  const all = options.series.flatMap((s) => s.points);
  const refs = options.references ?? [];
  const yMin = options.yMin ?? 0;
  const yMax = Math.max(1, ...all.map((p) => p[1]), ...refs.map((r) => r.value)) * 1.1;
  const xs = [...new Set(all.map((p) => p[0]))].sort((a, b) => a - b);
  const xLo = options.logX === true ? Math.min(...xs) / 1.25 : 0;
  const xHi = options.logX === true ? Math.max(...xs) * 1.25 : Math.max(1, ...xs);
  const plotW = width - m.left - m.right;
  const x = (v: number): number =>
    options.logX === true ? m.left + ((Math.log(v) - Math.log(xLo)) / (Math.log(xHi) - Math.log(xLo))) * plotW : m.left + (v / xHi) * plotW;
  const y = (v: number): number => height - m.bottom - ((v - yMin) / (yMax - yMin)) * (height - m.top - m.bottom);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${esc(options.title)}</text>`);
  if (options.subtitle !== undefined) out.push(`<text x="${width / 2}" y="38" text-anchor="middle" fill="#555">${esc(options.subtitle)}</text>`);
  const yStep = (yMax - yMin) / 5;
  for (let i = 0; i <= 5; i++) {
    const v = yMin + yStep * i;
    out.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${m.left - 6}" y="${y(v) + 4}" text-anchor="end">${tickText(v, yStep)}</text>`);
  }
  const xTicks = options.logX === true ? xs : Array.from({ length: 6 }, (_, i) => (xHi * i) / 5);
  for (const xv of xTicks) out.push(`<text x="${x(xv)}" y="${height - m.bottom + 16}" text-anchor="middle">${tickText(xv, options.logX === true ? 1 : xHi / 5)}</text>`);
  if (options.xLabel !== undefined) out.push(`<text x="${m.left + plotW / 2}" y="${height - 12}" text-anchor="middle">${esc(options.xLabel)}</text>`);
  if (options.yLabel !== undefined) out.push(`<text transform="translate(16 ${(m.top + height - m.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(options.yLabel)}</text>`);
  out.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${height - m.bottom}" stroke="#333"/><line x1="${m.left}" x2="${width - m.right}" y1="${height - m.bottom}" y2="${height - m.bottom}" stroke="#333"/>`);
  for (const r of refs) {
    out.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${y(r.value)}" y2="${y(r.value)}" stroke="#333" stroke-dasharray="5 4"/>`);
    out.push(`<text x="${width - m.right - 4}" y="${y(r.value) - 4}" text-anchor="end" fill="#333" stroke="#fff" stroke-width="3" paint-order="stroke">${esc(r.label)}</text>`);
  }
  options.series.forEach((s, i) => {
    const color = s.color ?? (COLORS[i % COLORS.length] as string);
    const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    if (s.points.length > 1) out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`);
    for (const p of s.points) out.push(`<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3.5" fill="${color}"><title>${esc(`${s.name}: ${p[0]}, ${p[1].toFixed(2)}`)}</title></circle>`);
    out.push(`<rect x="${width - m.right + 12}" y="${m.top + i * 18}" width="12" height="12" fill="${color}"/><text x="${width - m.right + 30}" y="${m.top + i * 18 + 10}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
