// What a node needs before it can mount anything: the checks behind Probe in node mode.
import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { BUILT_MOUNT_HELPER, MOUNT_HELPER_NAME, findMountHelper } from './mount-helper.js';

/** Resolves a command name through PATH the way execve would; undefined when not executable. */
export async function resolveExecutable(command: string): Promise<string | undefined> {
  const candidates = isAbsolute(command) || command.includes('/')
    ? [command]
    : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, command));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

export async function checkS3fsBinary(path: string): Promise<string | undefined> {
  return (await resolveExecutable(path)) ? undefined : `s3fs binary "${path}" not found or not executable`;
}

/** The bind-mount helper (s3fs-csi-mount): every stage and publish goes through it. */
export async function checkMountHelper(): Promise<string | undefined> {
  return (await findMountHelper()) ? undefined : `${MOUNT_HELPER_NAME} not found on PATH nor at ${BUILT_MOUNT_HELPER} (make build; the image installs it)`;
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
