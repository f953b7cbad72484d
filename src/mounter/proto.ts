// Loads proto/mounter.proto (our own API between the node plugin and the mounter) with the same
// loader options as csi.proto: snake_case fields, strings for enums, defaults filled in.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { loaderOptions } from '../proto-loader-options.js';
import type { ProtoGrpcType } from '../generated/mounter.js';
import { packageRoot } from '../paths.js';

export const mounterProtoPath = join(packageRoot, 'proto', 'mounter.proto');

const definition = protoLoader.loadSync(mounterProtoPath, loaderOptions);
const pkg = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;

export const MounterService = pkg.s3fscsi.mounter.v1.Mounter;
export const mounterServiceDefinition = MounterService.service;

export function mounterClient(socketPath: string, options: grpc.ClientOptions = {}): grpc.Client {
  return new MounterService(`unix://${socketPath}`, grpc.credentials.createInsecure(), options);
}
