// Loads the vendored CSI v1.12.0 proto once, with the options src/generated/ is generated with
// (src/proto-loader-options.ts): snake_case fields as in the spec, enums as names, int64 as numbers.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath } from '../paths.js';
import type { ProtoGrpcType } from '../generated/csi.js';
import { loaderOptions } from '../proto-loader-options.js';

const definition = protoLoader.loadSync(protoPath, loaderOptions);
// The package's shape as generated from the same proto with the same options.
const pkg = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;

export const services = {
  Identity: pkg.csi.v1.Identity.service,
  Controller: pkg.csi.v1.Controller.service,
  Node: pkg.csi.v1.Node.service,
};

export type ServiceName = keyof typeof services;

/** A generic client of one CSI service on a unix socket (used by the probe, tests and benchmarks). */
export function csiClient(service: ServiceName, socketPath: string, options: grpc.ClientOptions = {}): grpc.Client {
  const Ctor = pkg.csi.v1[service];
  return new Ctor(`unix://${socketPath}`, grpc.credentials.createInsecure(), options);
}

/** Promise form of a unary call on a generic client. */
export function unary<Res>(client: grpc.Client, method: string, request: object, deadlineMs = 30_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, grpc.requestCallback<Res> | undefined>)[method] as unknown as
      | ((req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: grpc.requestCallback<Res>) => void)
      | undefined;
    if (typeof fn !== 'function') {
      reject(new Error(`unknown method ${method}`));
      return;
    }
    fn.call(client, request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => {
      if (err) reject(err);
      else resolve(res as Res);
    });
  });
}
