// CSI Controller service: turns CreateVolume into a bucket (or a prefix in a shared bucket) on S3 and
// back. Volume metadata lives in S3 beside the data (src/s3/metadata.ts), so the controller keeps no
// local state; per-volume locks make concurrent duplicate calls safe within one replica.
import type { Driver } from '../driver.js';
import { Code, CsiError, alreadyExists, failedPrecondition, invalidArgument, notFound, outOfRange, unimplemented } from '../errors.js';
import { faultPoint } from '../faults.js';
import { KeyedMutex } from '../locks.js';
import { S3ClientPool } from '../s3/client.js';
import { type S3Connection, connectionFrom } from '../s3/connection.js';
import { type VolumeRecord, META_DIR, PREFIX_META_DIR, prefixOfMetadataKey } from '../s3/metadata.js';
import { bucketNameFor, prefixNameFor } from '../s3/naming.js';
import { S3Store } from '../s3/store.js';
import { type VolumeLocation, formatVolumeId, parseVolumeId } from '../s3/volume-id.js';
import {
  type VolumeParams, capacityFits, checkRange, capacityFor, parseParameters, recordedParams,
  sameParameters, volumeContext,
} from './controller-params.js';
import { capabilityProblem, requireCapabilities } from './capability.js';
import { pageOf } from './controller-list.js';
import type { CallContext, ServiceHandlers } from './server.js';
import type {
  ControllerExpandVolumeRequest, ControllerGetVolumeRequest, CreateVolumeRequest, DeleteVolumeRequest, ListVolumesRequest,
  StringMap, ValidateVolumeCapabilitiesRequest, Volume as VolumeMessage, VolumeCondition,
  ControllerHandlers, ControllerRpcType, PromiseHandlers,
} from './messages.js';

/** A volume as this controller builds it: the message with the fields it always sets. */
interface Volume extends VolumeMessage {
  volume_id: string;
  capacity_bytes: number;
  volume_context: StringMap;
}

interface ListEntry {
  volume: Volume;
  /** Required by the spec whenever VOLUME_CONDITION is advertised, which it is with LIST_VOLUMES. */
  status: { published_node_ids: string[]; volume_condition: { abnormal: boolean; message: string } };
}

// Listing reads each volume's record, not its data; ControllerGetVolume looks deeper.
const LISTED = { abnormal: false, message: 'volume record present; ControllerGetVolume checks the data' };

/** Parses an id for calls where an id that cannot name a volume simply names no volume. */
function locationOrNotFound(id: string): VolumeLocation {
  try {
    return parseVolumeId(id);
  } catch {
    throw notFound(`volume "${id.slice(0, 140)}" does not exist`);
  }
}

const volumeOf = (loc: VolumeLocation, capacityBytes: number, params: Pick<VolumeParams, 'options' | 'region' | 'endpoint'>): Volume => ({
  volume_id: formatVolumeId(loc),
  capacity_bytes: capacityBytes,
  volume_context: volumeContext(loc, params),
});

const NO_PARAMS = { options: '' };

const UNSUPPORTED = [
  'GetCapacity', 'ControllerPublishVolume', 'ControllerUnpublishVolume', 'CreateSnapshot', 'DeleteSnapshot',
  'ListSnapshots', 'ControllerModifyVolume',
] as const;

export function controllerService(driver: Driver): ServiceHandlers {
  const defaults = driver.config.s3;
  const hasDefaults = Boolean(defaults.accessKeyId && defaults.secretAccessKey);
  const pool = new S3ClientPool();
  const locks = new KeyedMutex();
  const log = driver.log.child({ service: 'controller' });

  const storeOf = (conn: S3Connection, ctx: CallContext): S3Store => new S3Store(pool.get(conn), ctx.signal, pool.tuning.callTimeoutMs);
  const storeFor = (secrets: StringMap | undefined, ctx: CallContext): S3Store => storeOf(connectionFrom(secrets, defaults), ctx);
  /** For calls that carry no secrets (ListVolumes, ControllerGetVolume). */
  const defaultStore = (ctx: CallContext): S3Store => {
    if (!hasDefaults) throw failedPrecondition('no driver-level S3 credentials configured (--s3-secret-dir or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)');
    return storeFor(undefined, ctx);
  };

  /** The volume as found in S3: its record, or undefined for data we did not provision (static). */
  async function findVolume(store: S3Store, loc: VolumeLocation): Promise<VolumeRecord | undefined> {
    const record = await store.readRecord(loc);
    if (record) return record;
    const id = formatVolumeId(loc);
    if ((await store.bucketState(loc.bucket)) === 'missing') throw notFound(`volume "${id}" does not exist (no bucket "${loc.bucket}")`);
    if (loc.prefix) {
      const keys = await store.listKeys(loc.bucket, `${loc.prefix}/`, 1);
      if (!keys || keys.length === 0) throw notFound(`volume "${id}" does not exist (nothing under "${loc.bucket}/${loc.prefix}/")`);
    }
    return undefined;
  }

  function checkExisting(record: VolumeRecord, name: string, params: VolumeParams, req: CreateVolumeRequest): void {
    if (record.name !== name) {
      throw failedPrecondition(`"${record.volumeId}" already holds volume "${record.name.slice(0, 140)}"; cannot create "${name.slice(0, 140)}" there`);
    }
    if (!sameParameters(record.parameters, params.recorded)) {
      throw alreadyExists(`volume "${name}" already exists with different parameters`);
    }
    if (!capacityFits(record.capacityBytes, req.capacity_range)) {
      throw alreadyExists(`volume "${name}" already exists with capacity ${record.capacityBytes} bytes, outside the requested range`);
    }
  }

  const newRecord = (name: string, loc: VolumeLocation, capacityBytes: number, params: VolumeParams): VolumeRecord => {
    const now = new Date().toISOString();
    return {
      version: 1, name, volumeId: formatVolumeId(loc), capacityBytes, parameters: params.recorded,
      reclaimData: params.reclaimData, createdAt: now, updatedAt: now,
    };
  };

  async function createBucketVolume(store: S3Store, conn: S3Connection, name: string, loc: VolumeLocation, params: VolumeParams, req: CreateVolumeRequest): Promise<VolumeRecord> {
    const state = await store.bucketState(loc.bucket);
    if (state === 'missing') {
      await store.createBucket(loc.bucket, conn.region);
      await faultPoint('create-after-bucket');
    } else {
      const record = await store.readRecord(loc);
      if (record) {
        checkExisting(record, name, params, req);
        return record;
      }
      // A bucket without our record: an interrupted create of ours is empty; anything else is not ours.
      const keys = await store.listKeys(loc.bucket, '', 1);
      if (keys && keys.length > 0) {
        throw failedPrecondition(`bucket "${loc.bucket}" already exists with data not provisioned by this driver; use it as a static volume or choose a bucketPrefix`);
      }
    }
    const record = newRecord(name, loc, capacityFor(req.capacity_range), params);
    await store.writeRecord(loc, record);
    await faultPoint('create-after-record');
    log.info({ volume_id: record.volumeId, name, capacity: record.capacityBytes }, 'created bucket volume');
    return record;
  }

  async function createPrefixVolume(store: S3Store, conn: S3Connection, name: string, loc: VolumeLocation, params: VolumeParams, req: CreateVolumeRequest): Promise<VolumeRecord> {
    if ((await store.bucketState(loc.bucket)) === 'missing') await store.createBucket(loc.bucket, conn.region);
    let record = await store.readRecord(loc);
    if (record) {
      checkExisting(record, name, params, req);
    } else {
      const keys = await store.listKeys(loc.bucket, `${loc.prefix}/`, 2);
      if ((keys ?? []).some((k) => k !== `${loc.prefix}/`)) {
        throw failedPrecondition(`prefix "${loc.bucket}/${loc.prefix}/" already holds data not provisioned by this driver`);
      }
      record = newRecord(name, loc, capacityFor(req.capacity_range), params);
      // Record first, marker second: a retry after a crash in between finds the record and re-puts the marker.
      await store.writeRecord(loc, record);
      log.info({ volume_id: record.volumeId, name, capacity: record.capacityBytes }, 'created prefix volume');
    }
    await store.putDirectoryMarker(loc.bucket, loc.prefix);
    return record;
  }

  /** Endpoint/region parameters tell the node where to mount; they must match where we provision. */
  function checkConsistent(params: VolumeParams, conn: S3Connection): void {
    if (params.endpoint !== undefined && params.endpoint !== conn.endpoint) {
      throw invalidArgument(`StorageClass parameter "endpoint" (${params.endpoint}) differs from the endpoint the controller provisions on (${conn.endpoint ?? 'AWS default'}): put the endpoint in the provisioner secret or --s3-endpoint`);
    }
    if (params.region !== undefined && params.region !== conn.region) {
      throw invalidArgument(`StorageClass parameter "region" (${params.region}) differs from the controller's region (${conn.region}): put the region in the provisioner secret or --s3-region`);
    }
  }

  return {
    async ControllerGetCapabilities() {
      const types: ControllerRpcType[] = ['CREATE_DELETE_VOLUME', 'EXPAND_VOLUME', 'SINGLE_NODE_MULTI_WRITER'];
      // Listing and health need S3 access without a request's secrets: only with driver defaults.
      if (hasDefaults) types.push('LIST_VOLUMES', 'GET_VOLUME', 'VOLUME_CONDITION');
      return { capabilities: types.map((type) => ({ rpc: { type } })) };
    },

    async CreateVolume(req: CreateVolumeRequest, ctx: CallContext): Promise<{ volume: Volume }> {
      const name = req.name;
      if (!name) throw invalidArgument('name is required');
      requireCapabilities(req.volume_capabilities);
      if (req.volume_content_source) throw invalidArgument('volume_content_source is not supported (no snapshots or clones)');
      if (req.mutable_parameters && Object.keys(req.mutable_parameters).length > 0) throw invalidArgument('mutable_parameters are not supported');
      const params = parseParameters(req.parameters);
      capacityFor(req.capacity_range); // validates the range before any S3 call
      const loc: VolumeLocation = params.sharedBucket
        ? { bucket: params.sharedBucket, prefix: prefixNameFor(name, params.sharedBucket) }
        : { bucket: bucketNameFor(name, params.bucketPrefix), prefix: '' };
      const conn = connectionFrom(req.secrets, defaults);
      checkConsistent(params, conn);
      const store = storeOf(conn, ctx);
      const record = await locks.run(
        formatVolumeId(loc),
        () => (loc.prefix ? createPrefixVolume(store, conn, name, loc, params, req) : createBucketVolume(store, conn, name, loc, params, req)),
        ctx.signal,
      );
      return { volume: volumeOf(loc, record.capacityBytes, params) };
    },

    async DeleteVolume(req: DeleteVolumeRequest, ctx: CallContext): Promise<object> {
      if (!req.volume_id) throw invalidArgument('volume_id is required');
      let loc: VolumeLocation;
      try {
        loc = parseVolumeId(req.volume_id);
      } catch {
        return {}; // an id that cannot name a volume names no volume: already gone
      }
      const store = storeFor(req.secrets, ctx);
      const id = formatVolumeId(loc);
      await locks.run(id, async () => {
        const record = await store.readRecord(loc);
        if (!record) {
          // Not provisioned by us (static volume, or already deleted): never touch its data. An empty
          // bucket without record is what an interrupted bucket delete leaves behind: finish it.
          if (!loc.prefix && (await store.bucketState(loc.bucket)) === 'exists') {
            const keys = await store.listKeys(loc.bucket, '', 1);
            if (keys && keys.length === 0) await store.deleteBucket(loc.bucket);
          }
          return;
        }
        if (record.reclaimData === 'retain') {
          await store.deleteRecord(loc);
          log.info({ volume_id: id }, 'volume forgotten, data retained (reclaimData=retain)');
          return;
        }
        if (loc.prefix) {
          // The trailing slash keeps "vol1" from matching "vol10/..."; the record goes last so an
          // interrupted delete is retried.
          const n = await store.deleteAll(loc.bucket, `${loc.prefix}/`);
          await store.deleteRecord(loc);
          log.info({ volume_id: id, objects: n }, 'deleted prefix volume');
        } else {
          // Data first, record second, bucket last: an interrupted delete keeps its record and is retried.
          const n = await store.deleteAll(loc.bucket, '', (key) => key.startsWith(META_DIR));
          await faultPoint('delete-after-data');
          await store.deleteAll(loc.bucket, META_DIR);
          await faultPoint('delete-after-record');
          await store.deleteBucket(loc.bucket);
          log.info({ volume_id: id, objects: n }, 'deleted bucket volume');
        }
      }, ctx.signal);
      return {};
    },

    async ValidateVolumeCapabilities(req: ValidateVolumeCapabilitiesRequest, ctx: CallContext): Promise<object> {
      if (!req.volume_id) throw invalidArgument('volume_id is required');
      if (!req.volume_capabilities || req.volume_capabilities.length === 0) throw invalidArgument('volume_capabilities are required');
      const loc = locationOrNotFound(req.volume_id);
      const record = await findVolume(storeFor(req.secrets, ctx), loc);
      for (const cap of req.volume_capabilities) {
        const problem = capabilityProblem(cap);
        if (problem) return { message: problem };
      }
      if (record && req.parameters && Object.keys(req.parameters).length > 0) {
        let given: VolumeParams;
        try {
          given = parseParameters(req.parameters);
        } catch (err) {
          return { message: (err as Error).message };
        }
        if (!sameParameters(given.recorded, record.parameters)) return { message: 'parameters differ from those the volume was created with' };
      }
      return {
        confirmed: {
          volume_context: req.volume_context,
          volume_capabilities: req.volume_capabilities,
          parameters: req.parameters,
          mutable_parameters: req.mutable_parameters,
        },
      };
    },

    async ControllerExpandVolume(req: ControllerExpandVolumeRequest, ctx: CallContext): Promise<object> {
      if (!req.volume_id) throw invalidArgument('volume_id is required');
      if (!req.capacity_range) throw invalidArgument('capacity_range is required');
      const { required, limit } = checkRange(req.capacity_range);
      if (req.volume_capability) {
        const problem = capabilityProblem(req.volume_capability);
        if (problem) throw invalidArgument(problem);
      }
      const loc = locationOrNotFound(req.volume_id);
      const store = storeFor(req.secrets, ctx);
      const capacity = await locks.run(formatVolumeId(loc), async () => {
        const record = await findVolume(store, loc);
        // S3 has no size to grow: a static volume simply has the size asked for; ours records it.
        if (!record) return required;
        const next = Math.max(record.capacityBytes, required);
        if (limit > 0 && next > limit) throw outOfRange(`volume already has ${record.capacityBytes} bytes, above limit_bytes ${limit}`);
        if (next !== record.capacityBytes) {
          await store.writeRecord(loc, { ...record, capacityBytes: next, updatedAt: new Date().toISOString() });
          log.info({ volume_id: record.volumeId, from: record.capacityBytes, to: next }, 'expanded volume');
        }
        return next;
      }, ctx.signal);
      return { capacity_bytes: capacity, node_expansion_required: false };
    },

    async ListVolumes(req: ListVolumesRequest, ctx: CallContext): Promise<{ entries: ListEntry[]; next_token: string }> {
      if (req.max_entries < 0) throw invalidArgument('max_entries must not be negative');
      pageOf([], 0, req.starting_token); // ABORTED for a foreign token before any S3 call
      const store = defaultStore(ctx);
      const buckets = await store.listBuckets();
      const volumes: Volume[] = [];
      const visit = async (bucket: string): Promise<void> => {
        for (const v of await volumesIn(store, bucket)) volumes.push(v);
      };
      // Bounded parallelism: one metadata read and one listing per bucket.
      const queue = [...buckets];
      await Promise.all(Array.from({ length: Math.min(8, queue.length) }, async () => {
        for (let b = queue.shift(); b !== undefined; b = queue.shift()) await visit(b);
      }));
      const { page, nextToken } = pageOf(volumes.map((v) => ({ id: v.volume_id, v })), req.max_entries, req.starting_token);
      return { entries: page.map((p) => ({ volume: p.v, status: { published_node_ids: [], volume_condition: LISTED } })), next_token: nextToken };
    },

    async ControllerGetVolume(req: ControllerGetVolumeRequest, ctx: CallContext): Promise<object> {
      if (!req.volume_id) throw invalidArgument('volume_id is required');
      const loc = locationOrNotFound(req.volume_id);
      const store = defaultStore(ctx);
      const condition = (abnormal: boolean, message: string): { volume_condition: VolumeCondition; published_node_ids: string[] } => ({
        published_node_ids: [],
        volume_condition: { abnormal, message },
      });
      try {
        const record = await findVolume(store, loc);
        if (!record) return { volume: volumeOf(loc, 0, NO_PARAMS), status: condition(false, 'static volume: data present') };
        const volume = volumeOf(loc, record.capacityBytes, recordedParams(record.parameters));
        if (loc.prefix) {
          const keys = await store.listKeys(loc.bucket, `${loc.prefix}/`, 1);
          if (!keys) return { volume, status: condition(true, `bucket "${loc.bucket}" no longer exists`) };
          if (keys.length === 0) return { volume, status: condition(true, `prefix "${loc.bucket}/${loc.prefix}/" no longer exists (deleted outside the driver?)`) };
        }
        return { volume, status: condition(false, 'bucket reachable') };
      } catch (err) {
        // The volume may be fine; we cannot tell. Report it as abnormal rather than failing the call.
        if (err instanceof CsiError && [Code.UNAVAILABLE, Code.PERMISSION_DENIED, Code.UNAUTHENTICATED].includes(err.code)) {
          return { volume: volumeOf(loc, 0, NO_PARAMS), status: condition(true, err.message) };
        }
        throw err;
      }
    },

    // Not offered, and not advertised: GetCapacity (S3 has no capacity to report truthfully),
    // ControllerPublish (nothing to attach), snapshots (no point-in-time copy of a bucket),
    // ControllerModifyVolume (no mutable parameters). README "Conformance" says why.
    ...Object.fromEntries(UNSUPPORTED.map((method) => [method, async (): Promise<object> => {
      throw unimplemented(method);
    }])),
  } satisfies Partial<PromiseHandlers<ControllerHandlers, CallContext>>;

  /** Volumes recorded in one bucket: its own record and the records of prefixes inside it. */
  async function volumesIn(store: S3Store, bucket: string): Promise<Volume[]> {
    const out: Volume[] = [];
    const add = async (loc: VolumeLocation): Promise<void> => {
      try {
        const record = await store.readRecord(loc);
        if (record) out.push(volumeOf(loc, record.capacityBytes, recordedParams(record.parameters)));
      } catch (err) {
        if (err instanceof CsiError && (err.code === Code.UNAVAILABLE || err.code === Code.DEADLINE_EXCEEDED)) throw err;
        log.debug({ bucket, err: (err as Error).message }, 'skipping unreadable volume record');
      }
    };
    try {
      await add({ bucket, prefix: '' });
      for await (const key of store.allKeys(bucket, PREFIX_META_DIR)) {
        const prefix = prefixOfMetadataKey(key);
        if (!prefix) continue;
        let loc: VolumeLocation;
        try {
          loc = parseVolumeId(`${bucket}/${prefix}`);
        } catch {
          continue;
        }
        await add(loc);
      }
    } catch (err) {
      if (err instanceof CsiError && (err.code === Code.UNAVAILABLE || err.code === Code.DEADLINE_EXCEEDED)) throw err;
      log.debug({ bucket, err: (err as Error).message }, 'skipping unreadable bucket');
    }
    return out;
  }
}
