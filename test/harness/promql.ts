// The metric names a PromQL expression reads, and the metric families a /metrics page exposes, so a
// test can hold the chart's alerts and dashboard to what the real driver exports.

// Words that are PromQL syntax, not series, when they stand without a `(` after them.
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/**
 * Metric names in `expr`: identifiers that are not functions or aggregations (followed by `(`), not
 * keywords, not inside label matchers `{...}`, ranges `[...]`, strings or grouping clauses.
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ') // strings (label values, regexes)
    .replace(/\{[^}]*\}/g, ' ') // label matchers, Grafana ${vars}
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w$.])([a-zA-Z_:][\w:]*)(?!\w)(\s*\()?/g)) {
    const [, word, call] = m;
    if (!word || call || KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names].sort();
}

/** Metric families of a Prometheus text page, with the series names each one produces. */
export function exposedSeriesNames(page: string): Set<string> {
  const out = new Set<string>();
  for (const m of page.matchAll(/^# TYPE (\S+) (\w+)$/gm)) {
    const [, name, type] = m;
    if (!name) continue;
    out.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) out.add(name + s);
  }
  return out;
}
