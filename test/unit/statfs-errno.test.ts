// Pure: a failed statfs, classified by its errno (never by an error text): the readiness call and the health checks share it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { healthOfErrno } from '../../src/mount/index.js';

describe('healthOfErrno', () => {
  it('a dead FUSE daemon (ENOTCONN, or ECONNABORTED when the connection was aborted mid-call) is stale', () => {
    assert.equal(healthOfErrno('/m', 'ENOTCONN', 'x').state, 'stale');
    assert.equal(healthOfErrno('/m', 'ECONNABORTED', 'x').state, 'stale');
  });
  it('a path that is gone is missing; anything else is an error carrying the message', () => {
    assert.equal(healthOfErrno('/m', 'ENOENT', 'x').state, 'missing');
    const other = healthOfErrno('/m', 'EACCES', 'permission denied');
    assert.equal(other.state, 'error');
    assert.match(other.message, /\/m: permission denied/);
    assert.equal(healthOfErrno('/m', undefined, 'odd').state, 'error');
  });
});
