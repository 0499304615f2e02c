/** PromQL functions, aggregations and keywords: identifiers that are not metric names. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects. Strings, label matchers,
 * range and subquery windows, grouping label lists and function calls are
 * taken out first; Helm placeholders (`{{ ... }}`) count as numbers.
 */
export function metricNamesIn(expr: string): string[] {
  let s = expr.replace(/\{\{[^}]*\}\}/g, '1');
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
  s = s.replace(/\{[^}]*\}/g, '');
  s = s.replace(/\[[^\]]*\]/g, '');
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = new Set<string>();
  for (const m of s.matchAll(/(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    const name = m[1] as string;
    if (m[2] !== undefined || KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}

/** Every `expr` of a dashboard's panels (nested rows included). */
export function dashboardExpressions(dashboard: unknown): Array<{ panel: string; expr: string }> {
  const out: Array<{ panel: string; expr: string }> = [];
  const visit = (panels: unknown): void => {
    if (!Array.isArray(panels)) return;
    for (const p of panels as Array<{ title?: string; targets?: Array<{ expr?: string }>; panels?: unknown }>) {
      for (const target of p.targets ?? []) if (typeof target.expr === 'string') out.push({ panel: p.title ?? '?', expr: target.expr });
      visit(p.panels);
    }
  };
  visit((dashboard as { panels?: unknown }).panels);
  return out;
}

/** Every alert's `expr: |` block in a PrometheusRule template, by alert name. */
export function ruleExpressions(template: string): Array<{ alert: string; expr: string }> {
  const out: Array<{ alert: string; expr: string }> = [];
  const lines = template.split('\n');
  let alert = '?';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const named = /^\s*- alert:\s*(\S+)/.exec(line);
    if (named !== null) alert = named[1] as string;
    const block = /^(\s*)expr:\s*\|-?\s*$/.exec(line);
    const inline = /^\s*expr:\s*(\S.*)$/.exec(line);
    if (block !== null) {
      const indent = (block[1] as string).length;
      const body: string[] = [];
      while (i + 1 < lines.length && (/^\s*$/.test(lines[i + 1] as string) || ((lines[i + 1] as string).match(/^\s*/)?.[0].length ?? 0) > indent)) body.push(lines[++i] as string);
      out.push({ alert, expr: body.join('\n').trim() });
    } else if (inline !== null) {
      out.push({ alert, expr: inline[1] as string });
    }
  }
  return out;
}
