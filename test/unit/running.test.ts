// RunningTasks: what a shutdown waits for, when it aborts, and that it never waits unbounded.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RunningTasks } from '../../src/running.js';

describe('RunningTasks', () => {
  it('lets tasks that finish within the grace period finish, without aborting', async () => {
    const tasks = new RunningTasks();
    let done = false;
    void tasks.track(sleep(30).then(() => (done = true)));
    assert.equal(tasks.size, 1);
    await tasks.drain(1000, 1000);
    assert.ok(done);
    assert.equal(tasks.signal.aborted, false);
    assert.equal(tasks.size, 0);
  });

  it('aborts tasks past the grace period and waits for their undo', async () => {
    const tasks = new RunningTasks();
    let undone = false;
    const task = new Promise<void>((resolve) => {
      tasks.signal.addEventListener('abort', () => void sleep(20).then(() => { undone = true; resolve(); }));
    });
    void tasks.track(task);
    const t0 = Date.now();
    await tasks.drain(50, 2000);
    assert.ok(tasks.signal.aborted);
    assert.ok(undone, 'drain returned before the aborted task finished undoing');
    assert.ok(Date.now() - t0 < 1000);
  });

  it('gives up on a task that ignores the abort after the cleanup time', async () => {
    const tasks = new RunningTasks();
    void tasks.track(new Promise(() => undefined));
    const t0 = Date.now();
    await tasks.drain(0, 100);
    const ms = Date.now() - t0;
    assert.ok(ms >= 90 && ms < 1000, `took ${ms} ms`);
    assert.equal(tasks.size, 1);
  });

  it('forgets rejected tasks too', async () => {
    const tasks = new RunningTasks();
    await assert.rejects(tasks.track(Promise.reject(new Error('x'))));
    await sleep(0);
    assert.equal(tasks.size, 0);
  });
});
