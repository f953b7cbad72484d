// The CSI messages at the gRPC boundary, by their spec names, from the types generated out of
// proto/csi.proto (src/generated/, scripts/proto-types.ts). Requests are the `__Output` forms: what
// @grpc/proto-loader hands a handler with src/proto-loader-options.ts (every field present with its
// default, enums as names, int64 as numbers). Responses are the input forms the proto accepts.
// Nothing here is written by hand but the choice of form.
import type * as grpc from '@grpc/grpc-js';
import type { CapacityRange__Output } from '../generated/csi/v1/CapacityRange.js';
import type { ControllerHandlers } from '../generated/csi/v1/Controller.js';
import type { _csi_v1_ControllerServiceCapability_RPC_Type__Output } from '../generated/csi/v1/ControllerServiceCapability.js';
import type { ControllerExpandVolumeRequest__Output } from '../generated/csi/v1/ControllerExpandVolumeRequest.js';
import type { ControllerGetVolumeRequest__Output } from '../generated/csi/v1/ControllerGetVolumeRequest.js';
import type { CreateVolumeRequest__Output } from '../generated/csi/v1/CreateVolumeRequest.js';
import type { DeleteVolumeRequest__Output } from '../generated/csi/v1/DeleteVolumeRequest.js';
import type { IdentityHandlers } from '../generated/csi/v1/Identity.js';
import type { ListVolumesRequest__Output } from '../generated/csi/v1/ListVolumesRequest.js';
import type { NodeHandlers } from '../generated/csi/v1/Node.js';
import type { NodeGetVolumeStatsRequest__Output } from '../generated/csi/v1/NodeGetVolumeStatsRequest.js';
import type { NodePublishVolumeRequest__Output } from '../generated/csi/v1/NodePublishVolumeRequest.js';
import type { NodeStageVolumeRequest__Output } from '../generated/csi/v1/NodeStageVolumeRequest.js';
import type { NodeUnpublishVolumeRequest__Output } from '../generated/csi/v1/NodeUnpublishVolumeRequest.js';
import type { NodeUnstageVolumeRequest__Output } from '../generated/csi/v1/NodeUnstageVolumeRequest.js';
import type { ProbeResponse__Output } from '../generated/csi/v1/ProbeResponse.js';
import type { ValidateVolumeCapabilitiesRequest__Output } from '../generated/csi/v1/ValidateVolumeCapabilitiesRequest.js';
import type { _csi_v1_VolumeCapability_AccessMode_Mode__Output, VolumeCapability__Output } from '../generated/csi/v1/VolumeCapability.js';

export type { GetPluginInfoResponse } from '../generated/csi/v1/GetPluginInfoResponse.js';
export type { NodeGetVolumeStatsResponse } from '../generated/csi/v1/NodeGetVolumeStatsResponse.js';
export type { PluginCapability } from '../generated/csi/v1/PluginCapability.js';
export type { ProbeResponse } from '../generated/csi/v1/ProbeResponse.js';
export type { Volume } from '../generated/csi/v1/Volume.js';
export type { VolumeCondition } from '../generated/csi/v1/VolumeCondition.js';
export type { VolumeUsage } from '../generated/csi/v1/VolumeUsage.js';

export type StringMap = Record<string, string>;
export type AccessModeName = _csi_v1_VolumeCapability_AccessMode_Mode__Output;
export type VolumeCapability = VolumeCapability__Output;
export type CapacityRange = CapacityRange__Output;
export type ControllerRpcType = _csi_v1_ControllerServiceCapability_RPC_Type__Output;

export type CreateVolumeRequest = CreateVolumeRequest__Output;
export type DeleteVolumeRequest = DeleteVolumeRequest__Output;
export type ValidateVolumeCapabilitiesRequest = ValidateVolumeCapabilitiesRequest__Output;
export type ListVolumesRequest = ListVolumesRequest__Output;
export type ControllerExpandVolumeRequest = ControllerExpandVolumeRequest__Output;
export type ControllerGetVolumeRequest = ControllerGetVolumeRequest__Output;
export type NodeStageVolumeRequest = NodeStageVolumeRequest__Output;
export type NodeUnstageVolumeRequest = NodeUnstageVolumeRequest__Output;
export type NodePublishVolumeRequest = NodePublishVolumeRequest__Output;
export type NodeUnpublishVolumeRequest = NodeUnpublishVolumeRequest__Output;
export type NodeGetVolumeStatsRequest = NodeGetVolumeStatsRequest__Output;
/** A Probe answer as a client receives it. */
export type ProbeReply = ProbeResponse__Output;

/**
 * A generated service's methods in the promise form the driver's handlers take: the request as
 * proto-loader delivers it, the response as the proto accepts it. `ctx` is the server's CallContext.
 */
export type PromiseHandlers<Service, Ctx> = {
  [M in keyof Service as string extends M ? never : M]: Service[M] extends grpc.handleUnaryCall<infer Req, infer Res>
    ? (request: Req, ctx: Ctx) => Promise<Res>
    : never;
};
export type { ControllerHandlers, IdentityHandlers, NodeHandlers };
