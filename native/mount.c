/*
 * s3fs-csi-mount: makes the driver's bind mounts and unmounts with the mount(2) and umount2(2)
 * system calls, one request after another, for as long as its parent keeps stdin open. Node.js
 * cannot make these calls, and starting mount(8) for each one costs the driver a fork of its whole
 * address space on its event loop (8 ms at 150 MiB on this machine, more under load; a recovery of
 * 100 volumes made ~400 of them). This program is single-threaded, small, makes no S3 request and
 * handles no secret. It exits when its parent goes (end of stdin, or PR_SET_PDEATHSIG).
 *
 * Protocol (stdin -> stdout), every field ends with a NUL byte (paths may hold any other byte):
 *   request:  OP NUL ARG NUL [ARG NUL]
 *   reply:    one line "ERRNO\n" per request, in order; 0 = done, else the errno of the failed call
 * Operations:
 *   bind SOURCE TARGET   mount(SOURCE, TARGET, MS_BIND): stacks a bind of SOURCE on TARGET
 *   slave TARGET         mount(TARGET, MS_SLAVE): TARGET's top mount receives its master's
 *                        mounts and unmounts, and its own unmounts stay local
 *   ro TARGET FLAGS      remounts TARGET's top (bind) mount read-only with FLAGS kept: a comma list
 *                        of nosuid, nodev, noexec, noatime, nodiratime, relatime (the caller reads
 *                        them from the mount table; a remount without them would drop them). No
 *                        statvfs here: on a hung FUSE mount it would block every later request
 *   umount PATH          umount2(PATH, UMOUNT_NOFOLLOW): the top mount on PATH
 *   detach PATH          umount2(PATH, MNT_DETACH | UMOUNT_NOFOLLOW): lazily, busy or not
 * Exit status: 0 at the end of stdin; 2 on an unknown operation, input that ends inside a request,
 * or a write error (the stream cannot be trusted after that: its caller fails what is pending).
 *
 * One-shot mode, `s3fs-csi-mount --statfs PATH...`: statfs(2) of each PATH in order, one line each
 * on stdout, flushed at once: "0 FRSIZE BLOCKS BFREE BAVAIL FILES FFREE" or "ERRNO". The driver's
 * health checks run it in a child killed at their deadline (a statfs on a hung FUSE mount never
 * returns): the lines written before that are the answers of the first paths. This gives the
 * driver the errno itself, where stat(1) gives a translated message. Exit status 0, 2 on a write error.
 *
 * Long-lived mode, `s3fs-csi-mount --spawn`: starts the driver's processes (native/spawn.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "spawn.h"

#ifndef UMOUNT_NOFOLLOW
#define UMOUNT_NOFOLLOW 8
#endif

/* Reads one NUL-terminated field into *buf; returns its length, or -1 at the end of input. */
static ssize_t field(char **buf, size_t *cap) {
    ssize_t n = getdelim(buf, cap, '\0', stdin);
    if (n <= 0) return -1;
    if ((*buf)[n - 1] != '\0') return -1; /* input ended inside a field */
    return n - 1;
}

/* The per-mount flags named in `list` (comma-separated); -1 for a name it does not know. */
static long kept_flags(char *list) {
    static const struct { const char *name; unsigned long flag; } known[] = {
        {"nosuid", MS_NOSUID}, {"nodev", MS_NODEV}, {"noexec", MS_NOEXEC},
        {"noatime", MS_NOATIME}, {"nodiratime", MS_NODIRATIME}, {"relatime", MS_RELATIME},
    };
    long flags = 0;
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(name, known[i].name) != 0) i++;
        if (i == sizeof known / sizeof known[0]) return -1;
        flags |= (long)known[i].flag;
    }
    return flags;
}

static int remount_ro(const char *target, char *keep) {
    long flags = kept_flags(keep);
    if (flags < 0) return EINVAL;
    return mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | (unsigned long)flags, NULL) == 0 ? 0 : errno;
}

static int statfs_each(int n, char **paths) {
    for (int i = 0; i < n; i++) {
        struct statfs st;
        int ok;
        if (statfs(paths[i], &st) == 0) {
            unsigned long long frsize = st.f_frsize ? (unsigned long long)st.f_frsize : (unsigned long long)st.f_bsize;
            ok = printf("0 %llu %llu %llu %llu %llu %llu\n", frsize, (unsigned long long)st.f_blocks, (unsigned long long)st.f_bfree,
                        (unsigned long long)st.f_bavail, (unsigned long long)st.f_files, (unsigned long long)st.f_ffree);
        } else {
            ok = printf("%d\n", errno);
        }
        if (ok < 0 || fflush(stdout) != 0) return 2;
    }
    return 0;
}

int main(int argc, char **argv) {
    /* The parent's death ends us even if a copy of our stdin leaked to another process (without
     * that, the end of stdin does). No getppid() check: the parent may be PID 1 of a container. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (argc >= 2 && strcmp(argv[1], "--statfs") == 0) return statfs_each(argc - 2, argv + 2);
    if (argc == 2 && strcmp(argv[1], "--spawn") == 0) return spawner_main();
    char *op = NULL, *a = NULL, *b = NULL;
    size_t opcap = 0, acap = 0, bcap = 0;
    for (;;) {
        if (field(&op, &opcap) < 0) return 0;
        int err;
        if (strcmp(op, "bind") == 0 || strcmp(op, "ro") == 0) {
            if (field(&a, &acap) < 0 || field(&b, &bcap) < 0) return 2;
            err = op[0] == 'b' ? (mount(a, b, NULL, MS_BIND, NULL) == 0 ? 0 : errno) : remount_ro(a, b);
        } else if (strcmp(op, "slave") == 0 || strcmp(op, "umount") == 0 || strcmp(op, "detach") == 0) {
            if (field(&a, &acap) < 0) return 2;
            if (op[0] == 's') err = mount(NULL, a, NULL, MS_SLAVE, NULL) == 0 ? 0 : errno;
            else if (op[0] == 'u') err = umount2(a, UMOUNT_NOFOLLOW) == 0 ? 0 : errno;
            else err = umount2(a, MNT_DETACH | UMOUNT_NOFOLLOW) == 0 ? 0 : errno;
        } else {
            /* How many fields follow an unknown operation cannot be known: stop rather than misread. */
            fprintf(stderr, "s3fs-csi-mount: unknown operation\n");
            return 2;
        }
        if (printf("%d\n", err) < 0 || fflush(stdout) != 0) return 2;
    }
}
