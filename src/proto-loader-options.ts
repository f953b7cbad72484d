// How every vendored proto (proto/*.proto) is loaded at run time. One object for the loaders and for
// scripts/proto-types.ts, which generates src/generated/ with the same options, so the generated types
// describe exactly what a handler receives: snake_case field names as in the proto, enums as their
// names, int64 as JS numbers (exact below 2^53, far above any capacity a PVC can ask for), every
// field filled with its default, and the name of the set member of each oneof.
import type { Options } from '@grpc/proto-loader';

export const loaderOptions = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
} as const satisfies Options;
