// `s3fs-csi` serving: builds the Driver for the configured roles, opens the socket and the HTTP
// probe endpoints, starts recovery on nodes, and shuts down cleanly on SIGTERM/SIGINT.
import { setTimeout as sleep } from 'node:timers/promises';
import { type Config, hasController, hasNode } from './config.js';
import { Driver } from './driver.js';
import { identityService } from './csi/identity.js';
import { CsiServer } from './csi/server.js';
import { createLogger } from './log.js';
import type { MountEngine } from './mount/engine.js';
import { packageVersion } from './paths.js';
import type { RegistrationServer } from './kube/registration.js';

/** How long the freshly opened socket gets to serve early clients before the rest loads. */
const LISTEN_GRACE_MS = 10;
/** One turn of the event loop: pending socket I/O is served between two module groups. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

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
  // The socket opens first, with only what Identity needs loaded: GetPluginInfo answers (and Probe,
  // ready=false) while the rest loads; Probe turns ready only once everything below has started.
  const starting = driver.beginStartupTask('starting');
  const server = new CsiServer(driver, { Identity: identityService(driver) });
  // The other services are registered now (their calls wait for their code) and load once the socket
  // is open, so that loading never delays it.
  const open = Promise.withResolvers<void>();
  // Every service answers (recovery loads the Kubernetes client only then).
  const served = Promise.withResolvers<void>();
  const afterOpen = open.promise;
  // Each role loads only its own code: a node pod never loads the S3 SDK, a controller never s3fs code.
  const controller = hasController(cfg) ? afterOpen.then(() => import('./csi/controller.js')).then((m) => m.controllerService(driver)) : undefined;
  if (controller) server.serveWhenLoaded('Controller', controller);
  // The Node service needs the mount engine, which is made below, after the socket opened.
  const engine = Promise.withResolvers<MountEngine>();
  const node = hasNode(cfg)
    ? Promise.all([afterOpen.then(() => import('./csi/node.js')), engine.promise]).then(([m, mounter]) => m.nodeService(driver, mounter))
    : undefined;
  if (node) server.serveWhenLoaded('Node', node);
  await server.listen();
  // Loading a module group blocks the event loop until it is evaluated, so a client that connected at
  // once (a registrar sidecar, a probe) would wait for all of them: give it a moment first, and a
  // turn of the event loop between groups below.
  await sleep(LISTEN_GRACE_MS);
  open.resolve();

  let loaded: Awaited<ReturnType<typeof startRest>>;
  try {
    loaded = await startRest();
  } catch (err) {
    log.fatal({ err }, 'start-up failed');
    process.exit(1);
  }
  const { remote, local, recovery, http, registration } = loaded;
  starting();
  served.resolve();
  log.info({ version: packageVersion, mode: cfg.mode, endpoint: cfg.socketPath, mounter: cfg.mounterSocketPath ?? 'in-process', node: cfg.nodeId, http: cfg.http }, 's3fs-csi serving');

  async function startRest() {
    if (controller) await controller;
    await turn();
    // One mount engine per process: the Node RPCs and recovery share its per-volume locks and events.
    // With --mounter-endpoint, s3fs runs in the separate mounter and survives this process's restarts.
    const remote = hasNode(cfg) && cfg.mounterSocketPath ? new (await import('./mounter/client.js')).RemoteMounter(driver, cfg.mounterSocketPath) : undefined;
    const local = !remote && hasNode(cfg) ? new (await import('./mount/mounter.js')).Mounter(driver) : undefined;
    local?.warmUp();
    const mounter: MountEngine | undefined = remote ?? local;
    await turn();
    if (hasNode(cfg)) {
      const { checkDirectory, checkFuseDevice, checkMountHelper, checkS3fsBinary } = await import('./mount/prerequisites.js');
      if (remote) {
        driver.addHealthCheck('mounter', async () => remote.problem());
      } else {
        driver.addHealthCheck('s3fs', () => checkS3fsBinary(cfg.s3fsPath));
        driver.addHealthCheck('fuse', () => checkFuseDevice());
        driver.addHealthCheck('mount-helper', () => checkMountHelper());
      }
      driver.addHealthCheck('kubelet-dir', () => checkDirectory(cfg.kubeletDir, 'kubelet directory'));
    }
    // Rebuild lost mounts (start-up, s3fs exits, dead mounts, interval); Probe stays not-ready meanwhile
    // (recovery's own start-up task is taken before `starting` ends, so no Probe sees ready=true early).
    await turn();
    const recovery = mounter && cfg.recovery.enabled ? (await import('./recovery/index.js')).startRecovery(driver, mounter, served.promise) : undefined;
    // Connect after recovery subscribed, so it sees the first `mounter-connected`.
    remote?.start();
    if (mounter) {
      engine.resolve(mounter);
      await node;
    }
    await turn();
    const http = cfg.http ? await (await import('./probe/http.js')).startHttp(driver) : undefined;
    await turn();
    // Registration last: kubelet calls NodeGetInfo as soon as it sees the registration socket.
    const registration = hasNode(cfg) && cfg.registration ? await startRegistration(driver, cfg.registration) : undefined;
    return { remote, local, recovery, http, registration };
  }

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
