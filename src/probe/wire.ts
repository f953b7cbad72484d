// The protobuf wire form of csi.v1.ProbeResponse, read without a proto loader:
//   message ProbeResponse { google.protobuf.BoolValue ready = 1; }
//   message BoolValue { bool value = 1; }
// `ready` absent means ready (CSI spec); a present BoolValue without `value` is false (proto3 default).
// Unknown fields are skipped, as any protobuf reader does, so a newer CSI version still decodes.

export interface ProbeReply {
  /** undefined when the driver did not set the field. */
  ready?: boolean;
}

/** Reads a varint at `pos`; returns [value, next position]. Values above 2^53 lose precision (unused here). */
function varint(buf: Uint8Array, pos: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = pos; i < buf.length && i < pos + 10; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return [value, i + 1];
    scale *= 128;
  }
  throw new Error('malformed protobuf: truncated varint');
}

/** Calls `onField(field, wireType, value | [start, end])` for each top-level field of a message. */
function fields(buf: Uint8Array, onField: (field: number, wire: number, value: number, start: number, end: number) => void): void {
  let pos = 0;
  while (pos < buf.length) {
    const [key, afterKey] = varint(buf, pos);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 0) throw new Error('malformed protobuf: field number 0');
    pos = afterKey;
    switch (wire) {
      case 0: {
        const [v, next] = varint(buf, pos);
        onField(field, wire, v, pos, next);
        pos = next;
        break;
      }
      case 1:
        pos += 8;
        break;
      case 2: {
        const [len, start] = varint(buf, pos);
        const end = start + len;
        if (end > buf.length) throw new Error('malformed protobuf: length past the end');
        onField(field, wire, len, start, end);
        pos = end;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`malformed protobuf: wire type ${wire}`);
    }
    if (pos > buf.length) throw new Error('malformed protobuf: field past the end');
  }
}

export function decodeProbeResponse(buf: Uint8Array): ProbeReply {
  const out: ProbeReply = {};
  fields(buf, (field, wire, _value, start, end) => {
    if (field !== 1 || wire !== 2) return;
    // A repeated occurrence of a message field merges; for BoolValue the last `value` wins.
    let ready = out.ready ?? false;
    fields(buf.subarray(start, end), (f, w, v) => {
      if (f === 1 && w === 0) ready = v !== 0;
    });
    out.ready = ready;
  });
  return out;
}

export type ProbeResult =
  | { healthy: true; ready: boolean }
  | { healthy: false; reason: string };

const CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists',
  'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange',
  'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
];

/** A gRPC status code's name as Go's codes.Code.String() spells it (the sidecar's messages use it). */
export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `Code(${code})`;
}

/** The grpc-timeout header value: at most 8 digits, so long deadlines go in a coarser unit. */
export function grpcTimeout(ms: number): string {
  const n = Math.max(0, Math.ceil(ms));
  if (n < 1e8) return `${n}m`;
  const s = Math.ceil(n / 1000);
  if (s < 1e8) return `${s}S`;
  return `${Math.min(99_999_999, Math.ceil(s / 3600))}H`;
}

/**
 * The one message of a unary gRPC response body: a 5-byte prefix (compressed flag, big-endian length)
 * and the message. Compression is refused: the request offered none (no grpc-accept-encoding).
 */
export function probeReplyFromFrames<T>(body: Buffer, decode: (msg: Uint8Array) => T): T {
  if (body.length < 5) throw new Error(`response of ${body.length} bytes has no gRPC message`);
  if (body[0] !== 0) throw new Error('response message is compressed, which was not offered');
  const len = body.readUInt32BE(1);
  if (5 + len > body.length) throw new Error(`response message of ${len} bytes is cut short at ${body.length - 5}`);
  return decode(body.subarray(5, 5 + len));
}
