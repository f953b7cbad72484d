import { na, type BenchContext, type SectionResult } from '../lib/types.js';

export async function controllerSection(_ctx: BenchContext): Promise<SectionResult> {
  return na('controller', 'not implemented');
}
