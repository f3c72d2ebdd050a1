/* receiver: a fast TCP sink on 127.0.0.1 for the benchmarks.
 *
 *   receiver [--listen 127.0.0.1:PORT] [--port-file F] [--mode read|splice|octet]
 *            [--expect-bytes N] [--expect-lines N] [--latency] [--latency-skip N]
 *            [--timeout S] [--idle S] [--progress FILE]
 *   receiver --free-port          print a currently free loopback port and exit
 *
 * Accepts any number of connections (also reconnects) and drains them with
 * epoll: "splice" moves socket -> pipe -> /dev/null (counts bytes only, cheapest);
 * "read" reads into a 1 MiB buffer and counts lines, and with --latency parses the
 * " ts=SSSSSSSSSS.UUUUUU" stamp that loggen puts at the end of every line and
 * records now - stamp. "octet" reads RFC 6587 octet-counted frames ("LEN SP MSG",
 * syslog event outputs) and counts each frame as a line; with --latency the stamp
 * is the end of the MSG (a trailing LF inside the frame is allowed). --latency-skip N
 * takes no sample from the first N lines (lines written before the measured phase,
 * e.g. the one line per file of `loggen mkfiles`, whose stamps are synthetic). It exits when the expected bytes or lines have arrived
 * (exit 0), at --timeout (exit 3), after --idle seconds without data once data
 * has flowed (exit 0), or on SIGTERM/SIGINT (exit 1), and prints one JSON object
 * on stdout. Times t_* are CLOCK_MONOTONIC seconds, comparable with any other
 * process's CLOCK_MONOTONIC (Python's time.monotonic()).
 */
#include "common.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define MAXCONN 256
#define BUFSZ (1 * MiB)

typedef struct {
    int fd;
    int pipe_r, pipe_w;
    uint64_t bytes, lines;
    char tail[32]; /* last bytes of the previous read, for stamps split across reads */
    size_t tail_len;
    /* octet mode: bytes of the current frame still to come (0: reading its length) */
    uint64_t need, len_acc;
    char ftail[32]; /* last bytes of the current frame */
    size_t ftail_len;
} Conn;

static Conn g_conns[MAXCONN];
static int g_nconn, g_open;
static uint64_t g_bytes, g_lines;
static double g_t_start, g_t_first, g_t_last;
static int32_t *g_lat;
static size_t g_lat_n, g_lat_cap;
static uint64_t g_bad_stamps, g_bad_frames;
static volatile sig_atomic_t g_stop;

static void on_term(int sig) {
    (void)sig;
    g_stop = 1;
}

/* parse "SSSSSSSSSS.UUUUUU" (17 chars) preceded by " ts="; -1 if absent */
static int64_t parse_stamp(const char *e /* points at the '\n' */, const char *lo) {
    const char *s = e - 17;
    if (s - 4 < lo || memcmp(s - 4, " ts=", 4) != 0 || s[10] != '.') return -1;
    int64_t sec = 0, us = 0;
    for (int i = 0; i < 10; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9) return -1;
        sec = sec * 10 + d;
    }
    for (int i = 11; i < 17; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9) return -1;
        us = us * 10 + d;
    }
    return sec * 1000000 + us;
}

static uint64_t g_lat_skip, g_lat_seen;

static void add_latency(int64_t lat_us) {
    if (g_lat_n == g_lat_cap) {
        g_lat_cap = g_lat_cap ? g_lat_cap * 2 : (1u << 20);
        g_lat = realloc(g_lat, g_lat_cap * sizeof *g_lat);
        if (!g_lat) die("realloc");
    }
    if (lat_us < 0) lat_us = 0;
    if (lat_us > INT32_MAX) lat_us = INT32_MAX;
    g_lat[g_lat_n++] = (int32_t)lat_us;
}

/* Count lines in buf (and take latency samples); c->tail carries the end of
 * the previous buffer so that a stamp split across two reads still parses. */
static void scan(Conn *c, const char *buf, size_t n, int latency) {
    int64_t now = latency ? real_us() : 0;
    const char *p = buf, *end = buf + n;
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        c->lines++;
        if (latency && g_lat_seen++ >= g_lat_skip) {
            int64_t st;
            if (nl - buf >= 21) {
                st = parse_stamp(nl, buf);
            } else { /* stitch the carried tail and the head of this buffer */
                char tmp[64];
                size_t head = (size_t)(nl - buf);
                memcpy(tmp, c->tail, c->tail_len);
                memcpy(tmp + c->tail_len, buf, head);
                st = parse_stamp(tmp + c->tail_len + head, tmp);
            }
            if (st < 0)
                g_bad_stamps++;
            else
                add_latency(now - st);
        }
        p = nl + 1;
    }
    if (latency) {
        if (n >= sizeof c->tail) {
            memcpy(c->tail, end - sizeof c->tail, sizeof c->tail);
            c->tail_len = sizeof c->tail;
        } else {
            size_t keep = c->tail_len + n > sizeof c->tail ? sizeof c->tail - n : c->tail_len;
            memmove(c->tail, c->tail + c->tail_len - keep, keep);
            memcpy(c->tail + keep, buf, n);
            c->tail_len = keep + n;
        }
    }
}

/* Octet-counted frames: each complete frame is a "line"; its MSG ends with the stamp. */
static void scan_octet(Conn *c, const char *buf, size_t n, int latency) {
    int64_t now = latency ? real_us() : 0;
    size_t i = 0;
    while (i < n) {
        if (c->need == 0) {
            char ch = buf[i++];
            if (ch >= '0' && ch <= '9' && c->len_acc < (1ULL << 40)) {
                c->len_acc = c->len_acc * 10 + (uint64_t)(ch - '0');
            } else if (ch == ' ' && c->len_acc > 0) {
                c->need = c->len_acc;
                c->len_acc = 0;
                c->ftail_len = 0;
            } else { /* not a frame: count it and resynchronise on the next digits */
                g_bad_frames++;
                c->len_acc = 0;
            }
            continue;
        }
        size_t take = (size_t)(n - i < c->need ? n - i : c->need);
        if (latency) {
            const char *p = buf + i;
            size_t k = take;
            if (k >= sizeof c->ftail) {
                memcpy(c->ftail, p + k - sizeof c->ftail, sizeof c->ftail);
                c->ftail_len = sizeof c->ftail;
            } else {
                size_t keep = c->ftail_len + k > sizeof c->ftail ? sizeof c->ftail - k : c->ftail_len;
                memmove(c->ftail, c->ftail + c->ftail_len - keep, keep);
                memcpy(c->ftail + keep, p, k);
                c->ftail_len = keep + k;
            }
        }
        i += take;
        c->need -= take;
        if (c->need == 0) {
            c->lines++;
            if (latency && g_lat_seen++ >= g_lat_skip) {
                size_t e = c->ftail_len;
                if (e && c->ftail[e - 1] == '\n') e--;
                int64_t st = parse_stamp(c->ftail + e, c->ftail);
                if (st < 0)
                    g_bad_stamps++;
                else
                    add_latency(now - st);
            }
        }
    }
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static double pct(double q) {
    if (!g_lat_n) return -1;
    size_t i = (size_t)(q * (double)(g_lat_n - 1) + 0.5);
    return g_lat[i] / 1000.0;
}

static void report(const char *status, int latency) {
    for (int i = 0; i < g_nconn; i++) g_lines += g_conns[i].lines;
    printf("{\"status\":\"%s\",\"bytes\":%llu,\"lines\":%llu,\"conns\":%d,"
           "\"t_start\":%.6f,\"t_first\":%.6f,\"t_last\":%.6f",
           status, (unsigned long long)g_bytes, (unsigned long long)g_lines, g_nconn, g_t_start, g_t_first, g_t_last);
    printf(",\"per_conn_bytes\":[");
    for (int i = 0; i < g_nconn; i++) printf("%s%llu", i ? "," : "", (unsigned long long)g_conns[i].bytes);
    printf("]");
    if (g_bad_frames) printf(",\"bad_frames\":%llu", (unsigned long long)g_bad_frames);
    if (latency) {
        qsort(g_lat, g_lat_n, sizeof *g_lat, cmp_i32);
        printf(",\"lat_n\":%zu,\"lat_bad\":%llu,\"lat_p50_ms\":%.3f,\"lat_p99_ms\":%.3f,\"lat_max_ms\":%.3f", g_lat_n,
               (unsigned long long)g_bad_stamps, pct(0.5), pct(0.99), g_lat_n ? g_lat[g_lat_n - 1] / 1000.0 : -1.0);
    }
    printf("}\n");
    fflush(stdout);
}

/* "bytes lines t_last\n" into path (via rename), for harnesses that watch progress */
static void write_progress(const char *path) {
    char tmp[4096];
    uint64_t lines = 0;
    for (int i = 0; i < g_nconn; i++) lines += g_conns[i].lines;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%llu %llu %.6f\n", (unsigned long long)g_bytes, (unsigned long long)lines, g_t_last);
    fclose(f);
    rename(tmp, path);
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback_addr("127.0.0.1:0");
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &al)) die("bind");
    printf("%d\n", ntohs(a.sin_port));
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    const char *listen_spec = "127.0.0.1:0", *port_file = NULL, *mode = NULL, *progress = NULL;
    uint64_t expect_bytes = 0, expect_lines = 0;
    int latency = 0;
    double timeout = 0, idle = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--free-port")) return free_port();
        if (!strcmp(a, "--latency")) { latency = 1; continue; }
        if (!v) fail("missing option value");
        if (!strcmp(a, "--listen")) listen_spec = v;
        else if (!strcmp(a, "--port-file")) port_file = v;
        else if (!strcmp(a, "--progress")) progress = v;
        else if (!strcmp(a, "--mode")) mode = v;
        else if (!strcmp(a, "--expect-bytes")) expect_bytes = parse_size(v);
        else if (!strcmp(a, "--expect-lines")) expect_lines = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--latency-skip")) g_lat_skip = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--timeout")) timeout = atof(v);
        else if (!strcmp(a, "--idle")) idle = atof(v);
        else fail("unknown option");
        i++;
    }
    if (!mode) mode = (latency || expect_lines) ? "read" : "splice";
    int use_splice = !strcmp(mode, "splice");
    int octet = !strcmp(mode, "octet");
    if (!use_splice && !octet && strcmp(mode, "read")) fail("--mode: read, splice or octet");
    if (use_splice && (latency || expect_lines)) fail("--mode splice cannot count lines");
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = loopback_addr(listen_spec);
    socklen_t al = sizeof addr;
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr)) die("bind");
    if (listen(lfd, 128)) die("listen");
    getsockname(lfd, (struct sockaddr *)&addr, &al);
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f) die(tmp);
        fprintf(f, "%d\n", ntohs(addr.sin_port));
        fclose(f);
        if (rename(tmp, port_file)) die("rename");
    }

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    int devnull = open("/dev/null", O_WRONLY);
    char *buf = malloc(BUFSZ);
    g_t_start = mono_s();
    const char *status = "stopped";
    double last_progress = 0;
    for (;;) {
        if (g_stop) break;
        if ((expect_bytes && g_bytes >= expect_bytes) ) { status = "done"; break; }
        if (expect_lines) {
            uint64_t l = 0;
            for (int i = 0; i < g_nconn; i++) l += g_conns[i].lines;
            if (l >= expect_lines) { status = "done"; break; }
        }
        double now = mono_s();
        if (progress && now - last_progress >= 0.2) {
            write_progress(progress);
            last_progress = now;
        }
        if (timeout > 0 && now - g_t_start > timeout) { status = "timeout"; break; }
        if (idle > 0 && g_t_first > 0 && now - g_t_last > idle) { status = "idle"; break; }
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, 100);
        if (k < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int j = 0; j < k; j++) {
            if (evs[j].data.u32 == UINT32_MAX) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0) break;
                    if (g_nconn == MAXCONN) fail("too many connections");
                    Conn *c = &g_conns[g_nconn];
                    memset(c, 0, sizeof *c);
                    c->fd = fd;
                    if (use_splice) {
                        int p[2];
                        if (pipe2(p, O_NONBLOCK)) die("pipe2");
                        fcntl(p[1], F_SETPIPE_SZ, (int)(1 * MiB));
                        c->pipe_r = p[0];
                        c->pipe_w = p[1];
                    }
                    struct epoll_event cev = {.events = EPOLLIN, .data.u32 = (uint32_t)g_nconn};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                    g_nconn++;
                    g_open++;
                }
                continue;
            }
            Conn *c = &g_conns[evs[j].data.u32];
            for (int rounds = 0; rounds < 64; rounds++) {
                ssize_t r;
                if (use_splice) {
                    r = splice(c->fd, NULL, c->pipe_w, NULL, 1 * MiB, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                    if (r > 0) {
                        ssize_t left = r;
                        while (left > 0) {
                            ssize_t s = splice(c->pipe_r, NULL, devnull, NULL, (size_t)left, SPLICE_F_MOVE);
                            if (s <= 0) {
                                if (s < 0 && errno == EINTR) continue;
                                die("splice(pipe->/dev/null)");
                            }
                            left -= s;
                        }
                    }
                } else {
                    r = read(c->fd, buf, BUFSZ);
                    if (r > 0) {
                        if (octet)
                            scan_octet(c, buf, (size_t)r, latency);
                        else
                            scan(c, buf, (size_t)r, latency);
                    }
                }
                if (r > 0) {
                    double t = mono_s();
                    if (g_t_first == 0) g_t_first = t;
                    g_t_last = t;
                    c->bytes += (uint64_t)r;
                    g_bytes += (uint64_t)r;
                    if (expect_bytes && g_bytes >= expect_bytes) break;
                    continue;
                }
                if (r == 0 || (errno != EAGAIN && errno != EINTR)) { /* closed or reset */
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    if (use_splice) {
                        close(c->pipe_r);
                        close(c->pipe_w);
                    }
                    g_open--;
                }
                break;
            }
        }
    }
    report(status, latency);
    return !strcmp(status, "done") || !strcmp(status, "idle") ? 0 : (!strcmp(status, "timeout") ? 3 : 1);
}
