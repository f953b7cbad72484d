// Unix socket files the driver serves (the CSI socket, kubelet's registration socket): a stale file
// left by a dead process is replaced, a live one is never stolen.
import { lstat, rm } from 'node:fs/promises';
import { connect } from 'node:net';

/** Removes a socket file nobody listens on; refuses to steal the socket of a live driver. */
export async function clearStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live) throw new Error(`another process is serving ${path}`);
  await rm(path, { force: true });
}
