import { na, type BenchContext, type SectionResult } from '../lib/types.js';

export async function recoverySection(_ctx: BenchContext): Promise<SectionResult> {
  return na('recovery', 'not implemented');
}
