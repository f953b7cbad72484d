// A TCP proxy on 127.0.0.1 in front of a real server (the S3 server in the fault tests), whose
// behaviour a test switches while clients use it:
//   pass     forward bytes both ways
//   delay    forward, but hold each chunk `delayMs` first (a slow or distant server)
//   error    answer every HTTP request with `503 SlowDown` (an S3 server returning errors)
//   hang     accept connections and never answer (a server that stopped responding)
//   refuse   stop listening: connection refused (a server that is down)
// Switching mode also ends the connections opened under the previous one, so a client's pooled
// keep-alive connection cannot carry on under the old behaviour.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export type ProxyMode = 'pass' | 'delay' | 'error' | 'hang' | 'refuse';

export interface TcpProxy {
  port: number;
  endpoint: string;
  readonly mode: ProxyMode;
  setMode(mode: ProxyMode, opts?: { delayMs?: number }): Promise<void>;
  /** Connections accepted since start (all modes). */
  readonly accepted: number;
  close(): Promise<void>;
}

const S3_ERROR_BODY =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>injected by the test proxy</Message></Error>';
const S3_ERROR_RESPONSE =
  `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(S3_ERROR_BODY)}\r\n` +
  `Connection: close\r\n\r\n${S3_ERROR_BODY}`;

export async function startProxy(target: { host?: string; port: number }, port = 0): Promise<TcpProxy> {
  const host = target.host ?? '127.0.0.1';
  let mode: ProxyMode = 'pass';
  let delayMs = 0;
  let accepted = 0;
  const open = new Set<Socket>();
  let server: Server | undefined;

  const track = (s: Socket): void => {
    open.add(s);
    s.once('close', () => open.delete(s));
    s.on('error', () => s.destroy());
  };

  const onConnection = (client: Socket): void => {
    accepted++;
    track(client);
    const m = mode;
    if (m === 'hang') return; // hold it open, read nothing back
    if (m === 'error') {
      // Answer once the request head has arrived, then close.
      client.once('data', () => client.end(S3_ERROR_RESPONSE));
      return;
    }
    const upstream = connect(target.port, host);
    track(upstream);
    if (m === 'pass') {
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      return;
    }
    // delay: forward each chunk after delayMs, keeping order per direction; a side that closes
    // closes the other only after what it sent has been delivered.
    const relay = (from: Socket, to: Socket): void => {
      let chain = Promise.resolve();
      from.on('data', (chunk: Buffer) => {
        chain = chain.then(async () => {
          await sleep(delayMs);
          if (!to.destroyed) to.write(chunk);
        });
      });
      from.on('close', () => void chain.then(() => to.end()));
    };
    relay(client, upstream);
    relay(upstream, client);
  };

  const listen = (p: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const srv = createServer(onConnection);
      srv.once('error', reject);
      srv.listen(p, '127.0.0.1', () => {
        server = srv;
        const addr = srv.address();
        resolve(typeof addr === 'object' && addr ? addr.port : p);
      });
    });
  const unlisten = async (): Promise<void> => {
    const srv = server;
    server = undefined;
    if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
  };
  const dropConnections = (): void => {
    for (const s of open) s.destroy();
    open.clear();
  };

  const boundPort = await listen(port);
  const proxy: TcpProxy = {
    port: boundPort,
    endpoint: `http://127.0.0.1:${boundPort}`,
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    async setMode(next, opts = {}) {
      delayMs = opts.delayMs ?? delayMs;
      const wasRefusing = mode === 'refuse';
      mode = next;
      dropConnections();
      // Let clients see the close of their pooled connections before the next request.
      await sleep(100);
      if (next === 'refuse') {
        await unlisten();
      } else if (wasRefusing) {
        // Re-listen on the same port; retry briefly in case the kernel still holds it.
        for (let i = 0; ; i++) {
          try {
            await listen(boundPort);
            break;
          } catch (err) {
            if (i > 50) throw err;
            await sleep(100);
          }
        }
      }
    },
    async close() {
      dropConnections();
      await unlisten();
    },
  };
  return proxy;
}
