// A volume's Secret as recovery reads it, with the reason it could not be used as a typed fact
// (SecretError.problem), so the Events and warnings built from it never have to parse message text.
import type { Config } from '../config.js';
import { KubeError, type KubeReader } from '../kube/reader.js';
import { connectionFrom } from '../s3/connection.js';
import type { DesiredVolume } from './cluster.js';

/**
 *   missing     the Secret does not exist
 *   invalid     it exists but cannot give S3 credentials (a key missing or malformed)
 *   forbidden   RBAC denies reading it (the message names the rule)
 *   unavailable the API did not answer, or no API access is configured
 */
export type SecretProblem = 'missing' | 'invalid' | 'forbidden' | 'unavailable';

export class SecretError extends Error {
  constructor(
    readonly problem: SecretProblem,
    /** "namespace/name" */
    readonly secret: string,
    message: string,
  ) {
    super(message);
    this.name = 'SecretError';
  }
}

/** Reads of Secrets made during one plan, by "namespace/name": each Secret is read once per plan. */
export type SecretReads = Map<string, Promise<Record<string, string> | undefined>>;

/**
 * Secret data for a volume (undefined: it names none, the driver's defaults apply); throws SecretError.
 * `reads`: the plan's reads so far; a Secret already asked for is not asked again (however many volumes use it).
 */
export async function secretsFor(vol: DesiredVolume, reader: KubeReader | undefined, cfg: Pick<Config, 's3'>, reads?: SecretReads): Promise<Record<string, string> | undefined> {
  const ref = vol.secretRef;
  if (!ref) return undefined;
  const id = `${ref.namespace}/${ref.name}`;
  if (!reader) throw new SecretError('unavailable', id, `volume ${vol.volumeHandle} needs Secret ${id} but no API access is configured`);
  let data: Record<string, string> | undefined;
  try {
    let read = reads?.get(id);
    if (!read) {
      read = reader.getSecretData(ref.namespace, ref.name);
      reads?.set(id, read);
    }
    data = await read;
  } catch (err) {
    const kind = err instanceof KubeError && err.kind === 'forbidden' ? 'forbidden' : 'unavailable';
    throw new SecretError(kind, id, (err as Error).message);
  }
  if (!data) throw new SecretError('missing', id, `Secret ${id} (${ref.source}) of volume ${vol.volumeHandle} not found`);
  try {
    // The driver's defaults are valid by construction: a failure here is about the Secret's contents.
    connectionFrom(data, cfg.s3);
  } catch (err) {
    throw new SecretError('invalid', id, `Secret ${id} (${ref.source}) of volume ${vol.volumeHandle} is unusable: ${(err as Error).message}`);
  }
  return data;
}
