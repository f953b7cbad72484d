// s3fs mount-option policy, pure. Options come from three places (StorageClass `options` in the
// volume context, the capability's mount_flags = PV mountOptions, and the driver's own defaults);
// the first two are checked against an allowlist. Anything that could override the passwd file or
// credential source, point s3fs at another bucket or endpoint, load another config file or write
// outside s3fs's own state is rejected with INVALID_ARGUMENT naming the option.
import { invalidArgument } from '../errors.js';

type Check = 'flag' | 'uint' | 'octal' | readonly string[] | RegExp;

const UINT = 'uint' as const;
/** name -> what its value may be ('flag' = no value). Everything else is rejected. */
const ALLOWED: Record<string, Check> = {
  // FUSE / VFS generics
  ro: 'flag', rw: 'flag', noatime: 'flag', nodiratime: 'flag', relatime: 'flag', nosuid: 'flag', nodev: 'flag',
  noexec: 'flag', allow_other: 'flag', default_permissions: 'flag',
  // ownership and modes (fsGroup / non-root pods)
  uid: UINT, gid: UINT, umask: 'octal', mp_umask: 'octal',
  // request style and API compatibility
  use_path_request_style: 'flag', sigv2: 'flag', sigv4: 'flag', listobjectsv2: 'flag', nocopyapi: 'flag',
  norenameapi: 'flag', nomultipart: 'flag', noxmlns: 'flag', enable_content_md5: 'flag', use_xattr: 'flag',
  notsup_compat_dir: 'flag', compat_dir: 'flag', complement_stat: 'flag', enable_noobj_cache: 'flag',
  disable_noobj_cache: 'flag', enable_unsigned_payload: 'flag', requester_pays: 'flag',
  // object attributes
  storage_class: ['standard', 'standard_ia', 'onezone_ia', 'reduced_redundancy', 'intelligent_tiering', 'glacier', 'glacier_ir', 'deep_archive'],
  default_acl: ['private', 'public-read', 'public-read-write', 'aws-exec-read', 'authenticated-read', 'bucket-owner-read', 'bucket-owner-full-control', 'log-delivery-write'],
  use_sse: ['1', 'kmsid', 'k'], // no custom key files: use_sse=custom:/path would read a file
  // tuning
  retries: UINT, connect_timeout: UINT, readwrite_timeout: UINT, stat_cache_expire: UINT,
  stat_cache_interval_expire: UINT, max_stat_cache_size: UINT, list_object_max_keys: UINT,
  multireq_max: UINT, parallel_count: UINT, multipart_size: UINT, multipart_copy_size: UINT,
  singlepart_copy_limit: UINT, max_dirty_data: UINT, max_background: UINT, ensure_diskfree: UINT,
  max_read: UINT, max_write: UINT,
  dbglevel: ['crit', 'critical', 'err', 'error', 'warn', 'warning', 'info', 'information', 'dbg', 'debug'],
};

/** Options the driver sets itself: naming them in a StorageClass or PV is an error, with the reason. */
const FORBIDDEN: Record<string, string> = {
  passwd_file: 'credentials come from the volume\'s secrets',
  url: 'the endpoint comes from the secrets or the driver',
  host: 'the endpoint comes from the secrets or the driver',
  endpoint: 'the region comes from the secrets or volume attributes',
  servicepath: 'the endpoint comes from the secrets or the driver',
  bucket: 'the bucket comes from the volume id',
  profile: 'credentials come from the volume\'s secrets',
  iam_role: 'credentials come from the volume\'s secrets',
  ecs: 'credentials come from the volume\'s secrets',
  ibm_iam_auth: 'credentials come from the volume\'s secrets',
  ibm_iam_endpoint: 'credentials come from the volume\'s secrets',
  credlib: 'would load a credential library',
  credlib_opts: 'would configure a credential library',
  use_session_token: 'credentials come from the volume\'s secrets',
  ahbe_conf: 'would load a config file',
  mime: 'would load a config file',
  cipher_suites: 'TLS settings belong to the driver',
  no_check_certificate: 'TLS settings belong to the driver (--s3-insecure)',
  ssl_verify_hostname: 'TLS settings belong to the driver (--s3-insecure)',
  use_cache: 'would write to a directory outside the driver\'s control',
  tmpdir: 'would write to a directory outside the driver\'s control',
  logfile: 'would write to a file outside the driver\'s control',
  allow_root: 'conflicts with allow_other, which the driver sets',
  nonempty: 'the driver mounts on empty directories only',
  modules: 'would load FUSE modules',
  subdir: 'the prefix comes from the volume id',
  fsname: 'the driver names its mounts',
  curldbg: 'would log request headers',
};

const NAME_RE = /^[a-z][a-z0-9_]{0,63}$/;
const VALUE_RE = /^[A-Za-z0-9._:-]{0,128}$/;

export interface ParsedOption {
  name: string;
  value?: string;
}

/**
 * Splits one option text (`a,b=c`, `-o a -o b=c`, whitespace or comma separated) into single
 * options. Splitting on commas first is what defeats injection: `uid=1,passwd_file=/x` is two
 * options and the second is checked (and rejected) on its own.
 */
export function splitOptions(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((t) => t.trim())
    .filter((t) => t && t !== '-o')
    .map((t) => (t.startsWith('-o') ? t.slice(2) : t));
}

export function checkOption(raw: string, where: string): ParsedOption {
  const eq = raw.indexOf('=');
  const name = eq < 0 ? raw : raw.slice(0, eq);
  const value = eq < 0 ? undefined : raw.slice(eq + 1);
  const shown = name.slice(0, 64);
  if (!NAME_RE.test(name)) throw invalidArgument(`${where}: invalid s3fs option "${raw.slice(0, 64)}"`);
  const forbidden = FORBIDDEN[name];
  if (forbidden) throw invalidArgument(`${where}: s3fs option "${shown}" is not allowed: ${forbidden}`);
  const check = ALLOWED[name];
  if (!check) throw invalidArgument(`${where}: s3fs option "${shown}" is not allowed (not in the driver's allowlist)`);
  if (check === 'flag') {
    if (value !== undefined) throw invalidArgument(`${where}: s3fs option "${shown}" takes no value`);
    return { name };
  }
  if (value === undefined || !VALUE_RE.test(value)) throw invalidArgument(`${where}: s3fs option "${shown}" needs a valid value`);
  const ok =
    check === 'uint' ? /^\d{1,10}$/.test(value)
    : check === 'octal' ? /^0?[0-7]{1,4}$/.test(value)
    : check instanceof RegExp ? check.test(value)
    : (check as readonly string[]).includes(value.toLowerCase());
  if (!ok) throw invalidArgument(`${where}: invalid value for s3fs option "${shown}"`);
  return { name, value };
}

/** Validates option texts from one source; returns them as `name` / `name=value`. */
export function validateOptions(texts: readonly string[], where: string): string[] {
  const out: string[] = [];
  for (const text of texts) {
    if (/[\0\n\r]/.test(text)) throw invalidArgument(`${where}: control characters in options`);
    for (const raw of splitOptions(text)) {
      const o = checkOption(raw, where);
      out.push(o.value === undefined ? o.name : `${o.name}=${o.value}`);
    }
  }
  return out;
}

/** Merges option lists; a later one with the same name replaces an earlier one. */
export function mergeOptions(...lists: readonly string[][]): string[] {
  const byName = new Map<string, string>();
  for (const list of lists) {
    for (const o of list) {
      const name = o.split('=', 1)[0] ?? o;
      // ro/rw are one setting
      if (name === 'ro') byName.delete('rw');
      if (name === 'rw') byName.delete('ro');
      byName.delete(name);
      byName.set(name, o);
    }
  }
  return [...byName.values()];
}
