/*
 * s3fs-csi-mount --spawn: starts processes for the driver (s3fs, and the one-shot statfs checks) and
 * reports their output and their end, for as long as its parent keeps stdin open.
 *
 * Why: Node.js starts a child by forking its whole address space on its event loop (libuv), 5-6 ms
 * at the driver's size on this machine and 15-20 ms under the load of a 100-volume recovery, which
 * starts a hundred s3fs. posix_spawn(3) from this small process is a vfork-style clone: ~0.5 ms.
 * Single-threaded, no S3 request, no secret: s3fs reads its keys from a file the driver wrote, and a
 * child gets only the environment the request names.
 *
 * Protocol (stdin -> stdout). A request is NUL-terminated fields (arguments may hold any other byte):
 *   start NUL ARGC NUL ARGV[0] NUL ... ARGV[ARGC-1] NUL ENVC NUL ENV[0] NUL ... ENV[ENVC-1] NUL
 * ARGV[0] is the file executed; without a slash it is looked up on this process's own PATH (the
 * driver starts it with its PATH), like execvp. Replies are lines:
 *   "S PID"              the start request, in request order, started PID
 *   "E ERRNO"            the start request, in request order, failed: posix_spawn's errno (ENOENT...)
 *   "O PID TEXT"         one line PID wrote on stdout or stderr (one pipe for both), without its
 *                        newline; a line longer than LINE_MAX_BYTES comes in pieces
 *   "X PID CODE SIGNAL"  PID ended: its exit code (-1 when a signal ended it) and that signal (0 for
 *                        none). Comes after PID's last O line: the pipe is drained when PID is reaped
 * A child gets: its own session (so a signal to the driver's group never reaches it), stdin from
 * /dev/null, every signal unblocked and at its default disposition except SIGPIPE, which stays
 * ignored, so that an s3fs whose log reader went away (driver restarted) gets EPIPE and keeps serving
 * its mount instead of dying of the signal.
 * When stdin ends or the parent dies (PR_SET_PDEATHSIG), this process exits and leaves its children
 * running: they are reparented, and the driver that starts next adopts its s3fs by their argv.
 * Exit status: 0 at the end of stdin; 2 on input it cannot parse or a write error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"

#define LINE_MAX_BYTES 4096

struct child {
    pid_t pid;
    int fd;            /* read end of its stdout+stderr pipe; -1 once at its end */
    size_t len;        /* bytes of an unfinished line in buf */
    char buf[LINE_MAX_BYTES];
};

static struct child **children;
static size_t nchildren, capchildren;

/* Writes all of buf to stdout or exits 2: a reply stream with a hole cannot be trusted. */
static void put(const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) exit(2);
        buf += n;
        len -= (size_t)n;
    }
}

static void reply(const char *fmt, long a, long b, long c) {
    char line[96];
    int n = snprintf(line, sizeof line, fmt, a, b, c);
    put(line, (size_t)n);
}

static void emit_line(struct child *c, const char *text, size_t len) {
    char head[32];
    int n = snprintf(head, sizeof head, "O %ld ", (long)c->pid);
    put(head, (size_t)n);
    put(text, len);
    put("\n", 1);
}

/* Reads what the pipe holds now; returns 0 at its end (or on an error), 1 while it stays open. */
static int pump(struct child *c) {
    char chunk[65536];
    for (;;) {
        ssize_t n = read(c->fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 1;
        if (n <= 0) return 0;
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] == '\n') {
                emit_line(c, c->buf, c->len);
                c->len = 0;
            } else {
                if (c->len == LINE_MAX_BYTES) {
                    emit_line(c, c->buf, c->len);
                    c->len = 0;
                }
                c->buf[c->len++] = chunk[i];
            }
        }
    }
}

static void close_output(struct child *c) {
    if (c->fd < 0) return;
    if (c->len > 0) emit_line(c, c->buf, c->len);
    c->len = 0;
    close(c->fd);
    c->fd = -1;
}

/* Reaps every child that ended: its remaining output first, then its X line. */
static void reap(void) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < nchildren; i++) {
            struct child *c = children[i];
            if (c->pid != pid) continue;
            if (c->fd >= 0) {
                /* What it wrote before it ended is in the pipe now; a descendant still holding the
                 * pipe open must not delay the report, so read what is there and stop. */
                pump(c);
                close_output(c);
            }
            if (WIFSIGNALED(status)) reply("X %ld %ld %ld\n", (long)pid, -1, WTERMSIG(status));
            else reply("X %ld %ld %ld\n", (long)pid, WEXITSTATUS(status), 0);
            free(c);
            children[i] = children[--nchildren];
            break;
        }
    }
}

/* One start request: ARGC and ENVC counted fields. Answers S or E. */
static void start(char **argv, char **envp, const sigset_t *unblocked) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        reply("E %ld\n", errno, 0, 0);
        return;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
    posix_spawnattr_init(&attr);
    sigset_t defaults;
    sigfillset(&defaults);
    sigdelset(&defaults, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, unblocked);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int err = posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pipefd[1]);
    if (err != 0) {
        close(pipefd[0]);
        reply("E %ld\n", err, 0, 0);
        return;
    }
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    struct child *c = calloc(1, sizeof *c);
    if (!c || (nchildren == capchildren && !(children = realloc(children, (capchildren = capchildren * 2 + 16) * sizeof *children)))) exit(2);
    c->pid = pid;
    c->fd = pipefd[0];
    children[nchildren++] = c;
    reply("S %ld\n", (long)pid, 0, 0);
}

/*
 * Parses complete requests at the front of buf[0..len) and runs them; returns the bytes used, or -1
 * when the input is not a request (exit 2: a stream out of step cannot be trusted).
 */
static ssize_t run_requests(char *buf, size_t len, const sigset_t *unblocked) {
    size_t used = 0;
    for (;;) {
        char *fields[2 + 2 * 4096 + 2];
        size_t at = used, nf = 0;
        long counts[2] = {0, 0};
        int part = 0; /* 0: "start", 1: ARGC, 2: argv, 3: ENVC, 4: env */
        long left = 0;
        for (;;) {
            if (part == 2 && left == 0) part = 3;
            if (part == 4 && left == 0) break;
            char *end = memchr(buf + at, '\0', len - at);
            if (!end) return (ssize_t)used; /* incomplete: wait for more input */
            char *f = buf + at;
            at = (size_t)(end - buf) + 1;
            if (part == 0) {
                if (strcmp(f, "start") != 0) return -1;
                part = 1;
            } else if (part == 1 || part == 3) {
                char *rest;
                long n = strtol(f, &rest, 10);
                if (*f == '\0' || *rest != '\0' || n < (part == 1 ? 1 : 0) || n > 4096) return -1;
                counts[part == 1 ? 0 : 1] = n;
                left = n;
                part++;
            } else {
                fields[nf++] = f;
                left--;
            }
        }
        char *argv[4096 + 1], *envp[4096 + 1];
        for (long i = 0; i < counts[0]; i++) argv[i] = fields[i];
        argv[counts[0]] = NULL;
        for (long i = 0; i < counts[1]; i++) envp[i] = fields[counts[0] + i];
        envp[counts[1]] = NULL;
        start(argv, envp, unblocked);
        used = at;
    }
}

int spawner_main(void) {
    sigset_t chld, unblocked;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigemptyset(&unblocked);
    /* SIGCHLD arrives through a descriptor (blocked as a signal), SIGPIPE is ignored (see above). */
    if (sigprocmask(SIG_BLOCK, &chld, NULL) != 0) return 2;
    signal(SIGPIPE, SIG_IGN);
    int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd < 0) return 2;
    fcntl(STDIN_FILENO, F_SETFD, FD_CLOEXEC);
    fcntl(STDOUT_FILENO, F_SETFD, FD_CLOEXEC);
    size_t cap = 1 << 16, len = 0;
    char *in = malloc(cap);
    struct pollfd *pfds = NULL;
    size_t pcap = 0;
    if (!in) return 2;
    for (;;) {
        if (pcap < nchildren + 2 && !(pfds = realloc(pfds, (pcap = nchildren * 2 + 16) * sizeof *pfds))) return 2;
        pfds[0] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
        pfds[1] = (struct pollfd){.fd = sigfd, .events = POLLIN};
        size_t np = 2;
        for (size_t i = 0; i < nchildren; i++)
            if (children[i]->fd >= 0) pfds[np++] = (struct pollfd){.fd = children[i]->fd, .events = POLLIN};
        if (poll(pfds, np, -1) < 0) {
            if (errno == EINTR) continue;
            return 2;
        }
        /* Output before exits, so a child's last lines precede its X line either way. */
        for (size_t k = 2; k < np; k++) {
            if (!pfds[k].revents) continue;
            for (size_t i = 0; i < nchildren; i++) {
                if (children[i]->fd != pfds[k].fd) continue;
                if (!pump(children[i])) close_output(children[i]);
                break;
            }
        }
        if (pfds[1].revents) {
            struct signalfd_siginfo si;
            while (read(sigfd, &si, sizeof si) == sizeof si) {}
            reap();
        }
        if (pfds[0].revents) {
            if (len == cap && !(in = realloc(in, cap *= 2))) return 2;
            ssize_t n = read(STDIN_FILENO, in + len, cap - len);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return 0;
            len += (size_t)n;
            ssize_t used = run_requests(in, len, &unblocked);
            if (used < 0) {
                fprintf(stderr, "s3fs-csi-mount --spawn: a request it cannot parse\n");
                return 2;
            }
            memmove(in, in + used, len - (size_t)used);
            len -= (size_t)used;
        }
    }
}
