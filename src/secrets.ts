// Secrets travel as values that refuse to print themselves, and every text leaving the driver
// (log line, error message) can be scrubbed of the secret values a request carried.
import { inspect } from 'node:util';

const REDACTED = '[REDACTED]';

/** A secret string. `String(s)`, JSON and util.inspect all print [REDACTED]; `.reveal()` is explicit. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return REDACTED;
  }
}

/** Field names whose values are secret wherever they appear in a request or object. */
const SECRET_KEY = /secret|password|passwd|token|credential|private|accesskey|access_key/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Keys of a secrets map that say where, not who: scrubbing them would only garble messages. */
const NOT_SECRET_IN_SECRETS = new Set(['endpoint', 'region']);

/**
 * Every value of every `secrets` map in a request (but endpoint/region), plus any string under a secret-like key:
 * the texts that must never leave the process. Values shorter than 4 characters are not scrubbed
 * (they would mangle ordinary words and are not credentials anyone could use).
 */
export function secretValuesOf(obj: unknown, out: Set<string> = new Set(), depth = 0): Set<string> {
  if (depth > 6 || obj === null || typeof obj !== 'object') return out;
  for (const [key, value] of Object.entries(obj as Record<string, unknown>)) {
    if (key === 'secrets' && value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v === 'string' && v.length >= 4 && !NOT_SECRET_IN_SECRETS.has(k)) out.add(v);
      }
    } else if (typeof value === 'string') {
      if (isSecretKey(key) && value.length >= 4) out.add(value);
    } else {
      secretValuesOf(value, out, depth + 1);
    }
  }
  return out;
}

/** Replace every occurrence of any of `values` in `text`. */
export function scrub(text: string, values: Iterable<string>): string {
  let result = text;
  for (const v of values) {
    if (v && result.includes(v)) result = result.split(v).join(REDACTED);
  }
  return result;
}
