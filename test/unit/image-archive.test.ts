// The docker-save archives of the end-to-end images, built in memory: ustar headers (checksums,
// long names, types), the manifest/config/layer links and digests, the busybox layer's contents.
// GNU tar reads every archive back, as the independent check of the format.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { busyboxLayer, dockerSaveArchive, imageConfig, ociArchitecture, sha256Hex, tarArchive, type DockerSaveManifestEntry, type ImageConfig, type TarEntry } from '../harness/image-archive.js';

interface Read {
  path: string;
  type: string;
  mode: number;
  data: Buffer;
  link: string;
}

/** A minimal ustar reader written from the format, to check the writer field by field. */
function readTar(archive: Buffer): Read[] {
  const out: Read[] = [];
  const field = (h: Buffer, off: number, len: number): string => h.subarray(off, off + len).toString('utf8').replace(/\0.*$/s, '');
  for (let off = 0; off + 512 <= archive.length; ) {
    const h = archive.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const expected = parseInt(field(h, 148, 8).trim(), 8);
    const copy = Buffer.from(h);
    copy.fill(' ', 148, 156);
    assert.equal(copy.reduce((a, b) => a + b, 0), expected, 'header checksum');
    assert.equal(field(h, 257, 6), 'ustar');
    const prefix = field(h, 345, 155);
    const name = field(h, 0, 100);
    const size = parseInt(field(h, 124, 12), 8);
    out.push({
      path: prefix ? `${prefix}/${name}` : name,
      type: field(h, 156, 1),
      mode: parseInt(field(h, 100, 8), 8),
      data: Buffer.from(archive.subarray(off + 512, off + 512 + size)),
      link: field(h, 157, 100),
    });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

function gnuTarList(archive: Buffer): string[] {
  return execFileSync('tar', ['-tvf', '-'], { input: archive }).toString().trim().split('\n');
}

describe('tarArchive', () => {
  it('writes files, directories and symlinks that GNU tar and a reader of the format both read back', () => {
    const long = `${'d'.repeat(80)}/${'e'.repeat(60)}/file-with-a-long-name.txt`;
    const entries: TarEntry[] = [
      { type: 'dir', path: 'bin' },
      { type: 'file', path: 'bin/tool', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
      { type: 'symlink', path: 'bin/alias', target: '/bin/tool' },
      { type: 'dir', path: 'tmp', mode: 0o1777 },
      { type: 'file', path: long, data: Buffer.alloc(1025, 7) },
      { type: 'file', path: 'empty', data: Buffer.alloc(0) },
    ];
    const archive = tarArchive(entries);
    assert.equal(archive.length % 512, 0);
    const read = readTar(archive);
    assert.deepEqual(read.map((r) => [r.path, r.type]), [['bin/', '5'], ['bin/tool', '0'], ['bin/alias', '2'], ['tmp/', '5'], [long, '0'], ['empty', '0']]);
    assert.equal(read[1]!.mode, 0o755);
    assert.equal(read[1]!.data.toString(), '#!/bin/sh\necho hi\n');
    assert.equal(read[2]!.link, '/bin/tool');
    assert.equal(read[3]!.mode, 0o1777);
    assert.deepEqual(read[4]!.data, Buffer.alloc(1025, 7));
    const listing = gnuTarList(archive);
    assert.equal(listing.length, entries.length);
    assert.match(listing[0]!, /^drwxr-xr-x root\/root +0 1970-01-01 00:00 bin\/$/);
    assert.match(listing[1]!, /^-rwxr-xr-x root\/root +18 .* bin\/tool$/);
    assert.match(listing[2]!, /^lrwxrwxrwx .* bin\/alias -> \/bin\/tool$/);
    assert.match(listing[3]!, /^drwxrwxrwt .* tmp\/$/);
    assert.ok(listing[4]!.endsWith(long));
  });

  it('is deterministic and refuses what ustar cannot hold', () => {
    const entries: TarEntry[] = [{ type: 'file', path: 'a', data: Buffer.from('x') }];
    assert.deepEqual(tarArchive(entries), tarArchive(entries));
    assert.throws(() => tarArchive([{ type: 'file', path: 'x'.repeat(101), data: Buffer.alloc(0) }]), /too long/);
    assert.throws(() => tarArchive([{ type: 'symlink', path: 'l', target: '/'.repeat(101) }]), /too long/);
  });
});

describe('dockerSaveArchive', () => {
  it('links manifest.json -> config -> layer by sha256, names the ref, and GNU tar lists it', () => {
    const layer = tarArchive([{ type: 'file', path: 'hello', data: Buffer.from('world') }]);
    const ref = 'docker.io/library/s3fs-csi-e2e-test:0123456789abcdef';
    const archive = dockerSaveArchive(ref, { architecture: 'amd64', entrypoint: ['/hello'], createdBy: 'unit test' }, layer);
    const files = new Map(readTar(archive).filter((r) => r.type === '0').map((r) => [r.path, r.data]));
    const manifest = JSON.parse(files.get('manifest.json')!.toString()) as DockerSaveManifestEntry[];
    assert.equal(manifest.length, 1);
    assert.deepEqual(manifest[0]!.RepoTags, [ref]);
    const configBytes = files.get(manifest[0]!.Config)!;
    assert.equal(manifest[0]!.Config, `${sha256Hex(configBytes)}.json`);
    const config = JSON.parse(configBytes.toString()) as ImageConfig;
    assert.deepEqual(files.get(manifest[0]!.Layers[0]!), layer);
    assert.deepEqual(config.rootfs, { type: 'layers', diff_ids: [`sha256:${sha256Hex(layer)}`] });
    assert.equal(manifest[0]!.Layers[0], `${sha256Hex(layer)}/layer.tar`);
    assert.equal(config.os, 'linux');
    assert.equal(config.architecture, 'amd64');
    assert.deepEqual(config.config.Entrypoint, ['/hello']);
    assert.ok(gnuTarList(archive).some((l) => l.endsWith('manifest.json')));
  });

  it('image config: PATH by default, Cmd only when given, history names its maker', () => {
    const c = imageConfig({ architecture: 'arm64', entrypoint: [], cmd: ['/bin/sh'], createdBy: 'x' }, 'ab'.repeat(32));
    assert.deepEqual(c.config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    assert.deepEqual(c.config.Cmd, ['/bin/sh']);
    assert.equal(c.history[0]!.created_by, 'x');
    assert.equal('Cmd' in imageConfig({ architecture: 'amd64', entrypoint: ['/p'], createdBy: 'y' }, 'cd'.repeat(32)).config, false);
  });

  it('architecture names as image configs spell them', () => {
    assert.equal(ociArchitecture('x64'), 'amd64');
    assert.equal(ociArchitecture('arm64'), 'arm64');
    assert.throws(() => ociArchitecture('ia32'), /no image architecture/);
  });
});

describe('busyboxLayer', () => {
  it('busybox at /bin/busybox, every applet a link to it (parent dirs made once), root and nobody users', () => {
    const bin = Buffer.from('\x7fELF fake busybox');
    const read = readTar(busyboxLayer(bin, ['bin/sh', 'usr/bin/env', 'usr/sbin/chroot', 'bin/sh', '/bin/cat', 'bin/busybox', 'usr/bin/[[']));
    const byPath = new Map(read.map((r) => [r.path, r]));
    assert.deepEqual(byPath.get('bin/busybox')!.data, bin);
    assert.equal(byPath.get('bin/busybox')!.mode, 0o755);
    for (const l of ['bin/sh', 'bin/cat', 'usr/bin/env', 'usr/sbin/chroot', 'usr/bin/[[']) {
      assert.equal(byPath.get(l)?.type, '2', l);
      assert.equal(byPath.get(l)?.link, '/bin/busybox');
    }
    assert.equal(read.filter((r) => r.path === 'bin/sh').length, 1, 'duplicates linked once');
    assert.equal(read.filter((r) => r.path === 'usr/').length, 1);
    assert.ok(read.findIndex((r) => r.path === 'usr/') < read.findIndex((r) => r.path === 'usr/bin/env'), 'parent before child');
    assert.equal(byPath.get('tmp/')!.mode, 0o1777);
    assert.match(byPath.get('etc/passwd')!.data.toString(), /^root:x:0:0:/m);
    assert.match(byPath.get('etc/passwd')!.data.toString(), /^nobody:x:65534:65534:/m);
  });
});
