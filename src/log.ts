// JSON logs with pino. Secret-looking fields are redacted by path, and Secret values print
// themselves as [REDACTED]; request bodies are never logged whole.
import { pino, type Logger } from 'pino';
import { SECRET_KEYS } from './s3/connection.js';

/** The credential keys of a secrets map (endpoint and region are not secret). */
const CREDENTIAL_KEYS = [SECRET_KEYS.accessKeyId, SECRET_KEYS.secretAccessKey, SECRET_KEYS.sessionToken];

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { component: 's3fs-csi' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['secrets', '*.secrets', ...CREDENTIAL_KEYS, ...CREDENTIAL_KEYS.map((k) => `*.${k}`)],
        censor: '[REDACTED]',
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
