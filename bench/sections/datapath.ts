import { na, type BenchContext, type SectionResult } from '../lib/types.js';

export async function datapathSection(_ctx: BenchContext): Promise<SectionResult> {
  return na('datapath', 'not implemented');
}
