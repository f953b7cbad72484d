// The start-up order of recovery: the local pass starts its repairs at once, and the Kubernetes client
// (whose load, then discovery, hold the event loop for a second or more) is loaded only once every
// gRPC service answers (serve says when) and every local repair has ended. A fake engine whose stages
// the test finishes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildCli } from '../../src/cli.js';
import type { Config } from '../../src/config.js';
import { Driver } from '../../src/driver.js';
import { createLogger } from '../../src/log.js';
import { EventChannel, type EngineEvent, type MountEngine } from '../../src/mount/engine.js';
import type { StagedRecord } from '../../src/mount/records.js';
import { Recovery } from '../../src/recovery/scheduler.js';
import { Secret } from '../../src/secrets.js';
import { Writable } from 'node:stream';

async function configWith(args: string[]): Promise<Config> {
  let cfg: Config | undefined;
  await buildCli({ serve: async (c) => void (cfg = c), probe: async () => undefined }).parseAsync(['node', 's3fs-csi', ...args]);
  assert.ok(cfg);
  return cfg;
}

const record = (i: number): StagedRecord => ({
  volumeId: `vol-${i}`, stagingPath: `/nonexistent/staging-${i}`, key: `k${i}`, bucket: `b${i}`, prefix: '', region: 'us-east-1',
  userOptions: [], readonly: false, fingerprint: 'f', backingDir: `/nonexistent/backing-${i}`, stagedAt: new Date(0).toISOString(),
});

/** Every recorded volume dead; `stage` decides how each repair's stage ends. */
function fakeEngine(records: StagedRecord[], stage: MountEngine['ensureStaged']): MountEngine {
  return {
    events: new EventChannel<EngineEvent>(),
    withVolumeLock: (_id, fn) => fn(),
    ensureStaged: stage,
    ensurePublished: async () => 'unchanged',
    unpublish: async () => undefined,
    unstage: async () => undefined,
    staged: async () => records,
    recordOf: async (p) => records.find((r) => r.stagingPath === p),
    conditionOf: async () => undefined,
    recordedCredentials: async () => ({ accessKeyId: new Secret('AKIDEXAMPLE'), secretAccessKey: new Secret('secretsecret') }),
    checkPath: async () => ({ state: 'stale', message: 'dead' }),
    checkPaths: async (paths) => new Map(paths.map((p) => [p, { state: 'stale', message: 'dead' }])),
  };
}

/**
 * One pass of the event loop, timers included: the recovery's own steps may wait on a timer or on
 * I/O, so a loaded machine needs real turns, not only immediates. Loops below wait for a condition,
 * bounded by a count of turns, never by elapsed time.
 */
const turn = (): Promise<void> => new Promise((r) => setTimeout(r, 1));

describe('recovery start-up order', () => {
  const setUp = async (): Promise<{ driver: Driver; recovery: Recovery; finishStage: Array<() => void>; stages: () => number; loadedAt: () => { stages: number; finished: number } | undefined }> => {
    const cfg = await configWith(['--mode', 'node', '--nodeid', 'n1', '--recovery', 'true', '--recovery-parallelism', '2']);
    const driver = new Driver(cfg, createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() })));
    const records = [record(1), record(2), record(3)];
    const finishStage: Array<() => void> = [];
    let stages = 0;
    let finished = 0;
    const engine = fakeEngine(records, () => {
      stages++;
      return new Promise((resolve) => finishStage.push(() => {
        finished++;
        resolve('unchanged');
      }));
    });
    let loadedAt: { stages: number; finished: number } | undefined;
    const recovery = new Recovery(driver, engine, async () => {
      loadedAt = { stages, finished };
      return undefined; // no API: the local pass is all of start-up
    });
    return { driver, recovery, finishStage, stages: () => stages, loadedAt: () => loadedAt };
  };

  it('repairs start at once; the API client loads only after every local repair ended, and not before the services answer', async () => {
    const { driver, recovery, finishStage, stages, loadedAt } = await setUp();
    const served = Promise.withResolvers<void>();
    recovery.start(served.promise);
    for (let i = 0; i < 5000 && stages() < 2; i++) await turn();
    assert.equal(stages(), 2, 'the first --recovery-parallelism repairs are in the engine at once');
    // One ends: the third starts in its slot.
    finishStage.shift()?.();
    for (let i = 0; i < 5000 && stages() < 3; i++) await turn();
    assert.equal(stages(), 3);
    assert.equal(loadedAt(), undefined, 'not loaded while repairs run');
    for (let i = 0; i < 5000 && finishStage.length > 0; i++) {
      finishStage.shift()?.();
      await turn();
    }
    assert.equal(stages(), 3);
    for (let i = 0; i < 50; i++) await turn();
    assert.equal(loadedAt(), undefined, 'every repair ended, but the services do not answer yet: not loaded');
    assert.equal(driver.ready, false);
    served.resolve();
    for (let i = 0; i < 5000 && !driver.ready; i++) await turn();
    assert.deepEqual(loadedAt(), { stages: 3, finished: 3 }, 'loaded once both are true');
    assert.equal(driver.ready, true);
    await recovery.stop(1000);
  });

  it('with the services answering first, still waits for the last repair', async () => {
    const { driver, recovery, finishStage, stages, loadedAt } = await setUp();
    recovery.start(Promise.resolve());
    for (let i = 0; i < 5000 && stages() < 2; i++) await turn();
    for (let i = 0; i < 50; i++) await turn();
    assert.equal(loadedAt(), undefined, 'repairs running: not loaded');
    for (let i = 0; i < 5000 && !driver.ready; i++) {
      finishStage.shift()?.();
      await turn();
    }
    assert.deepEqual(loadedAt(), { stages: 3, finished: 3 });
    assert.equal(driver.ready, true);
    await recovery.stop(1000);
  });
});
