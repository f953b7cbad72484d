/* The process starter of s3fs-csi-mount (native/spawn.c), run by `s3fs-csi-mount --spawn`. */
#ifndef S3FS_CSI_SPAWN_H
#define S3FS_CSI_SPAWN_H
int spawner_main(void);
#endif
