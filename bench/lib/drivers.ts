// The real driver (test harness startDriver) under the benchmark's cleanup registry.
import { startDriver, type DriverOptions, type DriverProcess } from '../../test/harness/driver.js';
import type { BenchContext } from './types.js';

export async function benchDriver(ctx: BenchContext, what: string, opts: DriverOptions): Promise<{ driver: DriverProcess; stop: () => Promise<void> }> {
  const driver = await startDriver(opts);
  if (driver.proc.pid) ctx.cleanup.pids.push(driver.proc.pid);
  const stop = ctx.cleanup.add(what, () => driver.cleanup());
  return { driver, stop };
}
