// Staging and target paths come from the CO; a hostile or buggy caller must not make the driver
// mount over /etc or follow a symlink out of the kubelet directory. Checked before anything is
// created: absolute, normalised, no "..", strictly below an allowed root, no symlinked component.
import { lstat } from 'node:fs/promises';
import { isAbsolute, normalize } from 'node:path';
import { invalidArgument } from '../errors.js';
import { type MountEntry, layersAt } from './mountinfo.js';

const MAX_PATH = 4096;

/** `path` without trailing slashes ("/" stays "/"). */
export const withoutTrailingSlash = (path: string): string => (path.length > 1 ? path.replace(/\/+$/, '') : path);

/** Syntax and root check, pure. Returns the path without a trailing slash. */
export function checkPathSyntax(path: string, roots: readonly string[], field: string): string {
  if (!path) throw invalidArgument(`${field} is required`);
  if (path.length > MAX_PATH || /[\0\n]/.test(path)) throw invalidArgument(`${field} is not a valid path`);
  // NAME_MAX: a longer component fails every syscall with ENAMETOOLONG (an INTERNAL otherwise).
  if (path.split('/').some((seg) => Buffer.byteLength(seg) > 255)) throw invalidArgument(`${field} has a path component longer than 255 bytes`);
  if (!isAbsolute(path)) throw invalidArgument(`${field} "${path.slice(0, 256)}" must be absolute`);
  const trimmed = withoutTrailingSlash(path);
  if (trimmed.split('/').some((seg) => seg === '..' || seg === '.') || normalize(trimmed) !== trimmed) {
    throw invalidArgument(`${field} "${path.slice(0, 256)}" must be normalised (no "..", ".", or "//")`);
  }
  if (!roots.some((root) => trimmed.startsWith(root === '/' ? '/' : `${root}/`) && trimmed !== root)) {
    throw invalidArgument(`${field} "${path.slice(0, 256)}" is outside the allowed roots (${roots.join(', ')})`);
  }
  return trimmed;
}

/**
 * Refuses a path with a symlink anywhere below its allowed root. Components that are mount points
 * are not lstat'ed (a mount point is never a symlink, and lstat on a hung FUSE mount would block a
 * thread-pool thread); a dead mount (ENOTCONN) counts as an existing directory.
 */
export async function checkNoSymlinks(path: string, roots: readonly string[], table: readonly MountEntry[], field: string): Promise<void> {
  const root = roots
    .filter((r) => path.startsWith(r === '/' ? '/' : `${r}/`))
    .sort((a, b) => b.length - a.length)[0];
  if (root === undefined) throw invalidArgument(`${field} is outside the allowed roots`);
  const rest = path.slice(root.length).split('/').filter(Boolean);
  let cur = root === '/' ? '' : root;
  for (const seg of rest) {
    cur = `${cur}/${seg}`;
    if (layersAt(table, cur).length > 0) continue;
    try {
      const st = await lstat(cur);
      if (st.isSymbolicLink()) throw invalidArgument(`${field} "${path.slice(0, 256)}": component ${cur} is a symbolic link`);
      if (!st.isDirectory()) throw invalidArgument(`${field} "${path.slice(0, 256)}": component ${cur} is not a directory`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return; // the rest does not exist yet: nothing to follow
      if (code === 'ENOTCONN' || code === 'ECONNABORTED') continue;
      throw err;
    }
  }
}

export async function safePath(path: string, roots: readonly string[], table: readonly MountEntry[], field: string): Promise<string> {
  const p = checkPathSyntax(path, roots, field);
  await checkNoSymlinks(p, roots, table, field);
  return p;
}
