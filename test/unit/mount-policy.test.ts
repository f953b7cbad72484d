// Pure parts of the mount layer: option allowlist, s3fs argv, mountinfo parsing, path syntax.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { CsiError } from '../../src/errors.js';
import { layersAt, parseMountInfo, topAt } from '../../src/mount/mountinfo.js';
import { mergeOptions, splitOptions, validateOptions } from '../../src/mount/options.js';
import { checkPathSyntax } from '../../src/mount/path-safety.js';
import { s3fsArgs, stageSpecFrom } from '../../src/mount/spec.js';

const s3 = { region: 'us-east-1', pathStyle: true, insecureSkipVerify: false, endpoint: 'http://127.0.0.1:9000' };
const secrets = { accessKeyID: 'AKIAEXAMPLE', secretAccessKey: 'very-secret-key' };
const invalid = (fn: () => unknown, re?: RegExp): void => {
  assert.throws(fn, (err: unknown) => err instanceof CsiError && err.code === status.INVALID_ARGUMENT && (!re || re.test(err.message)));
};

describe('s3fs option policy', () => {
  it('splits comma, whitespace and -o forms into single options', () => {
    assert.deepEqual(splitOptions('-o allow_other -o uid=1000,gid=2000  ro'), ['allow_other', 'uid=1000', 'gid=2000', 'ro']);
  });
  it('accepts allowlisted options with valid values', () => {
    assert.deepEqual(validateOptions(['uid=1000,gid=1000', 'umask=0022 retries=3', 'storage_class=standard_ia'], 't'),
      ['uid=1000', 'gid=1000', 'umask=0022', 'retries=3', 'storage_class=standard_ia']);
  });
  it('rejects options that change credentials, endpoint, bucket, config files or write paths, naming them', () => {
    for (const o of ['passwd_file=/etc/shadow', 'url=http://elsewhere', 'bucket=x', 'endpoint=eu-west-1', 'use_cache=/tmp', 'tmpdir=/tmp',
      'ahbe_conf=/x', 'mime=/x', 'logfile=/x', 'profile=x', 'iam_role=auto', 'use_sse=custom:/key', 'nonempty', 'curldbg']) {
      invalid(() => validateOptions([o], 'opts'), new RegExp(`"${o.split('=')[0]}"`));
    }
  });
  it('defeats comma injection and bad values', () => {
    invalid(() => validateOptions(['uid=1000,passwd_file=/etc/shadow'], 'o'), /passwd_file/);
    invalid(() => validateOptions(['uid=abc'], 'o'));
    invalid(() => validateOptions(['umask=999'], 'o'));
    invalid(() => validateOptions(['ro=1'], 'o'));
    invalid(() => validateOptions(['uid=1\nurl=x'], 'o'));
    invalid(() => validateOptions(['Bad-Name'], 'o'));
  });
  it('later options replace earlier ones of the same name; ro/rw are one setting', () => {
    assert.deepEqual(mergeOptions(['a', 'uid=1', 'rw'], ['uid=2', 'ro']), ['a', 'uid=2', 'ro']);
  });
});

describe('stage spec and s3fs argv', () => {
  it('a static PV naming only its bucket in volumeAttributes keeps the prefix of its volumeHandle', () => {
    const only = stageSpecFrom({ volumeId: 'bkt/team/a', stagingPath: '/k/s', secrets, volumeContext: { bucket: 'bkt' } }, { s3 });
    assert.equal(s3fsArgs(only, '/b', '/p')[0], 'bkt:/team/a');
    const whole = stageSpecFrom({ volumeId: 'bkt/team/a', stagingPath: '/k/s', secrets, volumeContext: { bucket: 'bkt', prefix: '' } }, { s3 });
    assert.equal(s3fsArgs(whole, '/b', '/p')[0], 'bkt', 'an explicit empty prefix means the whole bucket');
  });
  it('builds bucket:/prefix, the driver options, and never puts a secret in argv', () => {
    const spec = stageSpecFrom({ volumeId: 'bkt/team/a', stagingPath: '/k/s', secrets, volumeContext: { options: 'uid=1000' } }, { s3 });
    const argv = s3fsArgs(spec, '/state/backing/x-1', '/run/x.passwd');
    assert.equal(argv[0], 'bkt:/team/a');
    assert.equal(argv[1], '/state/backing/x-1');
    assert.ok(argv.includes('-f'));
    const opts = argv[argv.length - 1]!.split(',');
    for (const o of ['passwd_file=/run/x.passwd', 'url=http://127.0.0.1:9000', 'endpoint=us-east-1', 'use_path_request_style', 'allow_other', 'uid=1000']) {
      assert.ok(opts.includes(o), o);
    }
    assert.ok(!argv.join(' ').includes('very-secret-key') && !argv.join(' ').includes('AKIAEXAMPLE'));
  });
  it('volume context bucket/prefix/endpoint/region win over the id and defaults; secrets win over context', () => {
    const spec = stageSpecFrom({ volumeId: 'ignored-bucket', stagingPath: '/k/s', secrets,
      volumeContext: { bucket: 'shared', prefix: 'pvc-1', endpoint: 'http://ctx:9000', region: 'eu-1' } }, { s3 });
    assert.equal(spec.bucket, 'shared');
    assert.equal(spec.prefix, 'pvc-1');
    assert.equal(spec.endpoint, 'http://ctx:9000');
    assert.equal(spec.region, 'eu-1');
    const s2 = stageSpecFrom({ volumeId: 'b1b', stagingPath: '/k/s', secrets: { ...secrets, endpoint: 'http://sec:1' }, volumeContext: { endpoint: 'http://ctx:9000' } }, { s3 });
    assert.equal(s2.endpoint, 'http://sec:1');
  });
  it('mount group gives gid + open umask; reader-only makes s3fs ro', () => {
    const spec = stageSpecFrom({ volumeId: 'bkt', stagingPath: '/k/s', secrets, volumeMountGroup: '2000', readonly: true }, { s3 });
    const opts = s3fsArgs(spec, '/b', '/p').at(-1)!.split(',');
    assert.ok(opts.includes('gid=2000') && opts.includes('umask=0000') && opts.includes('ro'));
    invalid(() => stageSpecFrom({ volumeId: 'bkt', stagingPath: '/k/s', secrets, volumeMountGroup: 'wheel' }, { s3 }));
  });
  it('missing credentials and session tokens are INVALID_ARGUMENT', () => {
    invalid(() => stageSpecFrom({ volumeId: 'bkt', stagingPath: '/k/s', secrets: {} }, { s3 }), /accessKeyID/);
    invalid(() => stageSpecFrom({ volumeId: 'bkt', stagingPath: '/k/s', secrets: { ...secrets, sessionToken: 'tok-123456' } }, { s3 }), /sessionToken/);
  });
});

describe('mountinfo', () => {
  const text = [
    '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/root rw',
    '42 22 0:39 / /state/b-1 rw,nosuid,nodev,relatime - fuse.s3fs s3fs rw,user_id=0,group_id=0,allow_other',
    '43 22 0:39 / /k/with\\040space rw,nosuid,nodev,relatime - fuse.s3fs s3fs rw,user_id=0,group_id=0,allow_other',
    '46 43 0:40 / /k/with\\040space ro,nosuid,nodev,relatime - fuse.s3fs s3fs rw,user_id=0,group_id=0,allow_other',
    '',
  ].join('\n');
  it('parses fields, decodes escapes, orders stacked layers bottom -> top', () => {
    const t = parseMountInfo(text);
    assert.equal(t.length, 4);
    assert.equal(t[1]!.fsType, 'fuse.s3fs');
    assert.equal(t[1]!.device, '0:39');
    const layers = layersAt(t, '/k/with space');
    assert.deepEqual(layers.map((m) => m.id), [43, 46]);
    assert.equal(topAt(t, '/k/with space')!.options[0], 'ro');
    assert.equal(layersAt(t, '/nothing').length, 0);
  });
});

describe('path syntax', () => {
  const roots = ['/var/lib/kubelet', '/tmp/extra'];
  it('accepts normalised absolute paths strictly below a root', () => {
    assert.equal(checkPathSyntax('/var/lib/kubelet/pods/x/mount/', roots, 'p'), '/var/lib/kubelet/pods/x/mount');
    assert.equal(checkPathSyntax('/tmp/extra/a', roots, 'p'), '/tmp/extra/a');
  });
  it('rejects relative, "..", ".", "//", outside and the root itself', () => {
    for (const p of ['', 'rel/x', '/etc', '/var/lib/kubelet', '/var/lib/kubelet/../x', '/var/lib/kubelet/a/./b', '/var/lib/kubelet//a',
      '/var/lib/kubeletX/a', '/tmp/extra/../../etc', '/var/lib/kubelet/a\0b', `/var/lib/kubelet/${'x'.repeat(256)}`]) {
      invalid(() => checkPathSyntax(p, roots, 'p'));
    }
  });
});
