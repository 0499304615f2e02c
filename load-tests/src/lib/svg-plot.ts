/** A small dependency-free SVG line plot (for docs/img). */
export interface Series {
  name: string;
  points: Array<[number, number]>;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function linePlotSvg(options: { title: string; series: Series[]; width?: number; height?: number; yMin?: number }): string {
  const width = options.width ?? 720;
  const height = options.height ?? 360;
  const m = { left: 60, right: 150, top: 36, bottom: 40 };
  const all = options.series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p[0]));
  const yMax = Math.max(1, ...all.map((p) => p[1])) * 1.1;
  const yMin = options.yMin ?? 0;
  const x = (v: number): number => m.left + (v / xMax) * (width - m.left - m.right);
  const y = (v: number): number => height - m.bottom - ((v - yMin) / (yMax - yMin)) * (height - m.top - m.bottom);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${esc(options.title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = yMin + ((yMax - yMin) * i) / 5;
    out.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${m.left - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(0)}</text>`);
    const xv = (xMax * i) / 5;
    out.push(`<text x="${x(xv)}" y="${height - m.bottom + 16}" text-anchor="middle">${xv.toFixed(0)}</text>`);
  }
  out.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${height - m.bottom}" stroke="#333"/><line x1="${m.left}" x2="${width - m.right}" y1="${height - m.bottom}" y2="${height - m.bottom}" stroke="#333"/>`);
  options.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    out.push(`<rect x="${width - m.right + 12}" y="${m.top + i * 18}" width="12" height="12" fill="${color}"/><text x="${width - m.right + 30}" y="${m.top + i * 18 + 10}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
