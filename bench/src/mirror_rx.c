/* mirror_rx: the C baseline of the `collect` scenario, the limit of receiving into files.
 *
 *   mirror_rx PORT_FILE DIR EXPECT_BYTES
 *
 * Listens on 127.0.0.1 (a free port, written to PORT_FILE), accepts any number of
 * connections and moves each one's bytes socket -> pipe -> DIR/conn-N with splice at an
 * explicit file offset (no userspace copy, no framing, no fsync). Exits 0 once EXPECT_BYTES
 * have been written in total (or 1 on SIGTERM) and prints one JSON line. */
#include "common.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define MAXCONN 256

typedef struct {
    int fd, pipe_r, pipe_w, file;
    loff_t off;
} Conn;

static volatile sig_atomic_t g_stop;
static void on_term(int sig) {
    (void)sig;
    g_stop = 1;
}

int main(int argc, char **argv) {
    if (argc != 4) fail("usage: mirror_rx PORT_FILE DIR EXPECT_BYTES");
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
    static Conn conns[MAXCONN];
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
                }
                if (!t_first) t_first = mono_s();
                t_last = mono_s();
            }
        }
    }
    printf("{\"status\": \"%s\", \"bytes\": %llu, \"t_first\": %.6f, \"t_last\": %.6f}\n",
           total >= expect ? "done" : "stopped", (unsigned long long)total, t_first, t_last);
    return total >= expect ? 0 : 1;
}
