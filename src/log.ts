// JSON logs with pino. Secret-looking fields are redacted by path, and Secret values print
// themselves as [REDACTED]; request bodies are never logged whole.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { component: 's3fs-csi' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['secrets', '*.secrets', 'secretAccessKey', 'accessKeyID', 'sessionToken', '*.secretAccessKey', '*.accessKeyID', '*.sessionToken'],
        censor: '[REDACTED]',
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
