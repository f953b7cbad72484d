// The mounter API's version and the node plugin's decision about a mounter it connects to: pure.
//
// The mounter is long-lived (its DaemonSet updates OnDelete), so a node plugin is often newer than
// the mounter it talks to. What matters is the API, not the package version:
//   - the node plugin's API_VERSION within the mounter's [min_api_version, api_version]: compatible;
//     a different package version is only logged (expected between a chart upgrade and the
//     mounter pod's replacement);
//   - outside that range (an older mounter that lacks what we need, or a newer one that dropped our
//     version): refused. No RPC but Hello is sent; Probe fails with the reason; the metric says so.
//   - a mounter that does not even answer Hello with an API version (another program on the socket):
//     refused.

/** Version of proto/mounter.proto's API spoken by this binary. */
export const API_VERSION = 1;
/** The oldest client API version this binary's mounter role still serves. */
export const MIN_API_VERSION = 1;

export interface MounterHello {
  serverVersion: string;
  apiVersion: number;
  minApiVersion: number;
  instanceId: string;
  startedAt: string;
  nodeId: string;
}

export type Verdict =
  | { ok: true; warning?: string }
  | { ok: false; reason: string };

export function judgeMounter(hello: MounterHello, ours: { apiVersion: number; packageVersion: string; nodeId: string }): Verdict {
  if (!Number.isInteger(hello.apiVersion) || hello.apiVersion <= 0 || !hello.instanceId) {
    return { ok: false, reason: 'the process on the mounter socket did not answer the handshake with an API version and instance id' };
  }
  const min = hello.minApiVersion > 0 ? hello.minApiVersion : hello.apiVersion;
  if (ours.apiVersion > hello.apiVersion) {
    return { ok: false, reason: `mounter ${hello.serverVersion} speaks API v${hello.apiVersion}, older than this node plugin's v${ours.apiVersion}: replace the mounter pod (its DaemonSet updates OnDelete)` };
  }
  if (ours.apiVersion < min) {
    return { ok: false, reason: `mounter ${hello.serverVersion} no longer serves API v${ours.apiVersion} (it serves v${min}..v${hello.apiVersion}): upgrade the node plugin` };
  }
  if (hello.nodeId && ours.nodeId && hello.nodeId !== ours.nodeId) {
    return { ok: false, reason: `the mounter serves node "${hello.nodeId}", not "${ours.nodeId}": the socket directory is shared wrongly` };
  }
  if (hello.serverVersion !== ours.packageVersion) {
    return { ok: true, warning: `mounter runs version ${hello.serverVersion}, the node plugin ${ours.packageVersion} (API v${ours.apiVersion} compatible); replace the mounter pod to upgrade it` };
  }
  return { ok: true };
}
