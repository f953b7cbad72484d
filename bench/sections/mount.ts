import { na, type BenchContext, type SectionResult } from '../lib/types.js';

export async function mountSection(_ctx: BenchContext): Promise<SectionResult> {
  return na('mount', 'not implemented');
}
