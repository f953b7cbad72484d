// One Probe call over the CSI socket on a fresh connection, as the kubernetes-csi livenessprobe
// sidecar does for every /healthz request. Shared by the HTTP probe and `s3fs-csi probe`.
import { existsSync } from 'node:fs';
import type { ServiceError } from '@grpc/grpc-js';
import { codeName } from '../errors.js';
import { csiClient, unary } from '../csi/proto.js';
import type { ProbeReply } from '../csi/messages.js';

export type ProbeResult =
  | { healthy: true; ready: boolean }
  | { healthy: false; reason: string };

export async function probeOnce(socketPath: string, timeoutMs: number): Promise<ProbeResult> {
  if (!existsSync(socketPath)) return { healthy: false, reason: `failed to connect to the driver: ${socketPath} does not exist` };
  const client = csiClient('Identity', socketPath, { 'grpc.enable_retries': 0 });
  try {
    const res = await unary<ProbeReply>(client, 'Probe', {}, timeoutMs);
    // `ready` is a wrapped bool: absent means ready.
    return { healthy: true, ready: res.ready ? res.ready.value : true };
  } catch (err) {
    const e = err as ServiceError;
    const code = typeof e.code === 'number' ? codeName(e.code) : 'Unknown';
    return { healthy: false, reason: `probe failed with ${code}: ${e.details || e.message}` };
  } finally {
    client.close();
  }
}
