// `s3fs-csi` serving: builds the Driver for the configured roles, opens the socket and the HTTP
// probe endpoints, starts recovery on nodes, and shuts down cleanly on SIGTERM/SIGINT.
import { type Config, hasController, hasNode } from './config.js';
import { Driver } from './driver.js';
import { identityService } from './csi/identity.js';
import { CsiServer, type ServiceHandlers } from './csi/server.js';
import type { ServiceName } from './csi/proto.js';
import { createLogger } from './log.js';
import type { MountEngine } from './mount/engine.js';
import { checkDirectory, checkFuseDevice, checkS3fsBinary } from './mount/prerequisites.js';
import { startHttp } from './probe/http.js';
import { packageVersion } from './paths.js';
import type { RegistrationServer } from './kube/registration.js';

/** Serves kubelet's plugin registration socket; its breakage fails Probe (and so /healthz). */
async function startRegistration(driver: Driver, where: NonNullable<Config['registration']>): Promise<RegistrationServer> {
  const { RegistrationServer: Server } = await import('./kube/registration.js');
  const reg = new Server({
    ...where, driverName: driver.config.driverName, log: driver.log,
    onStatus: (ok) => driver.metrics.kubeletRegistered.set(ok ? 1 : 0),
  });
  await reg.listen();
  driver.addHealthCheck('registration', () => reg.problem());
  return reg;
}

export async function serve(cfg: Config): Promise<void> {
  if (cfg.mode === 'mounter') return (await import('./mounter/serve.js')).serveMounter(cfg);
  const log = createLogger(cfg.logLevel);
  const driver = new Driver(cfg, log);
  const handlers: Partial<Record<ServiceName, ServiceHandlers>> = { Identity: identityService(driver) };
  // Each role loads only its own code: a node pod never loads the S3 SDK, a controller never s3fs code.
  if (hasController(cfg)) handlers.Controller = (await import('./csi/controller.js')).controllerService(driver);
  // One mount engine per process: the Node RPCs and recovery share its per-volume locks and events.
  // With --mounter-endpoint, s3fs runs in the separate mounter and survives this process's restarts.
  const remote = hasNode(cfg) && cfg.mounterSocketPath ? new (await import('./mounter/client.js')).RemoteMounter(driver, cfg.mounterSocketPath) : undefined;
  const local = !remote && hasNode(cfg) ? new (await import('./mount/mounter.js')).Mounter(driver) : undefined;
  const mounter: MountEngine | undefined = remote ?? local;
  if (mounter) handlers.Node = (await import('./csi/node.js')).nodeService(driver, mounter);

  if (hasNode(cfg)) {
    if (remote) {
      driver.addHealthCheck('mounter', async () => remote.problem());
    } else {
      driver.addHealthCheck('s3fs', () => checkS3fsBinary(cfg.s3fsPath));
      driver.addHealthCheck('fuse', () => checkFuseDevice());
    }
    driver.addHealthCheck('kubelet-dir', () => checkDirectory(cfg.kubeletDir, 'kubelet directory'));
  }

  // Rebuild lost mounts (start-up, s3fs exits, dead mounts, interval); Probe stays not-ready meanwhile
  // (started before the socket opens, so no Probe can see ready=true before it).
  const recovery = mounter && cfg.recovery.enabled ? (await import('./recovery/index.js')).startRecovery(driver, mounter) : undefined;
  // Connect after recovery subscribed, so it sees the first `mounter-connected`.
  remote?.start();
  const server = new CsiServer(driver, handlers);
  await server.listen();
  const http = await startHttp(driver);
  // Registration last: kubelet calls NodeGetInfo as soon as it sees the registration socket.
  const registration = hasNode(cfg) && cfg.registration ? await startRegistration(driver, cfg.registration) : undefined;
  log.info({ version: packageVersion, mode: cfg.mode, endpoint: cfg.socketPath, mounter: cfg.mounterSocketPath ?? 'in-process', node: cfg.nodeId, http: cfg.http }, 's3fs-csi serving');

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // Socket gone first: kubelet deregisters the plugin instead of calling a driver that is leaving.
    await registration?.close();
    await Promise.all([recovery?.stop(), server.shutdown(cfg.shutdownTimeoutMs)]);
    if (remote) {
      // Only the connection: the mounter's s3fs keep serving the pods while this process is away.
      remote.stop();
    } else if (local && cfg.s3fsOnExit === 'stop') {
      // This process owns the s3fs processes (in-process node mode): the container's end would SIGKILL
      // them with writes not yet uploaded, so stop them gracefully first (unless told to keep them).
      await local.shutdown(cfg.s3fsStopGraceMs);
    }
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
