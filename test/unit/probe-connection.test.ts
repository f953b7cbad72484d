// /healthz's Probe connection (src/probe/client.ts) against a real grpc-js server on a unix socket
// whose Probe answers after a delay the test controls: requests that arrive while a call is in flight
// share it, the next request after an answer makes a new call, failures are not shared past their
// answer, and a deleted socket fails at once.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Server, ServerCredentials, status, type ServiceDefinition, type UntypedServiceImplementation, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { ProbeConnection } from '../../src/probe/client.js';

/** The one method /healthz calls, with raw bytes in and out (the response is an encoded ProbeResponse). */
const IDENTITY: ServiceDefinition = {
  Probe: {
    path: '/csi.v1.Identity/Probe', requestStream: false, responseStream: false,
    requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b,
  },
};
const READY = Buffer.from([0x0a, 0x02, 0x08, 0x01]); // ProbeResponse{ready: {value: true}}

let dir: string;
let socket: string;
let server: Server;
let received = 0;
/** Answers of the calls waiting in the server, released by the test. */
const waiting: Array<(fail: boolean) => void> = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 's3fs-csi-probeconn-'));
  socket = join(dir, 'csi.sock');
  server = new Server();
  const impl: UntypedServiceImplementation = {
    Probe: (_call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => {
      received++;
      waiting.push((fail) => (fail ? cb({ code: status.FAILED_PRECONDITION, details: 'not healthy' }) : cb(null, READY)));
    },
  };
  server.addService(IDENTITY, impl);
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
});

after(async () => {
  server.forceShutdown();
  await rm(dir, { recursive: true, force: true });
});

async function untilWaiting(n: number): Promise<void> {
  for (let i = 0; i < 500 && waiting.length < n; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(waiting.length, n, `${n} call(s) waiting in the server`);
}
const release = (fail = false): void => {
  for (const answer of waiting.splice(0)) answer(fail);
};

describe('ProbeConnection: one Probe call for the requests that arrive while it is in flight', () => {
  it('eight concurrent requests: one call, eight answers', async () => {
    const conn = new ProbeConnection(socket);
    const before = received;
    const answers = Array.from({ length: 8 }, () => conn.probe(5000));
    await untilWaiting(1);
    release();
    assert.deepEqual(await Promise.all(answers), Array.from({ length: 8 }, () => ({ healthy: true, ready: true })));
    assert.equal(received - before, 1);
    assert.equal(conn.calls, 1);
    conn.close();
  });

  it('the request after an answer makes a new call (nothing is cached), and a failure is not shared past its answer', async () => {
    const conn = new ProbeConnection(socket);
    const before = received;
    const first = conn.probe(5000);
    await untilWaiting(1);
    release(true);
    const failed = await first;
    assert.ok(!failed.healthy);
    assert.match(failed.reason, /FailedPrecondition: not healthy/);
    const second = conn.probe(5000);
    await untilWaiting(1);
    release();
    assert.deepEqual(await second, { healthy: true, ready: true });
    assert.equal(received - before, 2);
    conn.close();
  });

  it('a deleted socket fails at once, without a call', async () => {
    const conn = new ProbeConnection(join(dir, 'gone.sock'));
    const r = await conn.probe(5000);
    assert.ok(!r.healthy);
    assert.match(r.reason, /does not exist/);
    assert.equal(conn.calls, 0);
  });
});
