// ListVolumes paging. The token names the last volume id of the previous page, so paging survives
// volumes being added or deleted between pages and any replica can continue a listing it did not
// start. A token of any other shape was not issued by us: ABORTED, as the spec asks.
import { aborted } from '../errors.js';
import { parseVolumeId } from '../s3/volume-id.js';

const TOKEN_PREFIX = 'v1.';

export function encodeToken(lastVolumeId: string): string {
  return TOKEN_PREFIX + Buffer.from(lastVolumeId, 'utf8').toString('base64url');
}

export function decodeToken(token: string): string {
  const fail = () => aborted(`starting_token "${token.slice(0, 64)}" was not issued by this driver`);
  if (!token.startsWith(TOKEN_PREFIX)) throw fail();
  const body = token.slice(TOKEN_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw fail();
  const id = Buffer.from(body, 'base64url').toString('utf8');
  try {
    parseVolumeId(id);
  } catch {
    throw fail();
  }
  return id;
}

/** One page of `items` (sorted by id) after the token's id. */
export function pageOf<T extends { id: string }>(items: T[], maxEntries: number, startingToken: string): { page: T[]; nextToken: string } {
  const after = startingToken ? decodeToken(startingToken) : undefined;
  const sorted = [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const rest = after === undefined ? sorted : sorted.filter((i) => i.id > after);
  if (maxEntries <= 0 || rest.length <= maxEntries) return { page: rest, nextToken: '' };
  const page = rest.slice(0, maxEntries);
  return { page, nextToken: encodeToken(page[page.length - 1]!.id) };
}
