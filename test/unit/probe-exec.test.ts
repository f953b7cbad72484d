// The exec probe's own pieces: its flag reading (what falls back to the full command line), the
// ProbeResponse reader, gRPC framing and timeout header, and the chart's V8 flags the bench uses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as protoLoader from '@grpc/proto-loader';
import { chartNodeOptions, chartV8Defaults } from '../../bench/lib/chart.js';
import { protoPath } from '../../src/paths.js';
import { parseProbeArgs } from '../../src/probe/exec.js';
import { codeName, decodeProbeResponse, grpcTimeout, probeReplyFromFrames } from '../../src/probe/wire.js';
import { loaderOptions } from '../../src/proto-loader-options.js';

describe('s3fs-csi probe flags', () => {
  it('reads --endpoint/--timeout in both forms and --ignore-not-ready; defaults as --help says', () => {
    assert.deepEqual(parseProbeArgs([], {}), { endpoint: 'unix:///csi/csi.sock', timeoutMs: 3000, requireReady: true });
    assert.deepEqual(parseProbeArgs(['--endpoint', 'unix:///a.sock', '--timeout', '1s', '--ignore-not-ready'], {}), { endpoint: 'unix:///a.sock', timeoutMs: 1000, requireReady: false });
    assert.deepEqual(parseProbeArgs(['--endpoint=/b.sock', '--timeout=500ms'], {}), { endpoint: '/b.sock', timeoutMs: 500, requireReady: true });
  });

  it('flags win over the environment, the environment over defaults', () => {
    const env = { CSI_ENDPOINT: 'unix:///env.sock', S3FS_CSI_PROBE_TIMEOUT: '2s' };
    assert.deepEqual(parseProbeArgs([], env), { endpoint: 'unix:///env.sock', timeoutMs: 2000, requireReady: true });
    assert.deepEqual(parseProbeArgs(['--endpoint', '/f.sock', '--timeout', '4s'], env), { endpoint: '/f.sock', timeoutMs: 4000, requireReady: true });
  });

  it('leaves help, unknown flags, missing values and invalid durations to the full command line', () => {
    for (const args of [['--help'], ['-h'], ['--verbose'], ['--endpoint'], ['--timeout', '3x'], ['extra'], ['--ignore-not-ready=true']]) {
      assert.equal(parseProbeArgs(args, {}), undefined, args.join(' '));
    }
    assert.equal(parseProbeArgs([], { S3FS_CSI_PROBE_TIMEOUT: 'soon' }), undefined);
  });
});

describe('ProbeResponse without a proto loader', () => {
  const probe = (protoLoader.loadSync(protoPath, loaderOptions)['csi.v1.Identity'] as protoLoader.ServiceDefinition).Probe!;
  const wire = (res: object): Buffer => probe.responseSerialize(res);

  it('reads what the driver\'s own serializer writes: ready true, false, absent', () => {
    assert.deepEqual(decodeProbeResponse(wire({ ready: { value: true } })), { ready: true });
    assert.deepEqual(decodeProbeResponse(wire({ ready: { value: false } })), { ready: false });
    assert.deepEqual(decodeProbeResponse(wire({})), {});
  });

  it('skips unknown fields of every wire type, and refuses truncated input', () => {
    // field 2 varint, field 3 fixed64, field 4 bytes, field 5 fixed32, then ready = true.
    const extra = Buffer.from([0x10, 0x96, 0x01, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x22, 0x02, 0xaa, 0xbb, 0x2d, 1, 2, 3, 4, 0x0a, 0x02, 0x08, 0x01]);
    assert.deepEqual(decodeProbeResponse(extra), { ready: true });
    assert.throws(() => decodeProbeResponse(Buffer.from([0x0a, 0x05, 0x08])), /index out of range/);
    assert.throws(() => decodeProbeResponse(Buffer.from([0x08, 0x80])), /index out of range/);
  });

  it('takes the one message out of a gRPC frame; refuses compression and short bodies', () => {
    const msg = wire({ ready: { value: true } });
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]);
    assert.deepEqual(probeReplyFromFrames(frame, decodeProbeResponse), { ready: true });
    assert.throws(() => probeReplyFromFrames(Buffer.from([1, 0, 0, 0, 0]), decodeProbeResponse), /compressed/);
    assert.throws(() => probeReplyFromFrames(Buffer.from([0, 0, 0]), decodeProbeResponse), /no gRPC message/);
    assert.throws(() => probeReplyFromFrames(Buffer.from([0, 0, 0, 0, 9, 1]), decodeProbeResponse), /cut short/);
  });

  it('grpc-timeout stays within 8 digits; status names as Go spells them', () => {
    assert.equal(grpcTimeout(3000), '3000m');
    assert.equal(grpcTimeout(1e9), '1000000S');
    assert.equal(grpcTimeout(1e12), '277778H');
    assert.equal(codeName(9), 'FailedPrecondition');
    assert.equal(codeName(42), 'Code(42)');
  });
});

describe('the chart\'s V8 flags (node.v8) as the footprint bench reads them', () => {
  it('are read from values.yaml and rendered as node.yaml renders NODE_OPTIONS', () => {
    const v = chartV8Defaults();
    assert.ok(v.maxSemiSpaceSizeMiB > 0 && v.maxOldSpaceSizeMiB > 0, JSON.stringify(v));
    assert.equal(chartNodeOptions({ maxSemiSpaceSizeMiB: 2, maxOldSpaceSizeMiB: 256 }), '--max-semi-space-size=2 --max-old-space-size=256');
    assert.equal(chartNodeOptions({ maxSemiSpaceSizeMiB: 0, maxOldSpaceSizeMiB: 128 }), '--max-old-space-size=128');
    assert.equal(chartNodeOptions({ maxSemiSpaceSizeMiB: 0, maxOldSpaceSizeMiB: 0 }), '');
  });
});
