// CSI Node service: request validation and CSI semantics; the mount work is a MountEngine (the
// in-process Mounter of src/mount/, or the separate mounter process through src/mounter/client.ts).
// A second operation on a volume that is mid-operation waits for it (per-volume lock) and gives up
// with ABORTED when its own deadline passes; different volumes proceed in parallel.
import type { Driver } from '../driver.js';
import { failedPrecondition, invalidArgument, notFound } from '../errors.js';
import { type MountEngine, checkPathSyntax, layersAt, readMountTable, safePath, stageSpecFrom, withoutTrailingSlash } from '../mount/index.js';
import { capabilityProblem } from './capability.js';
import type { CallContext, ServiceHandlers } from './server.js';
import type {
  NodeGetVolumeStatsRequest, NodeGetVolumeStatsResponse, NodePublishVolumeRequest, NodeStageVolumeRequest,
  NodeUnpublishVolumeRequest, NodeUnstageVolumeRequest, VolumeCapability, VolumeUsage,
  NodeHandlers, PromiseHandlers,
} from './messages.js';

const READER_ONLY = new Set(['SINGLE_NODE_READER_ONLY', 'MULTI_NODE_READER_ONLY']);
function checkCapability(cap: VolumeCapability | null | undefined): { readonly: boolean; mountFlags: string[]; group: string } {
  const problem = capabilityProblem(cap);
  if (problem || !cap) throw invalidArgument(problem ?? 'volume_capability is required');
  return { readonly: READER_ONLY.has(cap.access_mode?.mode ?? ''), mountFlags: cap.mount?.mount_flags ?? [], group: cap.mount?.volume_mount_group ?? '' };
}

const required = (v: string, name: string): string => {
  if (!v) throw invalidArgument(`${name} is required`);
  return v;
};

export function nodeService(driver: Driver, mounter: MountEngine): ServiceHandlers {
  const cfg = driver.config;
  const roots = cfg.allowedRoots;

  return {
    async NodeStageVolume(req: NodeStageVolumeRequest, ctx: CallContext): Promise<object> {
      const volumeId = required(req.volume_id, 'volume_id');
      required(req.staging_target_path, 'staging_target_path');
      const cap = checkCapability(req.volume_capability);
      const staging = await safePath(req.staging_target_path, roots, await readMountTable(), 'staging_target_path');
      const spec = stageSpecFrom({
        volumeId, stagingPath: staging, volumeContext: req.volume_context, secrets: req.secrets,
        mountFlags: cap.mountFlags, volumeMountGroup: cap.group, readonly: cap.readonly,
      }, cfg);
      await mounter.withVolumeLock(volumeId, () => mounter.ensureStaged(spec, ctx.signal), ctx.signal);
      return {};
    },

    async NodeUnstageVolume(req: NodeUnstageVolumeRequest, ctx: CallContext): Promise<object> {
      const volumeId = required(req.volume_id, 'volume_id');
      required(req.staging_target_path, 'staging_target_path');
      const staging = await safePath(req.staging_target_path, roots, await readMountTable(), 'staging_target_path');
      await mounter.withVolumeLock(volumeId, () => mounter.unstage(staging, volumeId), ctx.signal);
      return {};
    },

    async NodePublishVolume(req: NodePublishVolumeRequest, ctx: CallContext): Promise<object> {
      const volumeId = required(req.volume_id, 'volume_id');
      required(req.target_path, 'target_path');
      const cap = checkCapability(req.volume_capability);
      if (!req.staging_target_path) {
        throw failedPrecondition('staging_target_path is required: the driver stages volumes (STAGE_UNSTAGE_VOLUME)');
      }
      const table = await readMountTable();
      const target = await safePath(req.target_path, roots, table, 'target_path');
      const staging = await safePath(req.staging_target_path, roots, table, 'staging_target_path');
      const readonly = req.readonly || cap.readonly;
      await mounter.withVolumeLock(volumeId, async () => {
        const rec = await mounter.recordOf(staging);
        if (rec && rec.volumeId !== volumeId) {
          throw failedPrecondition(`${staging} is staged for volume ${rec.volumeId}, not ${volumeId}`);
        }
        await mounter.ensurePublished(target, staging, readonly, volumeId);
      }, ctx.signal);
      return {};
    },

    async NodeUnpublishVolume(req: NodeUnpublishVolumeRequest, ctx: CallContext): Promise<object> {
      const volumeId = required(req.volume_id, 'volume_id');
      required(req.target_path, 'target_path');
      const target = await safePath(req.target_path, roots, await readMountTable(), 'target_path');
      await mounter.withVolumeLock(volumeId, () => mounter.unpublish(target, volumeId), ctx.signal);
      return {};
    },

    async NodeGetVolumeStats(req: NodeGetVolumeStatsRequest): Promise<NodeGetVolumeStatsResponse> {
      const volumeId = required(req.volume_id, 'volume_id');
      required(req.volume_path, 'volume_path');
      let path: string;
      try {
        path = checkPathSyntax(req.volume_path, roots, 'volume_path');
      } catch {
        throw notFound(`volume ${volumeId} is not mounted at ${req.volume_path.slice(0, 256)}`);
      }
      const table = await readMountTable();
      const here = layersAt(table, path);
      const top = here[here.length - 1];
      if (!top) throw notFound(`volume ${volumeId} is not mounted at ${path}`);
      // Which staged volume is this path? Same staging path, or a bind of one of its (old or new) s3fs.
      // kubelet names the staging path in the request: read that one record instead of all of them
      // (this RPC runs for every volume every stats period).
      const isOurs = (r: { volumeId: string; stagingPath: string } | undefined): boolean => !!r && r.volumeId === volumeId
        && (r.stagingPath === path || layersAt(table, r.stagingPath).some((m) => m.device === top.device));
      let rec = req.staging_target_path ? await mounter.recordOf(withoutTrailingSlash(req.staging_target_path)) : undefined;
      if (!isOurs(rec)) rec = (await mounter.staged()).find(isOurs);
      if (!rec) throw notFound(`${path} is not a mount of volume ${volumeId}`);

      const supervision = await mounter.conditionOf(rec.stagingPath);
      const health = await mounter.checkPath(path, table);
      // A dead mount found by kubelet's periodic stats call: recovery repairs it (src/recovery/).
      if (health.state === 'stale' || health.state === 'hung') mounter.events.emit({ kind: 'dead-mount', volumeId, path, stagingPath: rec.stagingPath });
      const usage: VolumeUsage[] = [];
      if (health.state === 'healthy' && health.fs) {
        const f = health.fs;
        usage.push(
          { unit: 'BYTES', total: f.totalBlocks * f.blockSize, available: f.availableBlocks * f.blockSize, used: Math.max(0, (f.totalBlocks - f.freeBlocks) * f.blockSize) },
          { unit: 'INODES', total: f.totalInodes, available: f.freeInodes, used: Math.max(0, f.totalInodes - f.freeInodes) },
        );
      }
      let condition = { abnormal: false, message: 'volume is mounted and s3fs answers' };
      if (health.state !== 'healthy') condition = { abnormal: true, message: health.message };
      if (supervision?.abnormal) condition = { abnormal: true, message: health.state === 'healthy' ? supervision.message : `${supervision.message}; ${health.message}` };
      else if (health.state === 'healthy' && top.device !== layersAt(table, rec.stagingPath).at(-1)?.device) {
        condition = { abnormal: true, message: `${path} shows an older s3fs than the staging path; republish to heal it` };
      }
      return { usage, volume_condition: condition };
    },

    async NodeGetCapabilities(): Promise<object> {
      const types = ['STAGE_UNSTAGE_VOLUME', 'GET_VOLUME_STATS', 'VOLUME_CONDITION', 'VOLUME_MOUNT_GROUP'];
      return { capabilities: types.map((type) => ({ rpc: { type } })) };
    },

    async NodeGetInfo(): Promise<object> {
      return { node_id: cfg.nodeId, max_volumes_per_node: cfg.maxVolumesPerNode };
    },
  } satisfies Partial<PromiseHandlers<NodeHandlers, CallContext>>;
}
