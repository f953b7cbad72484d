// Scanners for the secret-hygiene and leak checks: which processes the driver started, what their
// /proc/<pid>/cmdline and environ hold, and which s3fs processes, mounts, passwd files and
// directories are left behind.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';

export interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  cmdline: string[];
  /** Raw environ (NUL-separated KEY=VALUE); '' when the process is gone or unreadable. */
  environ: string;
  exe: string;
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: ppid is the 2nd field after the LAST ')'.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s, i, a) => s !== '' || i < a.length - 1);
    let environ = '';
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      // zombie or gone
    }
    let exe = '';
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      // kernel thread or gone
    }
    return { pid, ppid, comm, cmdline, environ, exe };
  } catch {
    return undefined;
  }
}

export function allProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProc(Number(name));
    if (p) out.push(p);
  }
  return out;
}

/** `root` and every process below it (children, grandchildren, ...). */
export function descendants(root: number, procs = allProcesses()): ProcInfo[] {
  const byParent = new Map<number, ProcInfo[]>();
  for (const p of procs) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const out: ProcInfo[] = [];
  const self = procs.find((p) => p.pid === root);
  if (self) out.push(self);
  const queue = [root];
  while (queue.length > 0) {
    for (const child of byParent.get(queue.shift() as number) ?? []) {
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

const isS3fs = (p: ProcInfo): boolean => p.comm === 's3fs' || basename(p.exe).startsWith('s3fs') || basename(p.cmdline[0] ?? '') === 's3fs';

/** Every s3fs process on the machine (s3fs may daemonise away from the driver's process tree). */
export function s3fsProcesses(procs = allProcesses()): ProcInfo[] {
  return procs.filter(isS3fs);
}

/** s3fs processes whose command line mentions `dir` (their mount point lives under a test's dir). */
export function s3fsProcessesUnder(dir: string, procs = allProcesses()): ProcInfo[] {
  return s3fsProcesses(procs).filter((p) => p.cmdline.some((a) => a.includes(dir)));
}

/** The processes to hold to the no-secret rule: the driver's tree plus every s3fs under `dir`. */
export function driverProcesses(driverPid: number, dir: string): ProcInfo[] {
  const procs = allProcesses();
  const seen = new Map<number, ProcInfo>();
  for (const p of [...descendants(driverPid, procs), ...s3fsProcessesUnder(dir, procs)]) seen.set(p.pid, p);
  return [...seen.values()];
}

export interface Finding {
  where: string;
  secret: string;
}

/** Where any of `secrets` (values of 4+ characters) appears in the given texts. */
export function findSecrets(texts: Iterable<{ where: string; text: string }>, secrets: Iterable<string>): Finding[] {
  const values = [...secrets].filter((s) => s.length >= 4);
  const out: Finding[] = [];
  for (const { where, text } of texts) {
    for (const s of values) if (text.includes(s)) out.push({ where, secret: `${s.slice(0, 3)}...` });
  }
  return out;
}

/** cmdline and environ of each process, as texts for findSecrets. */
export function procTexts(procs: ProcInfo[]): { where: string; text: string }[] {
  return procs.flatMap((p) => [
    { where: `/proc/${p.pid}/cmdline (${p.comm})`, text: p.cmdline.join(' ') },
    { where: `/proc/${p.pid}/environ (${p.comm})`, text: p.environ },
  ]);
}

/** Files below `dir` (recursive, symlinks not followed); [] when it does not exist. */
export function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => !e.isDirectory())
      .map((e) => `${e.parentPath}/${e.name}`);
  } catch {
    return [];
  }
}

/** Every entry (files and directories) below `dir`; [] when it does not exist. */
export function entriesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true }).map((e) => `${e.parentPath}/${e.name}`);
  } catch {
    return [];
  }
}

/** Resident memory of a process in bytes (VmRSS), undefined when gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

