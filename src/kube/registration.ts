// Built-in kubelet plugin registration (pluginregistration.v1), so a node pod needs no
// node-driver-registrar sidecar. kubelet's plugin watcher finds `<driver>-reg.sock` in its
// plugins_registry directory, calls GetInfo (and keeps calling it), then tells the plugin whether
// registration worked with NotifyRegistrationStatus. The CSI socket path advertised in GetInfo is the
// one kubelet sees on the host, not the path inside this container.
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../generated/pluginregistration/pluginregistration.js';
import type { PluginInfo } from '../generated/pluginregistration/pluginregistration/PluginInfo.js';
import type { RegistrationHandlers } from '../generated/pluginregistration/pluginregistration/Registration.js';
import type { RegistrationStatus__Output } from '../generated/pluginregistration/pluginregistration/RegistrationStatus.js';
import type { Logger } from '../log.js';
import { packageRoot } from '../paths.js';
import { clearStaleSocket } from '../socket-file.js';

/** The CSI versions kubelet may use with this plugin (kubelet only speaks CSI v1). */
export const SUPPORTED_CSI_VERSIONS = ['1.0.0'];

export interface RegistrationState {
  /** What kubelet last said; undefined until it has called NotifyRegistrationStatus. */
  lastStatus?: { registered: boolean; error: string; at: Date };
  /** GetInfo calls answered so far. */
  infoCalls: number;
  /** Device and inode of the socket file we created: a different file at the path is not ours. */
  socketId?: { dev: number; ino: number };
}

/** GetInfo's answer: a CSI plugin named after the driver, at the socket path kubelet can reach. */
export function pluginInfo(driverName: string, kubeletCsiSocketPath: string): PluginInfo {
  return { type: 'CSIPlugin', name: driverName, endpoint: kubeletCsiSocketPath, supported_versions: SUPPORTED_CSI_VERSIONS };
}

/**
 * Why registration is broken, or undefined when it is not: the socket file kubelet watches is gone
 * or replaced (kubelet has deregistered us and will not find us again), or kubelet refused us. Not
 * having heard from kubelet yet is not a failure: kubelet may be down or slow.
 */
export function registrationProblem(state: RegistrationState, socketNow: { dev: number; ino: number } | undefined, socketPath: string): string | undefined {
  if (!socketNow) return `registration socket ${socketPath} is gone; kubelet cannot find the driver`;
  if (state.socketId && (socketNow.dev !== state.socketId.dev || socketNow.ino !== state.socketId.ino)) {
    return `registration socket ${socketPath} was replaced by another file`;
  }
  if (state.lastStatus && !state.lastStatus.registered) return `kubelet refused the registration: ${state.lastStatus.error || 'no reason given'}`;
  return undefined;
}

export class RegistrationServer {
  readonly state: RegistrationState = { infoCalls: 0 };
  readonly #server = new grpc.Server();
  #listening = false;

  constructor(
    private readonly opts: { socketPath: string; kubeletCsiSocketPath: string; driverName: string; log: Logger; onStatus?: (registered: boolean) => void },
  ) {
    const definition = protoLoader.loadSync(`${packageRoot}/proto/pluginregistration.proto`, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
    const info = pluginInfo(opts.driverName, opts.kubeletCsiSocketPath);
    const handlers: RegistrationHandlers = {
      GetInfo: (_call, callback) => {
        this.state.infoCalls++;
        if (this.state.infoCalls === 1) opts.log.info({ endpoint: info.endpoint, registration_socket: opts.socketPath }, 'kubelet asked for plugin info');
        callback(null, info);
      },
      NotifyRegistrationStatus: (call, callback) => {
        this.#onStatus(call.request);
        callback(null, {});
      },
    };
    this.#server.addService(pkg.pluginregistration.Registration.service, handlers);
  }

  #onStatus(status: RegistrationStatus__Output): void {
    const previous = this.state.lastStatus;
    this.state.lastStatus = { registered: status.plugin_registered, error: status.error, at: new Date() };
    if (status.plugin_registered) {
      if (!previous?.registered) this.opts.log.info({ driver: this.opts.driverName }, 'registered with kubelet');
    } else {
      // kubelet's own reason (e.g. an unsupported version, a name clash); no secret can be in it.
      this.opts.log.error({ driver: this.opts.driverName, reason: status.error }, 'kubelet refused the plugin registration');
    }
    this.opts.onStatus?.(status.plugin_registered);
  }

  async listen(): Promise<void> {
    const path = this.opts.socketPath;
    await mkdir(dirname(path), { recursive: true });
    await clearStaleSocket(path);
    await new Promise<void>((resolve, reject) => {
      this.#server.bindAsync(`unix://${path}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
    const s = await stat(path);
    this.state.socketId = { dev: s.dev, ino: s.ino };
    this.#listening = true;
  }

  /** The health check behind Probe (and so /healthz): a failure reason, or undefined. */
  async problem(): Promise<string | undefined> {
    let now: { dev: number; ino: number } | undefined;
    try {
      const s = await stat(this.opts.socketPath);
      now = { dev: s.dev, ino: s.ino };
    } catch {
      now = undefined;
    }
    return registrationProblem(this.state, now, this.opts.socketPath);
  }

  /** Removes the socket first, so kubelet deregisters the plugin, then stops serving. */
  async close(): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    await this.#removeOwnSocket();
    this.#server.forceShutdown();
  }

  async #removeOwnSocket(): Promise<void> {
    try {
      const s = await stat(this.opts.socketPath);
      if (this.state.socketId && (s.dev !== this.state.socketId.dev || s.ino !== this.state.socketId.ino)) return; // not ours any more
    } catch {
      return;
    }
    await rm(this.opts.socketPath, { force: true });
  }
}
