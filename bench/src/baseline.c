/* baseline: the simplest programs that move a log file to loopback TCP sinks
 * and archive files; the reference points ("kernel limit", "copying path")
 * that the shipper and its peers are measured against.
 *
 *   baseline MODE FILE ARCHIVE ADDR...      (ARCHIVE: a path, or - for none)
 *
 * MODE:
 *   splice       file -> pipe -> socket, splice() with an explicit offset; CHUNK per call
 *   sendfile     sendfile(socket, file, &off, CHUNK)
 *   rw           read(CHUNK) into a user buffer, write() it: the copying path
 *   fanout-rw    read once, write() to every socket and the archive
 *   fanout-tee   splice file -> pipe once, tee() into one pipe per further sink,
 *                splice each pipe into its socket / the archive
 *   archive-splice  file -> pipe -> archive file (no socket)
 *   archive-rw      read/write file -> archive file (no socket)
 *   follow       live tail: inotify on FILE, splice each newly appended batch of
 *                complete lines (last newline found by pread of the tail +
 *                memrchr) to the socket; runs until SIGTERM
 *
 * CHUNK (pipe size and bytes per call) is 64 KiB, or $BASELINE_CHUNK.
 * Sockets are blocking: these are single-purpose loops, nothing else to do.
 * Exits 0 once everything was handed to the kernel; the receiver and
 * the harness time the delivery.
 */
#include "common.h"

#include <signal.h>
#include <sys/inotify.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define MAXSINK 32

static int connect_to(const char *spec) {
    struct sockaddr_in a = loopback_addr(spec);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) die("connect");
    return fd;
}

static void make_pipe(int p[2], size_t size) {
    if (pipe(p)) die("pipe");
    if (fcntl(p[1], F_SETPIPE_SZ, (int)size) < 0) die("F_SETPIPE_SZ");
}

/* Move exactly n bytes out of pipe read end `pr` into `out`. */
static void drain(int pr, int out, size_t n) {
    while (n) {
        ssize_t s = splice(pr, NULL, out, NULL, n, SPLICE_F_MOVE);
        if (s < 0) {
            if (errno == EINTR) continue;
            die("splice(pipe->out)");
        }
        if (s == 0) fail("splice(pipe->out) returned 0");
        n -= (size_t)s;
    }
}

/* file [off, off+n) -> pipe -> out, all of it */
static void splice_range(int fd, loff_t off, size_t n, int p[2], int out, size_t chunk) {
    while (n) {
        size_t want = n < chunk ? n : chunk;
        ssize_t r = splice(fd, &off, p[1], NULL, want, SPLICE_F_MOVE);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("splice(file->pipe)");
        }
        if (r == 0) fail("unexpected EOF");
        drain(p[0], out, (size_t)r);
        n -= (size_t)r;
    }
}

static volatile sig_atomic_t g_stop;
static void on_term(int sig) {
    (void)sig;
    g_stop = 1;
}

static int follow(int fd, int out, size_t chunk) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term; /* no SA_RESTART: a blocked read() returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int in = inotify_init1(IN_CLOEXEC);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (inotify_add_watch(in, path, IN_MODIFY) < 0) die("inotify_add_watch");
    int p[2];
    make_pipe(p, chunk);
    loff_t off = 0;
    char tail[4096];
    char evbuf[4096] __attribute__((aligned(8)));
    while (!g_stop) {
        struct stat st;
        if (fstat(fd, &st)) die("fstat");
        if (st.st_size > off) {
            /* end of the last complete line: look back from the end in 4 KiB steps */
            loff_t end = -1, hi = st.st_size;
            while (hi > off && end < 0) {
                loff_t lo = hi - (loff_t)sizeof tail > off ? hi - (loff_t)sizeof tail : off;
                ssize_t r = pread(fd, tail, (size_t)(hi - lo), lo);
                if (r <= 0) die("pread");
                char *nl = memrchr(tail, '\n', (size_t)r);
                if (nl) end = lo + (nl - tail) + 1;
                hi = lo;
            }
            if (end > off) {
                splice_range(fd, off, (size_t)(end - off), p, out, chunk);
                off = end;
                continue; /* more may have arrived meanwhile */
            }
        }
        ssize_t r = read(in, evbuf, sizeof evbuf); /* wait for the next append */
        if (r < 0 && errno != EINTR) die("read(inotify)");
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: baseline MODE FILE ARCHIVE|- ADDR...\n");
        return 1;
    }
    const char *mode = argv[1];
    signal(SIGPIPE, SIG_IGN);
    const char *ce = getenv("BASELINE_CHUNK");
    size_t chunk = ce ? (size_t)parse_size(ce) : 64 * KiB;
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) die(argv[2]);
    struct stat st;
    fstat(fd, &st);
    size_t total = (size_t)st.st_size;
    int arch = -1;
    if (strcmp(argv[3], "-")) {
        /* no O_APPEND: splice refuses it */
        arch = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (arch < 0) die(argv[3]);
    }
    int nsock = argc - 4, sinks[MAXSINK], nsink = 0;
    if (nsock + 1 > MAXSINK) fail("too many sinks");
    for (int i = 0; i < nsock; i++) sinks[nsink++] = connect_to(argv[4 + i]);
    if (arch >= 0) sinks[nsink++] = arch;
    if (nsink == 0) fail("no sinks");

    if (!strcmp(mode, "splice") || !strcmp(mode, "archive-splice")) {
        if (nsink != 1) fail("one sink");
        int p[2];
        make_pipe(p, chunk);
        splice_range(fd, 0, total, p, sinks[0], chunk);
    } else if (!strcmp(mode, "sendfile")) {
        if (nsink != 1) fail("one sink");
        off_t off = 0;
        while ((size_t)off < total) {
            ssize_t w = sendfile(sinks[0], fd, &off, chunk);
            if (w < 0) {
                if (errno == EINTR) continue;
                die("sendfile");
            }
            if (w == 0) fail("sendfile returned 0");
        }
    } else if (!strcmp(mode, "rw") || !strcmp(mode, "archive-rw") || !strcmp(mode, "fanout-rw")) {
        char *buf = malloc(chunk);
        for (;;) {
            ssize_t r = read(fd, buf, chunk);
            if (r < 0) {
                if (errno == EINTR) continue;
                die("read");
            }
            if (r == 0) break;
            for (int i = 0; i < nsink; i++) write_all(sinks[i], buf, (size_t)r);
        }
        free(buf);
    } else if (!strcmp(mode, "fanout-tee")) {
        int p[MAXSINK][2];
        for (int i = 0; i < nsink; i++) make_pipe(p[i], chunk);
        loff_t off = 0;
        while ((size_t)off < total) {
            ssize_t r = splice(fd, &off, p[0][1], NULL, chunk, SPLICE_F_MOVE);
            if (r < 0) {
                if (errno == EINTR) continue;
                die("splice(file->pipe)");
            }
            if (r == 0) break;
            /* the other pipes are empty here, so each tee takes the whole chunk */
            for (int i = 1; i < nsink; i++) {
                ssize_t t = tee(p[0][0], p[i][1], (size_t)r, 0);
                if (t != r) fail("short tee");
                drain(p[i][0], sinks[i], (size_t)r);
            }
            drain(p[0][0], sinks[0], (size_t)r);
        }
    } else if (!strcmp(mode, "follow")) {
        if (nsink != 1) fail("one sink");
        return follow(fd, sinks[0], chunk);
    } else {
        fail("unknown mode");
    }
    for (int i = 0; i < nsink; i++)
        if (close(sinks[i])) die("close");
    return 0;
}
