/* mirror_rx: the C baseline of the `collect` scenario, the limit of receiving into files.
 *
 *   mirror_rx PORT_FILE DIR EXPECT_BYTES [SYNC_MS SYNC_BYTES]
 *
 * Listens on 127.0.0.1 (a free port, written to PORT_FILE), accepts any number of
 * connections and moves each one's bytes socket -> pipe -> DIR/conn-N with splice at an
 * explicit file offset (no userspace copy, no framing, no fsync). Exits 0 once EXPECT_BYTES
 * have been written in total (or 1 on SIGTERM) and prints one JSON line.
 *
 * With SYNC_MS and SYNC_BYTES it also syncs like `logsplice collect` groups its syncs: a
 * second thread fdatasyncs every file with new bytes SYNC_MS after the last group, or as soon
 * as SYNC_BYTES were written since it (one group at a time), and once more before exiting.
 * Without them nothing is synced (the kernel's flusher threads write the pages back later, in
 * nobody's CPU time: the row that leaves durability out). */
#include "common.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define MAXCONN 256

typedef struct {
    int fd, pipe_r, pipe_w, file;
    loff_t off;
} Conn;

static volatile sig_atomic_t g_stop;

/* The sync thread's view: descriptors of the files (-1 until opened), bytes since the last group. */
static Conn g_conns[MAXCONN];
static int g_nconns;
static uint64_t g_unsynced, g_sync_bytes;
static long g_sync_ms;
static int g_done;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;

static void sync_group(void) {
    int fds[MAXCONN], n;
    pthread_mutex_lock(&g_mu);
    n = g_nconns;
    for (int i = 0; i < n; i++) fds[i] = g_conns[i].file;
    g_unsynced = 0;
    pthread_mutex_unlock(&g_mu);
    for (int i = 0; i < n; i++)
        if (fdatasync(fds[i]) != 0) die("fdatasync");
}

static void *sync_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&g_mu);
    while (!g_done) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += (g_sync_ms % 1000) * 1000000L;
        t.tv_sec += g_sync_ms / 1000 + t.tv_nsec / 1000000000L;
        t.tv_nsec %= 1000000000L;
        while (!g_done && g_unsynced < g_sync_bytes)
            if (pthread_cond_timedwait(&g_cv, &g_mu, &t) != 0) break;
        if (g_done) break;
        pthread_mutex_unlock(&g_mu);
        sync_group();
        pthread_mutex_lock(&g_mu);
    }
    pthread_mutex_unlock(&g_mu);
    return NULL;
}
static void on_term(int sig) {
    (void)sig;
    g_stop = 1;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 6) fail("usage: mirror_rx PORT_FILE DIR EXPECT_BYTES [SYNC_MS SYNC_BYTES]");
    pthread_t syncer;
    if (argc == 6) {
        g_sync_ms = atol(argv[4]);
        g_sync_bytes = parse_size(argv[5]);
        if (pthread_create(&syncer, NULL, sync_main, NULL) != 0) fail("pthread_create");
    }
    const char *dir = argv[2];
    uint64_t expect = parse_size(argv[3]), total = 0;
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ls < 0) die("socket");
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = loopback_addr("127.0.0.1:0");
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 128)) die("listen");
    socklen_t alen = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &alen);
    FILE *pf = fopen(argv[1], "w");
    if (!pf) die("port file");
    fprintf(pf, "%d\n", ntohs(a.sin_port));
    fclose(pf);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    Conn *conns = g_conns;
    int n = 0;
    double t_first = 0, t_last = 0;
    while (!g_stop && total < expect) {
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, 200);
        for (int i = 0; i < k; i++) {
            Conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    if (n == MAXCONN) {
                        close(fd);
                        continue;
                    }
                    pthread_mutex_lock(&g_mu);
                    c = &conns[n];
                    int p[2];
                    if (pipe2(p, O_NONBLOCK | O_CLOEXEC)) die("pipe");
                    fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
                    char path[4096];
                    snprintf(path, sizeof path, "%s/conn-%d", dir, n++);
                    c->file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                    if (c->file < 0) die(path);
                    c->fd = fd;
                    c->pipe_r = p[0];
                    c->pipe_w = p[1];
                    c->off = 0;
                    g_nconns = n;
                    pthread_mutex_unlock(&g_mu);
                    struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                }
                continue;
            }
            for (;;) {
                ssize_t r = splice(c->fd, NULL, c->pipe_w, NULL, 1 << 20,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (r == 0) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    break;
                }
                if (r < 0) {
                    if (errno == EAGAIN || errno == EINTR) break;
                    die("splice in");
                }
                while (r > 0) {
                    ssize_t w = splice(c->pipe_r, NULL, c->file, &c->off, (size_t)r, SPLICE_F_MOVE);
                    if (w <= 0) die("splice out");
                    r -= w;
                    total += (uint64_t)w;
                    if (argc == 6) {
                        pthread_mutex_lock(&g_mu);
                        g_unsynced += (uint64_t)w;
                        if (g_unsynced >= g_sync_bytes) pthread_cond_signal(&g_cv);
                        pthread_mutex_unlock(&g_mu);
                    }
                }
                if (!t_first) t_first = mono_s();
                t_last = mono_s();
            }
        }
    }
    if (argc == 6) {
        pthread_mutex_lock(&g_mu);
        g_done = 1;
        pthread_cond_signal(&g_cv);
        pthread_mutex_unlock(&g_mu);
        pthread_join(syncer, NULL);
        sync_group();
    }
    printf("{\"status\": \"%s\", \"bytes\": %llu, \"t_first\": %.6f, \"t_last\": %.6f}\n",
           total >= expect ? "done" : "stopped", (unsigned long long)total, t_first, t_last);
    return total >= expect ? 0 : 1;
}
