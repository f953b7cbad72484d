// Certificates of a single test node, made with openssl: one CA that signs the kubelet's client
// certificate (system:node:<name>, group system:nodes: the Node authorizer and NodeRestriction treat
// it as that node) and the API server's client certificate towards kubelets (group system:masters:
// logs, exec and the stats summary are authorized through kubelet's webhook).
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ClientCert {
  cert: string;
  key: string;
}

export interface NodePki {
  caCert: string;
  caKey: string;
  kubelet: ClientCert;
  apiserverKubeletClient: ClientCert;
}

/** Subject line for openssl: CN and (optional) organisations, i.e. Kubernetes user and groups. */
export function subjectOf(cn: string, groups: readonly string[] = []): string {
  const esc = (v: string): string => v.replace(/[/\\,=+]/g, (c) => `\\${c}`);
  return `${groups.map((g) => `/O=${esc(g)}`).join('')}/CN=${esc(cn)}`;
}

async function clientCert(dir: string, name: string, subject: string, ca: { cert: string; key: string }): Promise<ClientCert> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', subject]);
  await writeFile(ext, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  return { cert, key };
}

export async function makeNodePki(dir: string, nodeName: string): Promise<NodePki> {
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.crt');
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', caKey, '-out', caCert,
    '-days', '2', '-subj', '/CN=s3fs-csi-e2e-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const ca = { cert: caCert, key: caKey };
  return {
    caCert,
    caKey,
    kubelet: await clientCert(dir, 'kubelet-client', subjectOf(`system:node:${nodeName}`, ['system:nodes']), ca),
    apiserverKubeletClient: await clientCert(dir, 'apiserver-kubelet-client', subjectOf('kube-apiserver-kubelet-client', ['system:masters']), ca),
  };
}
