// A KubeConfig whose API requests share connections. @kubernetes/client-node 2.0 builds a new undici
// Agent (a connection pool) in KubeConfig.applySecurityAuthentication, which runs for every request:
// every API call then opens its own TLS connection, with a new TLS context and handshake, on both
// ends. A start-up scan of 100 volumes makes ~200 reads; a CPU profile of the node plugin during one
// showed most of its time in connection set-up (docs/bench.md). This subclass keeps the pool of the
// first request and hands it to the next ones for as long as the TLS material it was built from is
// the same (the same CA, client certificate and key, by value or by file and modification time), so
// connections are kept alive and reused as client-go does. Headers (the bearer token, which
// client-node re-reads and refreshes) are still applied to every request by client-node itself.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { KubeConfig, type RequestContext } from '@kubernetes/client-node';

type Pool = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/** A file's identity for the cache key: its path and modification time (a rotated file differs). */
const fileStamp = async (path: string | undefined): Promise<string> => (path ? `${path}@${(await stat(path).catch(() => undefined))?.mtimeMs ?? 'missing'}` : '');

export class PooledKubeConfig extends KubeConfig {
  #pool: { identity: string; dispatcher: Pool } | undefined;

  /**
   * What the TLS side of a request is built from (no I/O but the file stamps), as a digest: the
   * client key's data is part of it and is not kept in another string.
   */
  async #tlsIdentity(): Promise<string> {
    const c = this.getCurrentCluster();
    const u = this.getCurrentUser();
    const material = JSON.stringify([
      c?.server, c?.caData, await fileStamp(c?.caFile), c?.skipTLSVerify, c?.tlsServerName, c?.proxyUrl,
      u?.certData, await fileStamp(u?.certFile), u?.keyData, await fileStamp(u?.keyFile),
    ]);
    return createHash('sha256').update(material).digest('hex');
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    if (!fresh) return; // no TLS material of its own: fetch's global pool, which keeps connections already
    const identity = await this.#tlsIdentity();
    if (this.#pool?.identity === identity) {
      context.setDispatcher(this.#pool.dispatcher); // the fresh pool never connected: nothing to close
      return;
    }
    const old = this.#pool;
    this.#pool = { identity, dispatcher: fresh };
    // Requests still running on the old pool finish first (close waits for them).
    void old?.dispatcher.close().catch(() => undefined);
  }
}
