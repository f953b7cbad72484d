// Errors are values carrying the gRPC/CSI status code decided where the fact is known; the server
// layer only translates them. Anything else that escapes a handler becomes INTERNAL.
import { status } from '@grpc/grpc-js';

export type Code = status;
export const Code = status;

export class CsiError extends Error {
  readonly code: status;
  constructor(code: status, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CsiError';
    this.code = code;
  }
}

export const invalidArgument = (msg: string): CsiError => new CsiError(status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string): CsiError => new CsiError(status.NOT_FOUND, msg);
export const alreadyExists = (msg: string): CsiError => new CsiError(status.ALREADY_EXISTS, msg);
export const failedPrecondition = (msg: string): CsiError => new CsiError(status.FAILED_PRECONDITION, msg);
export const aborted = (msg: string): CsiError => new CsiError(status.ABORTED, msg);
export const unavailable = (msg: string, cause?: unknown): CsiError => new CsiError(status.UNAVAILABLE, msg, { cause });
export const internal = (msg: string, cause?: unknown): CsiError => new CsiError(status.INTERNAL, msg, { cause });
export const outOfRange = (msg: string): CsiError => new CsiError(status.OUT_OF_RANGE, msg);
export const permissionDenied = (msg: string): CsiError => new CsiError(status.PERMISSION_DENIED, msg);
export const deadlineExceeded = (msg: string): CsiError => new CsiError(status.DEADLINE_EXCEEDED, msg);
export const unimplemented = (what: string): CsiError => new CsiError(status.UNIMPLEMENTED, `${what} is not supported by this driver`);

/** The status name as Go's codes.Code.String() spells it, which the sidecars' metrics use. */
export function codeName(code: status): string {
  const names: Record<number, string> = {
    0: 'OK', 1: 'Canceled', 2: 'Unknown', 3: 'InvalidArgument', 4: 'DeadlineExceeded', 5: 'NotFound',
    6: 'AlreadyExists', 7: 'PermissionDenied', 8: 'ResourceExhausted', 9: 'FailedPrecondition',
    10: 'Aborted', 11: 'OutOfRange', 12: 'Unimplemented', 13: 'Internal', 14: 'Unavailable',
    15: 'DataLoss', 16: 'Unauthenticated',
  };
  return names[code] ?? `Code(${code})`;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
