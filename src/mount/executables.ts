// Finding the programs the node runs: s3fs and the two native helpers.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';

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

/**
 * A native helper (native/*.c): `command` as resolveExecutable finds it (the image installs the
 * helpers on PATH), else the copy `make build` put in this checkout, when one is named.
 */
export async function resolveHelper(command: string, builtCopy?: string): Promise<string | undefined> {
  return (await resolveExecutable(command)) ?? (builtCopy === undefined ? undefined : resolveExecutable(builtCopy));
}
