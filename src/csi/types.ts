// The CSI messages as @grpc/proto-loader presents them (keepCase, enums as names, defaults filled).
// Only the fields the driver reads or writes are typed; the proto is the authority.

export type AccessModeName =
  | 'UNKNOWN' | 'SINGLE_NODE_WRITER' | 'SINGLE_NODE_READER_ONLY' | 'MULTI_NODE_READER_ONLY'
  | 'MULTI_NODE_SINGLE_WRITER' | 'MULTI_NODE_MULTI_WRITER' | 'SINGLE_NODE_SINGLE_WRITER' | 'SINGLE_NODE_MULTI_WRITER';

export interface VolumeCapability {
  block?: Record<string, never> | null;
  mount?: { fs_type: string; mount_flags: string[]; volume_mount_group: string } | null;
  access_mode?: { mode: AccessModeName } | null;
  access_type?: 'block' | 'mount';
}

export type StringMap = Record<string, string>;

export interface CapacityRange {
  required_bytes: number;
  limit_bytes: number;
}

export interface VolumeCondition {
  abnormal: boolean;
  message: string;
}

export interface Volume {
  capacity_bytes: number;
  volume_id: string;
  volume_context: StringMap;
  content_source?: unknown;
  accessible_topology?: unknown[];
}

// Identity
export interface GetPluginInfoResponse {
  name: string;
  vendor_version: string;
  manifest?: StringMap;
}
export interface PluginCapability {
  service?: { type: string };
  volume_expansion?: { type: string };
}
export interface ProbeResponse {
  ready?: { value: boolean } | null;
}

// Controller
export interface CreateVolumeRequest {
  name: string;
  capacity_range?: CapacityRange | null;
  volume_capabilities: VolumeCapability[];
  parameters: StringMap;
  secrets: StringMap;
  volume_content_source?: unknown;
  accessibility_requirements?: unknown;
  mutable_parameters: StringMap;
}
export interface DeleteVolumeRequest {
  volume_id: string;
  secrets: StringMap;
}
export interface ValidateVolumeCapabilitiesRequest {
  volume_id: string;
  volume_context: StringMap;
  volume_capabilities: VolumeCapability[];
  parameters: StringMap;
  secrets: StringMap;
  mutable_parameters: StringMap;
}
export interface ListVolumesRequest {
  max_entries: number;
  starting_token: string;
}
export interface ControllerExpandVolumeRequest {
  volume_id: string;
  capacity_range?: CapacityRange | null;
  secrets: StringMap;
  volume_capability?: VolumeCapability | null;
}
export interface ControllerGetVolumeRequest {
  volume_id: string;
}

// Node
export interface NodeStageVolumeRequest {
  volume_id: string;
  publish_context: StringMap;
  staging_target_path: string;
  volume_capability?: VolumeCapability | null;
  secrets: StringMap;
  volume_context: StringMap;
}
export interface NodeUnstageVolumeRequest {
  volume_id: string;
  staging_target_path: string;
}
export interface NodePublishVolumeRequest {
  volume_id: string;
  publish_context: StringMap;
  staging_target_path: string;
  target_path: string;
  volume_capability?: VolumeCapability | null;
  readonly: boolean;
  secrets: StringMap;
  volume_context: StringMap;
}
export interface NodeUnpublishVolumeRequest {
  volume_id: string;
  target_path: string;
}
export interface NodeGetVolumeStatsRequest {
  volume_id: string;
  volume_path: string;
  staging_target_path: string;
}
export interface VolumeUsage {
  available: number;
  total: number;
  used: number;
  unit: 'UNKNOWN' | 'BYTES' | 'INODES';
}
export interface NodeGetVolumeStatsResponse {
  usage: VolumeUsage[];
  volume_condition?: VolumeCondition;
}
