// HTTP side of built-in probing (fastify):
//   /healthz  liveness, like kubernetes-csi/livenessprobe: a real Probe through the socket (over one
//             long-lived connection, src/probe/client.ts, where the sidecar dials per request; requests
//             that arrive while a Probe is in flight share its answer). 200 "ok" when healthy. Unlike the sidecar, ready=false (start-up recovery still running) is
//             still 200 here, so a long repair can never put kubelet into a restart loop.
//   /readyz   readiness: 200 only when healthy *and* ready; 500 with the reason otherwise.
//   /metrics  Prometheus text.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Driver } from '../driver.js';
import { ProbeConnection } from './client.js';

// These routes declare no schemas, so fastify's default validator and serializer compilers (ajv and
// fast-json-stringify, ~100 modules it would otherwise load at start-up) are never needed.
const noSchemas = (): never => {
  throw new Error('the probe endpoints use no schemas');
};
const NO_SCHEMAS = { buildValidator: () => noSchemas, buildSerializer: () => noSchemas };

export async function startHttp(driver: Driver): Promise<FastifyInstance | undefined> {
  const { http, socketPath, probeTimeoutMs } = driver.config;
  if (!http) return undefined;
  const app = Fastify({ logger: false, schemaController: { compilersFactory: NO_SCHEMAS } });
  const conn = new ProbeConnection(socketPath);
  app.addHook('onClose', async () => conn.close());

  app.get('/healthz', async (_req, reply) => {
    const result = await conn.probe(probeTimeoutMs);
    if (!result.healthy) {
      driver.log.warn({ reason: result.reason }, 'health check failed');
      return reply.code(500).type('text/plain').send(result.reason);
    }
    return reply.type('text/plain').send(result.ready ? 'ok' : 'ok (starting: not ready yet)');
  });

  app.get('/readyz', async (_req, reply) => {
    const result = await conn.probe(probeTimeoutMs);
    if (!result.healthy) return reply.code(500).type('text/plain').send(result.reason);
    if (!result.ready) {
      const pending = driver.pendingStartupTasks.join(', ');
      // Say why start-up is stuck (e.g. "recovery: API server unreachable ...").
      const why = driver.warnings.length ? `: ${driver.warnings.join('; ')}` : '';
      return reply.code(500).type('text/plain').send(`driver responded but is not ready (${pending || 'starting'})${why}`);
    }
    const warnings = driver.warnings;
    return reply.type('text/plain').send(warnings.length ? `ok (warnings: ${warnings.join('; ')})` : 'ok');
  });

  app.get('/metrics', async (_req, reply) => {
    const body = await driver.metrics.registry.metrics();
    return reply.type(driver.metrics.registry.contentType).send(body);
  });

  await app.listen({ host: http.host, port: http.port });
  return app;
}
