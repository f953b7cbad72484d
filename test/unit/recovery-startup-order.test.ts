// The start-up order of recovery: the local pass hands its first wave of repairs to the mount engine
// before the Kubernetes client is loaded (loading it holds the event loop for hundreds of ms; it must
// overlap the repairs' s3fs starts, not delay them). A fake engine whose stages the test finishes.
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

describe('recovery start-up order', () => {
  it('loads the API client only after the first --recovery-parallelism repairs reached the mount engine', async () => {
    const cfg = await configWith(['--mode', 'node', '--nodeid', 'n1', '--recovery', 'true', '--recovery-parallelism', '2']);
    const driver = new Driver(cfg, createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() })));
    const records = [record(1), record(2), record(3)];
    const finishStage: Array<() => void> = [];
    let stages = 0;
    const engine: MountEngine = {
      events: new EventChannel<EngineEvent>(),
      withVolumeLock: (_id, fn) => fn(),
      ensureStaged: () => {
        stages++;
        return new Promise((resolve) => finishStage.push(() => resolve('unchanged')));
      },
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
    let stagesAtLoad: number | undefined;
    const recovery = new Recovery(driver, engine, async () => {
      stagesAtLoad = stages;
      return undefined; // no API: the local pass is all of start-up
    });
    recovery.start();
    for (let i = 0; i < 1000 && stagesAtLoad === undefined; i++) await new Promise((r) => setImmediate(r));
    assert.equal(stagesAtLoad, 2, 'the client loads once both repairs of the first wave are in the engine, not before');
    assert.equal(driver.ready, false, 'still starting while repairs run');
    // Finish every stage (the third starts when a slot frees): start-up then ends.
    for (let i = 0; i < 1000 && !driver.ready; i++) {
      finishStage.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(stages, 3);
    assert.equal(driver.ready, true);
    await recovery.stop(1000);
  });
});
