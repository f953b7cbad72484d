/*
 * s3fs-csi-heal: replaces a dead mount inside a running container's mount namespace with a clone of
 * a healthy mount from the caller's namespace, without restarting the container. The node plugin
 * (Node.js, multi-threaded) cannot do this itself: setns(CLONE_NEWNS) refuses multi-threaded callers.
 * This program is single-threaded, makes no S3 request and handles no secret.
 *
 * Usage:
 *   s3fs-csi-heal --pid PID --source PATH --target PATH [--read-only]
 *                 [--expect-dev MAJOR:MINOR] [--expect-ns INODE] [--no-beneath]
 *
 *   --pid         a process of the container: its mount namespace and root directory are used
 *   --source      the healthy mount as the caller sees it (a staging path, or staging path + subdir)
 *   --target      the mount point as the container sees it (absolute, relative to its root)
 *   --read-only   make the new mount read-only (the dead one was)
 *   --expect-dev  act only if the top mount on the target has this device in /proc/PID/mountinfo
 *                 (read from the kernel's table: never a stat, which could block on a hung FUSE)
 *   --expect-ns   act only if PID's mount namespace has this inode (guards against a reused pid)
 *   --no-beneath  use the sequence for kernels < 6.5: detach the dead mount, then attach the new one
 *                 (the path is briefly empty); without it, MOVE_MOUNT_BENEATH is tried first and this
 *                 sequence is the fallback when the kernel refuses it with EINVAL
 *
 * Sequence: open /proc/PID/ns/mnt and /proc/PID/root; open_tree(source, CLONE|RECURSIVE) = a detached
 * copy; mount_setattr: private propagation (+ read-only); setns into the container; fchdir(root) +
 * chroot(".") so the target resolves as the container sees it; move_mount beneath the dead mount;
 * umount2(target, MNT_DETACH) drops the dead mount on top. Needs CAP_SYS_ADMIN and CAP_SYS_CHROOT.
 *
 * Exit status: 0 healed; 2 usage; 3 process gone; 4 cannot enter the namespace or root;
 *   5 source unusable; 6 target not as expected (missing, not a mount point, another device or
 *   namespace); 7 kernel refused (missing syscall, or the move or detach failed).
 * On failure one line on stderr: "s3fs-csi-heal: <what>: <ERRNO NAME> (<text>)".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc 2.36 has no wrappers for the new mount API; the numbers are the same on every architecture. */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_BENEATH
#define MOVE_MOUNT_BENEATH 0x00000200
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif

/* struct mount_attr of <linux/mount.h>, which cannot be included together with <sys/mount.h> here. */
struct heal_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

enum {
	EXIT_HEALED = 0,
	EXIT_USAGE = 2,
	EXIT_GONE = 3,
	EXIT_NO_ENTRY = 4,
	EXIT_SOURCE = 5,
	EXIT_TARGET = 6,
	EXIT_REFUSED = 7,
};

static int fail(int code, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(int code, int err, const char *fmt, ...)
{
	va_list ap;
	fputs("s3fs-csi-heal: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err) {
		const char *name = strerrorname_np(err);
		fprintf(stderr, ": %s (%s)", name ? name : "?", strerror(err));
	}
	fputc('\n', stderr);
	return code;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo; decodes in place. */
static void unescape(char *s)
{
	char *out = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

#define MAX_LAYERS 256

/*
 * The device ("major:minor") of the top mount on `target` in a mountinfo file, copied to `dev`.
 * Mounts stacked on one path form a chain (each layer's parent is the layer below); the top is the
 * one no other layer there has as parent. Returns 0, or -1 when nothing is mounted there.
 */
static int top_device(FILE *f, const char *target, char *dev, size_t devlen)
{
	long ids[MAX_LAYERS], parents[MAX_LAYERS];
	char devs[MAX_LAYERS][32];
	int n = 0;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0 && n < MAX_LAYERS) {
		long id, parent;
		char d[32], root[4096], point[4096];
		if (sscanf(line, "%ld %ld %31s %4095s %4095s", &id, &parent, d, root, point) != 5)
			continue;
		unescape(point);
		if (strcmp(point, target) != 0)
			continue;
		ids[n] = id;
		parents[n] = parent;
		snprintf(devs[n], sizeof devs[n], "%s", d);
		n++;
	}
	free(line);
	for (int i = 0; i < n; i++) {
		int covered = 0;
		for (int j = 0; j < n && !covered; j++)
			covered = parents[j] == ids[i];
		if (!covered) {
			snprintf(dev, devlen, "%s", devs[i]);
			return 0;
		}
	}
	return -1;
}

static int usage(const char *why)
{
	fprintf(stderr, "s3fs-csi-heal: %s\nusage: s3fs-csi-heal --pid PID --source PATH --target PATH [--read-only] "
			"[--expect-dev MAJOR:MINOR] [--expect-ns INODE] [--no-beneath]\n", why);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	const char *pid = NULL, *source = NULL, *target = NULL, *expect_dev = NULL, *expect_ns = NULL;
	int read_only = 0, beneath = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--read-only") == 0) read_only = 1;
		else if (strcmp(a, "--no-beneath") == 0) beneath = 0;
		else if (!v) return usage("missing value");
		else if (strcmp(a, "--pid") == 0) pid = v, i++;
		else if (strcmp(a, "--source") == 0) source = v, i++;
		else if (strcmp(a, "--target") == 0) target = v, i++;
		else if (strcmp(a, "--expect-dev") == 0) expect_dev = v, i++;
		else if (strcmp(a, "--expect-ns") == 0) expect_ns = v, i++;
		else return usage("unknown argument");
	}
	if (!pid || !source || !target) return usage("--pid, --source and --target are required");
	if (strspn(pid, "0123456789") != strlen(pid) || strlen(pid) > 10) return usage("--pid must be a number");
	if (source[0] != '/' || target[0] != '/') return usage("--source and --target must be absolute paths");

	/* 1. Handles on the container, taken while the caller's /proc still names it. */
	char path[64];
	snprintf(path, sizeof path, "/proc/%s/ns/mnt", pid);
	int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return fail(errno == ENOENT || errno == ESRCH ? EXIT_GONE : EXIT_NO_ENTRY, errno, "open %s", path);
	snprintf(path, sizeof path, "/proc/%s/root", pid);
	int rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return fail(errno == ENOENT || errno == ESRCH ? EXIT_GONE : EXIT_NO_ENTRY, errno, "open %s", path);
	if (expect_ns) {
		struct stat st;
		if (fstat(nsfd, &st) != 0) return fail(EXIT_NO_ENTRY, errno, "fstat mount namespace");
		if (strtoull(expect_ns, NULL, 10) != (unsigned long long)st.st_ino)
			return fail(EXIT_TARGET, 0, "process %s is in mount namespace %llu, not %s (pid reused?)", pid, (unsigned long long)st.st_ino, expect_ns);
	}
	if (expect_dev) {
		snprintf(path, sizeof path, "/proc/%s/mountinfo", pid);
		FILE *f = fopen(path, "re");
		if (!f) return fail(errno == ENOENT || errno == ESRCH ? EXIT_GONE : EXIT_NO_ENTRY, errno, "open %s", path);
		char dev[32];
		int found = top_device(f, target, dev, sizeof dev);
		fclose(f);
		if (found != 0) return fail(EXIT_TARGET, 0, "nothing is mounted on %s in the container", target);
		if (strcmp(dev, expect_dev) != 0) return fail(EXIT_TARGET, 0, "%s in the container is device %s, not %s", target, dev, expect_dev);
	}

	/* 2-3. A detached copy of the healthy mount: private (never a peer of the caller's mounts), and
	 * read-only when the dead mount was. */
	int tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | AT_RECURSIVE | OPEN_TREE_CLOEXEC);
	if (tree < 0) return fail(errno == ENOSYS ? EXIT_REFUSED : EXIT_SOURCE, errno, "open_tree %s", source);
	struct heal_mount_attr attr = { .propagation = MS_PRIVATE, .attr_set = read_only ? MOUNT_ATTR_RDONLY : 0 };
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0)
		return fail(EXIT_REFUSED, errno, "mount_setattr on the copy of %s", source);

	/* 4-5. Into the container: its mount namespace, then its root. */
	if (setns(nsfd, CLONE_NEWNS) != 0) return fail(EXIT_NO_ENTRY, errno, "setns into the mount namespace of %s", pid);
	if (fchdir(rootfd) != 0 || chroot(".") != 0) return fail(EXIT_NO_ENTRY, errno, "enter the root of %s", pid);

	/* 6. The new mount goes beneath the dead one, which is then detached: the path is never empty. */
	if (beneath) {
		if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_BENEATH) == 0) {
			if (umount2(target, MNT_DETACH) != 0)
				return fail(EXIT_REFUSED, errno, "healthy mount placed beneath %s but the dead one on top cannot be detached", target);
			return EXIT_HEALED;
		}
		if (errno == ENOENT || errno == ENOTDIR) return fail(EXIT_TARGET, errno, "%s in the container", target);
		if (errno != EINVAL) return fail(EXIT_REFUSED, errno, "move_mount beneath %s", target);
		/* EINVAL: a kernel < 6.5 (unknown flag), or a target the kernel will not mount beneath. */
	}
	if (umount2(target, MNT_DETACH) != 0)
		return fail(errno == EINVAL || errno == ENOENT ? EXIT_TARGET : EXIT_REFUSED, errno, "detach the dead mount on %s", target);
	if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0)
		return fail(EXIT_REFUSED, errno, "move_mount onto %s (the dead mount is already detached)", target);
	return EXIT_HEALED;
}
