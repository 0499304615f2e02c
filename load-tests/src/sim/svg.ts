/** One completion-time CDF to plot: x = completion time / (S/B), ascending. */
export interface CdfSeries {
  label: string;
  ratios: readonly number[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A hand-written SVG line chart of completion-time CDFs (no dependencies):
 * x from 0 to a round bound above the slowest node, in units of S/B, with the
 * issue's targets (p50 ≤ 1.3, max ≤ 2) marked.
 */
export function cdfSvg(series: readonly CdfSeries[], title: string): string {
  const width = 720;
  const m = { left: 60, right: 20, top: 40, bottom: 40 + 18 * series.length + 12 };
  const height = 380 + m.bottom;
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const maxRatio = Math.max(2.2, ...series.map((s) => s.ratios[s.ratios.length - 1] ?? 0));
  const xMax = Math.ceil(maxRatio * 5) / 5;
  const x = (r: number): number => m.left + (r / xMax) * pw;
  const y = (f: number): number => m.top + (1 - f) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  // Grid and axes.
  for (let i = 0; i <= xMax * 5 + 1e-9; i++) {
    const r = i / 5;
    const major = i % 5 === 0;
    out.push(`<line x1="${x(r).toFixed(1)}" y1="${m.top}" x2="${x(r).toFixed(1)}" y2="${m.top + ph}" stroke="${major ? '#ccc' : '#eee'}"/>`);
    if (i % (xMax > 4 ? 5 : 1) === 0) out.push(`<text x="${x(r).toFixed(1)}" y="${m.top + ph + 16}" text-anchor="middle">${r.toFixed(1)}</text>`);
  }
  for (let i = 0; i <= 10; i++) {
    const f = i / 10;
    out.push(`<line x1="${m.left}" y1="${y(f).toFixed(1)}" x2="${m.left + pw}" y2="${y(f).toFixed(1)}" stroke="${i % 5 === 0 ? '#ccc' : '#eee'}"/>`);
    if (i % 2 === 0) out.push(`<text x="${m.left - 6}" y="${(y(f) + 4).toFixed(1)}" text-anchor="end">${Math.round(f * 100)}%</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${m.top + ph + 32}" text-anchor="middle">completion time / (S/B)</text>`);
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">nodes done</text>`);
  // Targets.
  out.push(`<line x1="${x(1).toFixed(1)}" y1="${m.top}" x2="${x(1).toFixed(1)}" y2="${m.top + ph}" stroke="#333" stroke-dasharray="2 3"/>`);
  out.push(`<text x="${(x(1) - 4).toFixed(1)}" y="${m.top + 14}" text-anchor="end" fill="#333">S/B: one node alone</text>`);
  out.push(`<line x1="${x(1.3).toFixed(1)}" y1="${y(0.5).toFixed(1)}" x2="${x(1.3).toFixed(1)}" y2="${m.top + ph}" stroke="#f0a000" stroke-dasharray="6 3"/>`);
  out.push(`<text x="${(x(1.3) + 4).toFixed(1)}" y="${(y(0.5) - 4).toFixed(1)}" fill="#b07000">p50 target 1.3</text>`);
  out.push(`<line x1="${x(2).toFixed(1)}" y1="${m.top}" x2="${x(2).toFixed(1)}" y2="${m.top + ph}" stroke="#f0a000" stroke-dasharray="6 3"/>`);
  out.push(`<text x="${(x(2) - 4).toFixed(1)}" y="${m.top + 14}" text-anchor="end" fill="#b07000">max target 2</text>`);
  // Series: a step CDF through (ratio_i, (i+1)/n), thinned to at most ~400 points.
  series.forEach((s, k) => {
    const n = s.ratios.length;
    if (n === 0) return;
    const step = Math.max(1, Math.floor(n / 400));
    const pts: string[] = [`${x(s.ratios[0] as number).toFixed(1)},${y(0).toFixed(1)}`];
    for (let i = 0; i < n; i += step) pts.push(`${x(s.ratios[i] as number).toFixed(1)},${y((i + 1) / n).toFixed(1)}`);
    pts.push(`${x(s.ratios[n - 1] as number).toFixed(1)},${y(1).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${COLORS[k % COLORS.length] as string}" stroke-width="2" points="${pts.join(' ')}"/>`);
  });
  // Legend under the x axis.
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length] as string;
    const ry = m.top + ph + 44 + 18 * k;
    out.push(`<line x1="${m.left}" y1="${ry}" x2="${m.left + 24}" y2="${ry}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${m.left + 30}" y="${ry + 4}">${esc(s.label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
