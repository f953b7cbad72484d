// The printed table (also pasted into docs/bench.md) and the JSON file under build/bench/.
import { cpus, totalmem, release } from 'node:os';
import type { Stat } from './stats.js';
import type { Row, SectionResult } from './types.js';

function num(x: number): string {
  if (!Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

const cell = (s: Stat | undefined): string => (s && s.n > 0 ? `${num(s.median)} (${num(s.min)}–${num(s.max)})` : '-');

function verdict(r: Row): string {
  if (!r.ratio || r.ratio.n === 0 || !Number.isFinite(r.ratio.median)) return '';
  const x = r.ratio.median;
  const ours = r.better === 'lower' ? x <= 1 : x >= 1;
  const factor = x >= 1 ? x : 1 / x;
  if (factor < 1.05) return 'even';
  return ours ? `ours ${num(factor)}x better` : `peer ${num(factor)}x better`;
}

export function machine(): Record<string, string | number> {
  const c = cpus();
  return {
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    kernel: release(),
    node: process.version,
  };
}

/** A markdown table: readable in a terminal and pasteable into docs/bench.md. */
export function table(results: SectionResult[]): string {
  const lines: string[] = [];
  lines.push('| section | metric | unit | ours: median (min–max) | compared with | theirs: median (min–max) | ours/theirs (pairwise median) | verdict |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const s of results) {
    if (s.status !== 'ok' && s.rows.length === 0) {
      lines.push(`| ${s.section} | ${s.status === 'n/a' ? 'n/a' : 'FAILED'} (${(s.reason ?? '').replace(/\|/g, '/').slice(0, 160)}) | | | | | | |`);
      continue;
    }
    for (const r of s.rows) {
      lines.push(`| ${s.section} | ${r.metric}${r.note ? ` — ${r.note}` : ''} | ${r.unit} | ${cell(r.ours)} | ${r.peer?.label ?? ''} | ${cell(r.peer?.stat)} | ${r.ratio ? `${num(r.ratio.median)} (${num(r.ratio.min)}–${num(r.ratio.max)})` : ''} | ${verdict(r)} |`);
    }
    if (s.status === 'failed') lines.push(`| ${s.section} | FAILED after partial results (${(s.reason ?? '').replace(/\|/g, '/').slice(0, 160)}) | | | | | | |`);
  }
  return lines.join('\n');
}
