// Fault injection points for the reliability tests. Inert unless the process was started with
// S3FS_CSI_FAULTS_FILE pointing at a file; production deployments never set it. The file holds
// lines `point=action` and is re-read at every hit, so a test can change faults while the driver runs.
//   actions: kill (SIGKILL self), hang (wait until the call is cancelled), error, delay:<ms>
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const faultsFile = process.env.S3FS_CSI_FAULTS_FILE;

function actionFor(point: string): string | undefined {
  if (!faultsFile) return undefined;
  let text: string;
  try {
    text = readFileSync(faultsFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [name, action] = line.trim().split('=', 2);
    if (name === point && action) return action;
  }
  return undefined;
}

export async function faultPoint(point: string, signal?: AbortSignal): Promise<void> {
  const action = actionFor(point);
  if (!action) return;
  if (action === 'kill') process.kill(process.pid, 'SIGKILL');
  if (action === 'error') throw new Error(`injected fault at ${point}`);
  if (action === 'hang') await new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
  if (action.startsWith('delay:')) await sleep(Number(action.slice(6)), undefined, { signal }).catch(() => undefined);
}
