// The committed src/generated/ is exactly what scripts/proto-types.ts makes from proto/ today, with the
// loader options the driver runs with: a proto update without `make proto-types` fails here.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath } from '../../src/paths.js';
import { loaderOptions } from '../../src/proto-loader-options.js';
import { differences, generateProtoTypes, generatedDir, generatorFlags, withJsExtensions } from '../../scripts/proto-types.js';

describe('generated proto types', () => {
  let dir: string;
  let fresh: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 's3fs-csi-proto-types-test-'));
    fresh = join(dir, 'generated');
    await generateProtoTypes(fresh);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('src/generated/ equals a fresh generation from proto/ (run `make proto-types` after changing a proto)', async () => {
    assert.deepEqual(await differences(generatedDir, fresh), []);
  });

  it('the comparison notices a changed, a missing and an extra file (the check can fail)', async () => {
    const copy = join(dir, 'copy');
    await generateProtoTypes(copy);
    const changed = 'csi/v1/NodeStageVolumeRequest.ts';
    await writeFile(join(copy, changed), `${await readFile(join(copy, changed), 'utf8')}// edited\n`);
    await rm(join(copy, 'csi/v1/Volume.ts'));
    await writeFile(join(copy, 'extra.ts'), 'export {};\n');
    assert.deepEqual(await differences(fresh, copy), ['csi/v1/NodeStageVolumeRequest.ts', 'csi/v1/Volume.ts', 'extra.ts']);
  });

  it('is generated with the options the driver loads the protos with', () => {
    assert.deepEqual(generatorFlags(loaderOptions), ['--keepCase', '--longs=Number', '--enums=String', '--defaults', '--oneofs']);
    assert.throws(() => generatorFlags({ includeDirs: ['x'] }), /includeDirs has no proto-loader-gen-types equivalent/);
  });

  it('what a handler receives has the shape the __Output types promise: every field present, enums as names, int64 as numbers', () => {
    const def = protoLoader.loadSync(protoPath, loaderOptions);
    // An empty request off the wire, decoded as grpc-js does (deserialize = toObject with the options).
    const service = def['csi.v1.Controller'] as protoLoader.ServiceDefinition;
    const create = service.CreateVolume!;
    const wire = create.requestSerialize({ name: 'v', capacity_range: { required_bytes: 5 }, volume_capabilities: [{ mount: {}, access_mode: { mode: 1 } }] });
    const decoded = create.requestDeserialize(wire) as Record<string, unknown>;
    assert.equal(decoded.name, 'v');
    assert.deepEqual(decoded.parameters, {});
    assert.deepEqual(decoded.secrets, {});
    assert.deepEqual(decoded.capacity_range, { required_bytes: 5, limit_bytes: 0 });
    const cap = (decoded.volume_capabilities as Record<string, unknown>[])[0]!;
    assert.deepEqual(cap.access_mode, { mode: 'SINGLE_NODE_WRITER' });
    assert.equal(cap.access_type, 'mount');
    assert.deepEqual(cap.mount, { fs_type: '', mount_flags: [], volume_mount_group: '' });
  });

  it('relative imports get the .js extension ES modules need; package imports are left alone', () => {
    assert.equal(withJsExtensions("import type { A } from '../../csi/v1/A';"), "import type { A } from '../../csi/v1/A.js';");
    assert.equal(withJsExtensions("import type { B } from './csi/v1/B.js';"), "import type { B } from './csi/v1/B.js';");
    assert.equal(withJsExtensions("import type * as grpc from '@grpc/grpc-js'"), "import type * as grpc from '@grpc/grpc-js'");
  });
});
