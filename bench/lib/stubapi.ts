// A stand-in Kubernetes API for the footprint section: HTTPS with a throw-away self-signed certificate
// (as in-cluster access is), answering the node plugin's start-up read — the pods on its node — with
// an empty list (a node with no volumes), so recovery really loads @kubernetes/client-node, reads the
// API and finishes its start-up scan. Everything else is 404 (nothing else is read for an empty node).
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { kubeconfigYaml } from '../../test/harness/kube.js';

const run = promisify(execFile);

export interface StubApi {
  kubeconfig: string;
  /** Requests answered so far. */
  requests: () => number;
  close: () => Promise<void>;
}

export async function startStubApi(dir: string): Promise<StubApi> {
  const key = join(dir, 'stub-api.key');
  const cert = join(dir, 'stub-api.crt');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert]);
  const certPem = await readFile(cert, 'utf8');
  let n = 0;
  const server = createServer({ key: await readFile(key), cert: certPem }, (req, res) => {
    n++;
    res.setHeader('content-type', 'application/json');
    if (req.method === 'GET' && req.url?.startsWith('/api/v1/pods')) {
      res.end(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: [] }));
      return;
    }
    res.statusCode = 404;
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: 'not found' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const kubeconfig = join(dir, 'stub-api.kubeconfig');
  await writeFile(kubeconfig, kubeconfigYaml({ server: `https://127.0.0.1:${port}`, caPem: certPem, user: 'node', token: 'stub' }));
  return {
    kubeconfig,
    requests: () => n,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
