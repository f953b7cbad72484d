// Conversions between the mount layer's types and proto/mounter.proto's messages: pure. Optional
// strings travel as "" (proto3 scalars have no presence); credentials as plain strings inside the
// RPC only, wrapped back into Secret on arrival.
import type { EngineEvent, PublishResult, StageResult, StagedRecord, StageSpec } from '../mount/index.js';
import { Secret } from '../secrets.js';
import type { MounterHello } from './protocol.js';
import type { Credentials__Output } from '../generated/s3fscsi/mounter/v1/Credentials.js';
import type { HelloResponse__Output } from '../generated/s3fscsi/mounter/v1/HelloResponse.js';
import type { MounterEvent__Output } from '../generated/s3fscsi/mounter/v1/MounterEvent.js';
import type { S3fsExit__Output } from '../generated/s3fscsi/mounter/v1/S3fsExit.js';
import type { StageSpec__Output } from '../generated/s3fscsi/mounter/v1/StageSpec.js';
import type { StagedRecord__Output } from '../generated/s3fscsi/mounter/v1/StagedRecord.js';

// The wire types are the ones proto-loader-gen-types generates from proto/mounter.proto (make
// proto-types), in their decoded (__Output) shape: a field added to the proto shows up here.
export type WireCredentials = Credentials__Output;
export type WireStageSpec = StageSpec__Output;
export type WireRecord = StagedRecord__Output;
export type WireHello = HelloResponse__Output;
export type WireS3fsExit = S3fsExit__Output;
export type WireEvent = MounterEvent__Output;

const orUndefined = (s: string | undefined): string | undefined => (s ? s : undefined);

export function specToWire(s: StageSpec): WireStageSpec {
  return {
    volume_id: s.volumeId, staging_path: s.stagingPath, bucket: s.bucket, prefix: s.prefix, endpoint: s.endpoint ?? '',
    region: s.region, path_style: s.pathStyle, insecure_skip_verify: s.insecureSkipVerify,
    credentials: { access_key_id: s.credentials.accessKeyId.reveal(), secret_access_key: s.credentials.secretAccessKey.reveal() },
    user_options: [...s.userOptions], readonly: s.readonly, mount_group: s.mountGroup ?? '',
  };
}

export function specFromWire(w: WireStageSpec): StageSpec {
  return {
    volumeId: w.volume_id, stagingPath: w.staging_path, bucket: w.bucket, prefix: w.prefix, endpoint: orUndefined(w.endpoint),
    region: w.region, pathStyle: w.path_style, insecureSkipVerify: w.insecure_skip_verify,
    credentials: { accessKeyId: new Secret(w.credentials?.access_key_id ?? ''), secretAccessKey: new Secret(w.credentials?.secret_access_key ?? '') },
    userOptions: [...(w.user_options ?? [])], readonly: w.readonly, mountGroup: orUndefined(w.mount_group),
  };
}

export function recordToWire(r: StagedRecord): WireRecord {
  return {
    volume_id: r.volumeId, staging_path: r.stagingPath, key: r.key, bucket: r.bucket, prefix: r.prefix, endpoint: r.endpoint ?? '',
    region: r.region, user_options: [...r.userOptions], readonly: r.readonly, mount_group: r.mountGroup ?? '',
    fingerprint: r.fingerprint, backing_dir: r.backingDir, staged_at: r.stagedAt, devices: [...(r.devices ?? [])],
  };
}

export function recordFromWire(w: WireRecord): StagedRecord {
  return {
    volumeId: w.volume_id, stagingPath: w.staging_path, key: w.key, bucket: w.bucket, prefix: w.prefix, endpoint: orUndefined(w.endpoint),
    region: w.region, userOptions: [...(w.user_options ?? [])], readonly: w.readonly, mountGroup: orUndefined(w.mount_group),
    fingerprint: w.fingerprint, backingDir: w.backing_dir, stagedAt: w.staged_at,
    ...(w.devices && w.devices.length > 0 ? { devices: [...w.devices] } : {}),
  };
}

export function helloToWire(h: MounterHello): WireHello {
  return { server_version: h.serverVersion, api_version: h.apiVersion, min_api_version: h.minApiVersion, instance_id: h.instanceId, started_at: h.startedAt, node_id: h.nodeId };
}

export function helloFromWire(w: Partial<WireHello> | null | undefined): MounterHello {
  return {
    serverVersion: w?.server_version ?? '', apiVersion: w?.api_version ?? 0, minApiVersion: w?.min_api_version ?? 0,
    instanceId: w?.instance_id ?? '', startedAt: w?.started_at ?? '', nodeId: w?.node_id ?? '',
  };
}

type S3fsExit = Extract<EngineEvent, { kind: 's3fs-exit' }>;

export function exitToWire(e: S3fsExit): WireS3fsExit {
  return {
    volume_id: e.volumeId, staging_path: e.stagingPath, backing_dir: e.backingDir, pid: e.pid,
    has_code: e.code !== null, code: e.code ?? 0, signal: e.signal ?? '', stderr: [...e.stderr],
  };
}

/** The engine event a stream message stands for; undefined for `hello` (handled by the handshake) and unknown kinds. */
export function eventFromWire(w: WireEvent): S3fsExit | undefined {
  const x = w.s3fs_exit;
  if (!x) return undefined;
  return {
    kind: 's3fs-exit', volumeId: x.volume_id, stagingPath: x.staging_path, backingDir: x.backing_dir, pid: x.pid,
    code: x.has_code ? x.code : null, signal: orUndefined(x.signal) ?? null, stderr: [...(x.stderr ?? [])],
  };
}

const STAGE_RESULTS: readonly StageResult[] = ['mounted', 'adopted', 'repaired', 'unchanged'];
const PUBLISH_RESULTS: readonly PublishResult[] = ['mounted', 'repaired', 'unchanged'];

export function stageResultFromWire(s: string): StageResult {
  const r = STAGE_RESULTS.find((x) => x === s);
  if (!r) throw new Error(`mounter answered an unknown stage result "${s.slice(0, 40)}"`);
  return r;
}

export function publishResultFromWire(s: string): PublishResult {
  const r = PUBLISH_RESULTS.find((x) => x === s);
  if (!r) throw new Error(`mounter answered an unknown publish result "${s.slice(0, 40)}"`);
  return r;
}
