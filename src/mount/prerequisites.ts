// What a node needs before it can mount anything: the checks behind Probe in node mode.
import { open, stat } from 'node:fs/promises';
import { resolveExecutable } from './executables.js';
import { findMountHelper, mountHelperMissing } from './mount-helper.js';

export async function checkS3fsBinary(path: string): Promise<string | undefined> {
  return (await resolveExecutable(path)) ? undefined : `s3fs binary "${path}" not found or not executable`;
}

/** The bind-mount helper (s3fs-csi-mount): every stage and publish goes through it. */
export async function checkMountHelper(): Promise<string | undefined> {
  return (await findMountHelper()) ? undefined : mountHelperMissing;
}

export async function checkFuseDevice(device = '/dev/fuse'): Promise<string | undefined> {
  try {
    const handle = await open(device, 'r+');
    await handle.close();
    return undefined;
  } catch (err) {
    return `${device} is not usable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}

export async function checkDirectory(path: string, what: string): Promise<string | undefined> {
  try {
    if (!(await stat(path)).isDirectory()) return `${what} ${path} is not a directory`;
    return undefined;
  } catch (err) {
    return `${what} ${path} is not reachable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}
