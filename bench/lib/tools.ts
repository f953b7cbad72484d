// The peers' binaries (scripts/install-tools.sh peers), beside the harness's tool paths.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tools } from '../../test/harness/tools.js';

const toolsDir = process.env.S3FS_CSI_TOOLS_DIR ?? join(tools.versitygw, '..', '..');

export interface LivenessProbePeer {
  bin: string;
  label: string;
  /** true: our csi-lib-utils stand-in, because the module proxy does not serve the sidecar. */
  standIn: boolean;
}

export function livenessProbePeer(): LivenessProbePeer | undefined {
  const real = process.env.LIVENESSPROBE_BIN ?? join(toolsDir, 'livenessprobe-v2.19.0', 'livenessprobe');
  if (existsSync(real)) return { bin: real, label: 'livenessprobe v2.19.0', standIn: false };
  const standIn = process.env.LIVENESSPROBE_STANDIN_BIN ?? join(toolsDir, 'livenessprobe-standin-csi-lib-utils-v0.25.0', 'livenessprobe');
  if (existsSync(standIn)) return { bin: standIn, label: 'livenessprobe-equivalent*', standIn: true };
  return undefined;
}

export function grpcurlBin(): string | undefined {
  const p = process.env.GRPCURL_BIN ?? join(toolsDir, 'grpcurl-v1.9.3', 'grpcurl');
  return existsSync(p) ? p : undefined;
}
