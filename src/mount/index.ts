// The public surface of the mount layer (see docs/node.md); the Node service and recovery use it.
export { type MountEntry, isReadOnly, isS3fs, isShared, layersAt, mountsUnder, parseMountInfo, readMountTable, topAt } from './mountinfo.js';
export { type FsStats, type PathHealth, type PathState, checkPath, checkPaths, healthOfErrno, parseStatfsReplies, statfsMany, statfsUnderDeadline } from './health.js';
export { IN_PROCESS_SLOTS, readinessCallsInFlight, statfsOfOwnMount } from './readiness.js';
export { SharedRead } from './shared-read.js';
export { type StageInput, type StageSpec, s3fsArgs, s3fsOptions, stageFingerprint, stageSpecFrom, stagingKey } from './spec.js';
export { validateOptions } from './options.js';
export { checkPathSyntax, checkNoSymlinks, safePath, withoutTrailingSlash } from './path-safety.js';
export { type StagedRecord, listRecords } from './records.js';
export { Mounter, type PublishResult, type S3fsExitEvent, type StageResult } from './mounter.js';
export { type EngineEvent, EventChannel, type MountEngine, type RecordedCredentials, type VolumeCondition } from './engine.js';
export { findS3fsPids } from './s3fs-process.js';
export { type HealPlan, type HealSkip, type HealTask, type NamespaceView, type VolumeLayers, planHeals, sourceFor, volumeLayers } from './heal-plan.js';
export { BUILT_HEAL_HELPER, HEAL_HELPER_NAME, type HealFailure, type HealResult, type HealWhere, otherNamespaces, resolveHealHelper, runHealHelper, seesHostPids } from './heal.js';
