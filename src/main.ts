// Entry point: `s3fs-csi` serves the driver, `s3fs-csi probe` is the exec liveness probe.
import { buildCli } from './cli.js';
import { type Config, hasController, hasNode } from './config.js';
import { Driver } from './driver.js';
import { controllerService } from './csi/controller.js';
import { nodeService } from './csi/node.js';
import { identityService } from './csi/identity.js';
import { CsiServer, type ServiceHandlers } from './csi/server.js';
import type { ServiceName } from './csi/proto.js';
import { createLogger } from './log.js';
import { checkDirectory, checkFuseDevice, checkS3fsBinary } from './mount/prerequisites.js';
import { Mounter } from './mount/mounter.js';
import { startRecovery } from './recovery/index.js';
import { probeOnce } from './probe/client.js';
import { startHttp } from './probe/http.js';
import { socketPathOf } from './config.js';
import { packageVersion } from './paths.js';

async function serve(cfg: Config): Promise<void> {
  const log = createLogger(cfg.logLevel);
  const driver = new Driver(cfg, log);
  const handlers: Partial<Record<ServiceName, ServiceHandlers>> = { Identity: identityService(driver) };
  if (hasController(cfg)) handlers.Controller = controllerService(driver);
  // One Mounter per process: the Node RPCs and recovery share its per-volume locks and supervision.
  const mounter = hasNode(cfg) ? new Mounter(driver) : undefined;
  if (mounter) handlers.Node = nodeService(driver, mounter);

  if (hasNode(cfg)) {
    driver.addHealthCheck('s3fs', () => checkS3fsBinary(cfg.s3fsPath));
    driver.addHealthCheck('fuse', () => checkFuseDevice());
    driver.addHealthCheck('kubelet-dir', () => checkDirectory(cfg.kubeletDir, 'kubelet directory'));
  }

  // Rebuild lost mounts (start-up, s3fs exits, dead mounts, interval); Probe stays not-ready meanwhile
  // (started before the socket opens, so no Probe can see ready=true before it).
  const recovery = mounter && cfg.recovery.enabled ? startRecovery(driver, mounter) : undefined;
  const server = new CsiServer(driver, handlers);
  await server.listen();
  const http = await startHttp(driver);
  log.info({ version: packageVersion, mode: cfg.mode, endpoint: cfg.socketPath, node: cfg.nodeId, http: cfg.http }, 's3fs-csi serving');

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    recovery?.stop();
    await server.shutdown(cfg.shutdownTimeoutMs);
    await http?.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // A bug in one handler must not take the node's mounts down with the process.
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
}

async function probe(o: { endpoint: string; timeoutMs: number; requireReady: boolean }): Promise<void> {
  let socketPath: string;
  try {
    socketPath = socketPathOf(o.endpoint);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const result = await probeOnce(socketPath, o.timeoutMs);
  if (!result.healthy) {
    process.stderr.write(`${result.reason}\n`);
    process.exit(1);
  }
  if (o.requireReady && !result.ready) {
    process.stderr.write('driver responded but is not ready\n');
    process.exit(1);
  }
  process.exit(0);
}

await buildCli({ serve, probe }).parseAsync(process.argv);
