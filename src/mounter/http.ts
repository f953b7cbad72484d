// The mounter's HTTP endpoint:
//   /healthz  200 only when its own gRPC service answers a Hello over its socket (a wedged event loop
//             or a lost socket fails it): the container's liveness probe.
//   /readyz   /healthz plus the prerequisites of mounting (s3fs binary, /dev/fuse, s3fs-csi-mount, kubelet dir).
//   /metrics  Prometheus text: s3fs processes and exits, calls served, event stream subscribers.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Driver } from '../driver.js';
import { errorMessage } from '../errors.js';
import { API_VERSION, type MounterHello } from './protocol.js';
import { mounterClient } from './proto.js';
import { type WireHello, helloFromWire } from './wire.js';
import { packageVersion } from '../paths.js';

/** One Hello on a fresh connection (as a client would make it). */
export function helloOnce(socketPath: string, timeoutMs: number): Promise<MounterHello> {
  const client = mounterClient(socketPath, { 'grpc.enable_retries': 0 });
  return new Promise<MounterHello>((resolve, reject) => {
    const hello = (client as unknown as { Hello(req: object, opts: { deadline: number }, cb: (err: Error | null, res?: WireHello) => void): void }).Hello;
    hello.call(client, { client_version: packageVersion, api_version: API_VERSION }, { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(helloFromWire(res));
    });
  });
}

export async function startMounterHttp(driver: Driver, socketPath: string): Promise<FastifyInstance | undefined> {
  const { http, probeTimeoutMs } = driver.config;
  if (!http) return undefined;
  const app = Fastify({ logger: false });
  const live = async (): Promise<string | undefined> => {
    try {
      await helloOnce(socketPath, probeTimeoutMs);
      return undefined;
    } catch (err) {
      return `mounter service does not answer on ${socketPath}: ${errorMessage(err)}`;
    }
  };
  app.get('/healthz', async (_req, reply) => {
    const problem = await live();
    if (problem) {
      driver.log.warn({ reason: problem }, 'health check failed');
      return reply.code(500).type('text/plain').send(problem);
    }
    return reply.type('text/plain').send('ok');
  });
  app.get('/readyz', async (_req, reply) => {
    const problems = [await live(), ...(await driver.unhealthyReasons())].filter((p): p is string => p !== undefined);
    if (problems.length) return reply.code(500).type('text/plain').send(problems.join('; '));
    return reply.type('text/plain').send('ok');
  });
  app.get('/metrics', async (_req, reply) => reply.type(driver.metrics.registry.contentType).send(await driver.metrics.registry.metrics()));
  await app.listen({ host: http.host, port: http.port });
  return app;
}
