// Per-volume s3fs passwd files: one file per staged volume (never a shared one: concurrent rewrites
// of a shared file corrupt other volumes' credentials), mode 0600 in a 0700 directory, written to a
// temp name and renamed so s3fs never reads half a file.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Secret } from '../secrets.js';

export function passwdPath(runtimeDir: string, key: string): string {
  return join(runtimeDir, `${key}.passwd`);
}

export async function ensureRuntimeDir(runtimeDir: string): Promise<void> {
  await mkdir(runtimeDir, { recursive: true, mode: 0o700 });
  await chmod(runtimeDir, 0o700);
}

export async function writePasswdFile(runtimeDir: string, key: string, accessKeyId: Secret, secretAccessKey: Secret): Promise<string> {
  const ak = accessKeyId.reveal();
  const sk = secretAccessKey.reveal();
  // connectionFrom() already refused line breaks in both keys and ':' in the access key.
  await ensureRuntimeDir(runtimeDir);
  const file = passwdPath(runtimeDir, key);
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(tmp, `${ak}:${sk}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(tmp, 0o600);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return file;
}

export async function removePasswdFile(runtimeDir: string, key: string): Promise<void> {
  await rm(passwdPath(runtimeDir, key), { force: true });
}

/** The keys of a volume's passwd file; throws (ENOENT, or "malformed") when they cannot be read back. */
export async function readPasswdFile(runtimeDir: string, key: string): Promise<{ accessKeyId: Secret; secretAccessKey: Secret }> {
  const line = (await readFile(passwdPath(runtimeDir, key), 'utf8')).split('\n')[0] ?? '';
  const colon = line.indexOf(':');
  if (colon <= 0) throw new Error('passwd file is malformed');
  return { accessKeyId: new Secret(line.slice(0, colon)), secretAccessKey: new Secret(line.slice(colon + 1)) };
}
