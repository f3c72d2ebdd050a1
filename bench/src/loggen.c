/* loggen: seeded generator of nginx-access-like log lines (100..300 bytes).
 *
 *   loggen file   PATH BYTES [SEED]          write a file of exactly BYTES bytes
 *   loggen append PATH RATE SECONDS [SEED]   append RATE lines/s for SECONDS
 *                                            (RATE 0 = as fast as possible; then
 *                                            SECONDS may be given as "bytes:N")
 *   loggen mkfiles DIR COUNT [SEED]          DIR/f00000.log .. one line each
 *   loggen multi  DIR COUNT ACTIVE RATE SECONDS [SEED]
 *                                            append RATE lines/s spread round-robin
 *                                            over the first ACTIVE files of mkfiles
 *
 * Every line ends with " ts=SSSSSSSSSS.UUUUUU\n": the wall-clock time at which the
 * line was handed to write() (append/multi), or a synthetic time (file/mkfiles).
 * The receiver computes end-to-end latency from it. Each mode prints
 * "lines=N bytes=B" on stdout when done.
 *
 * Lines are built with hand-rolled formatting from a xorshift RNG so that a
 * 1 GiB file takes about a second. The same SEED gives the same lines (the
 * stamps of append/multi excepted).
 */
#include "common.h"

#include <signal.h>
#include <sys/stat.h>

#define LINE_MIN 100
#define LINE_MAX 300
#define STAMP_LEN 21 /* " ts=" + 10 + "." + 6 */

typedef struct {
    uint64_t s;
} Rng;

static inline uint64_t rnd(Rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}
static inline unsigned pick(Rng *r, unsigned n) { return (unsigned)((rnd(r) >> 33) % n); }

static const char *kMethods[] = {"GET", "GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD"};
static const char *kPaths[] = {"/", "/index.html", "/api/v1/items", "/api/v1/users", "/api/v2/orders",
                               "/static/js/app.bundle.js", "/static/css/site.css", "/images/logo.png",
                               "/healthz", "/login", "/search", "/cart/checkout", "/feed.xml",
                               "/wp-login.php", "/favicon.ico", "/products/category/shoes"};
static const char *kQueryKeys[] = {"id", "page", "q", "sort", "limit", "session", "ref", "lang"};
static const int kStatus[] = {200, 200, 200, 200, 200, 200, 304, 301, 404, 500, 201, 204, 403};
static const char *kReferers[] = {"-", "-", "-", "https://www.example.com/", "https://www.example.com/search?q=shoes",
                                  "https://news.example.org/article/2024/11/20/logs", "https://m.example.net/"};
static const char *kAgents[] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "curl/7.88.1",
    "Go-http-client/1.1",
    "python-requests/2.31.0",
    "Prometheus/2.45.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
};
static const char *kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static inline char *put_str(char *p, const char *s) {
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}
static inline char *put_u(char *p, uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}
static inline char *put_u0(char *p, uint64_t v, int width) {
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* "[20/Nov/2025:23:16:01 +0000]" for a unix time; cached per second */
static char *put_time_local(char *p, int64_t sec) {
    static int64_t cached = -1;
    static char buf[40];
    static size_t len;
    if (sec != cached) {
        struct tm tm;
        time_t t = (time_t)sec;
        gmtime_r(&t, &tm);
        char *q = buf;
        *q++ = '[';
        q = put_u0(q, (uint64_t)tm.tm_mday, 2);
        *q++ = '/';
        q = put_str(q, kMonths[tm.tm_mon]);
        *q++ = '/';
        q = put_u0(q, (uint64_t)tm.tm_year + 1900, 4);
        *q++ = ':';
        q = put_u0(q, (uint64_t)tm.tm_hour, 2);
        *q++ = ':';
        q = put_u0(q, (uint64_t)tm.tm_min, 2);
        *q++ = ':';
        q = put_u0(q, (uint64_t)tm.tm_sec, 2);
        q = put_str(q, " +0000]");
        len = (size_t)(q - buf);
        cached = sec;
    }
    memcpy(p, buf, len);
    return p + len;
}

/* One line (without the stamp) into p; returns its length. */
static size_t body(Rng *r, char *p0, int64_t sec) {
    char *p = p0;
    p = put_u(p, 10 + pick(r, 240));
    *p++ = '.';
    p = put_u(p, pick(r, 256));
    *p++ = '.';
    p = put_u(p, pick(r, 256));
    *p++ = '.';
    p = put_u(p, 1 + pick(r, 254));
    p = put_str(p, pick(r, 8) ? " - - " : " - alice ");
    p = put_time_local(p, sec);
    p = put_str(p, " \"");
    p = put_str(p, kMethods[pick(r, N(kMethods))]);
    *p++ = ' ';
    p = put_str(p, kPaths[pick(r, N(kPaths))]);
    unsigned nq = pick(r, 4);
    for (unsigned i = 0; i < nq; i++) {
        *p++ = i ? '&' : '?';
        p = put_str(p, kQueryKeys[pick(r, N(kQueryKeys))]);
        *p++ = '=';
        p = put_u(p, rnd(r) >> (40 + pick(r, 20)));
    }
    p = put_str(p, " HTTP/1.1\" ");
    p = put_u(p, (uint64_t)kStatus[pick(r, N(kStatus))]);
    *p++ = ' ';
    p = put_u(p, pick(r, 4) ? pick(r, 40000) : pick(r, 3000000));
    p = put_str(p, " \"");
    p = put_str(p, kReferers[pick(r, N(kReferers))]);
    p = put_str(p, "\" \"");
    p = put_str(p, kAgents[pick(r, N(kAgents))]);
    p = put_str(p, "\" rt=");
    unsigned ms = pick(r, 8) ? pick(r, 120) : pick(r, 5000);
    p = put_u(p, ms / 1000);
    *p++ = '.';
    p = put_u0(p, ms % 1000, 3);
    return (size_t)(p - p0);
}

static inline char *put_stamp(char *p, int64_t us) {
    p = put_str(p, " ts=");
    p = put_u0(p, (uint64_t)(us / 1000000), 10);
    *p++ = '.';
    p = put_u0(p, (uint64_t)(us % 1000000), 6);
    *p++ = '\n';
    return p;
}

/* A complete line of LINE_MIN..LINE_MAX bytes stamped with `us`. */
static size_t make_line(Rng *r, char *p, int64_t us) {
    for (;;) {
        size_t n = body(r, p, us / 1000000);
        size_t total = n + STAMP_LEN + 1;
        if (total < LINE_MIN) {
            /* pad the rt field's neighbourhood with a request id */
            char *q = p + n;
            q = put_str(q, " rid=");
            while ((size_t)(q - p) + STAMP_LEN + 1 < LINE_MIN) *q++ = (char)('a' + pick(r, 26));
            n = (size_t)(q - p);
            total = n + STAMP_LEN + 1;
        }
        if (total > LINE_MAX) continue; /* rare: draw again */
        put_stamp(p + n, us);
        return total;
    }
}

/* A line of exactly `want` bytes (want <= LINE_MAX): the body is cut or padded. */
static size_t fit_line(Rng *r, char *p, int64_t us, size_t want) {
    if (want < STAMP_LEN + 2) {
        memset(p, 'x', want - 1);
        p[want - 1] = '\n';
        return want;
    }
    size_t n = body(r, p, us / 1000000);
    size_t keep = want - STAMP_LEN - 1;
    while (n < keep) p[n++] = 'x';
    put_stamp(p + keep, us);
    return want;
}

static const int64_t kSyntheticBase = 1732000000LL * 1000000; /* Nov 2024 */

static int cmd_file(const char *path, uint64_t bytes, uint64_t seed) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(path);
    const size_t cap = 4 * MiB;
    char *buf = malloc(cap + 1024);
    Rng r = {seed * 0x9E3779B97F4A7C15ULL + 1};
    uint64_t done = 0, lines = 0;
    int64_t us = kSyntheticBase;
    while (done < bytes) {
        size_t n = 0;
        while (n < cap && done + n < bytes) {
            uint64_t left = bytes - done - n;
            us += 200 + pick(&r, 1000);
            if (left >= 2 * LINE_MAX)
                n += make_line(&r, buf + n, us);
            else /* the tail: one or two lines that end exactly at `bytes` */
                n += fit_line(&r, buf + n, us, left <= LINE_MAX ? (size_t)left : (size_t)left / 2);
            lines++;
        }
        write_all(fd, buf, n);
        done += n;
    }
    if (close(fd)) die("close");
    free(buf);
    printf("lines=%llu bytes=%llu\n", (unsigned long long)lines, (unsigned long long)done);
    return 0;
}

static volatile sig_atomic_t g_stop;
static void on_term(int sig) {
    (void)sig;
    g_stop = 1;
}

static void sleep_until(double t) {
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !g_stop) {
    }
}

/* Append lines to fds[0..nfd) round-robin at `rate` lines/s (0 = flat out),
 * until `seconds` elapsed or `max_bytes` written (whichever is set).
 * Lines due in one tick are written with one write() per file; each line is
 * stamped just before that write. */
static int append_loop(int *fds, int nfd, double rate, double seconds, uint64_t max_bytes, uint64_t seed) {
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    const double tick = 0.001;
    size_t cap = 4 * MiB;
    char **bufs = calloc((size_t)nfd, sizeof *bufs);
    size_t *fill = calloc((size_t)nfd, sizeof *fill);
    for (int i = 0; i < nfd; i++) bufs[i] = malloc(cap + 1024);
    Rng r = {seed * 0x9E3779B97F4A7C15ULL + 7};
    uint64_t lines = 0, bytes = 0, target_lines = rate > 0 ? (uint64_t)(rate * seconds + 0.5) : UINT64_MAX;
    double t0 = mono_s(), next = t0;
    int rr = 0;
    while (!g_stop && lines < target_lines && (max_bytes == 0 || bytes < max_bytes)) {
        uint64_t due;
        if (rate > 0) {
            next += tick;
            sleep_until(next);
            double el = mono_s() - t0;
            due = (uint64_t)(el * rate) - lines;
            if (lines + due > target_lines) due = target_lines - lines;
        } else {
            due = 16384; /* flat out: about 3 MiB per write */
        }
        int64_t us = real_us();
        for (uint64_t k = 0; k < due; k++) {
            int i = rr;
            rr = (rr + 1) % nfd;
            size_t len = make_line(&r, bufs[i] + fill[i], us);
            if (max_bytes && bytes + len > max_bytes) {
                due = k;
                max_bytes = bytes; /* stop after this batch, at a line boundary */
                break;
            }
            fill[i] += len;
            bytes += len;
            if (fill[i] >= cap) {
                write_all(fds[i], bufs[i], fill[i]);
                fill[i] = 0;
            }
        }
        lines += due;
        for (int i = 0; i < nfd; i++) {
            if (fill[i]) write_all(fds[i], bufs[i], fill[i]);
            fill[i] = 0;
        }
        if (rate <= 0 && seconds > 0 && mono_s() - t0 >= seconds) break;
    }
    double el = mono_s() - t0;
    printf("lines=%llu bytes=%llu seconds=%.3f\n", (unsigned long long)lines, (unsigned long long)bytes, el);
    for (int i = 0; i < nfd; i++) free(bufs[i]);
    free(bufs);
    free(fill);
    return 0;
}

static void file_name(char *out, size_t n, const char *dir, int i) { snprintf(out, n, "%s/f%05d.log", dir, i); }

static int cmd_mkfiles(const char *dir, int count, uint64_t seed) {
    Rng r = {seed * 0x9E3779B97F4A7C15ULL + 3};
    char path[4096], line[1024];
    uint64_t bytes = 0;
    for (int i = 0; i < count; i++) {
        file_name(path, sizeof path, dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) die(path);
        size_t len = make_line(&r, line, kSyntheticBase + (int64_t)i * 1000);
        write_all(fd, line, len);
        bytes += len;
        close(fd);
    }
    printf("lines=%d bytes=%llu\n", count, (unsigned long long)bytes);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "file"))
        return cmd_file(argv[2], parse_size(argv[3]), argc > 4 ? strtoull(argv[4], NULL, 10) : 1);
    if (argc >= 5 && !strcmp(argv[1], "append")) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0) die(argv[2]);
        double rate = atof(argv[3]);
        double seconds = 0;
        uint64_t max_bytes = 0;
        if (!strncmp(argv[4], "bytes:", 6))
            max_bytes = parse_size(argv[4] + 6);
        else
            seconds = atof(argv[4]);
        return append_loop(&fd, 1, rate, seconds, max_bytes, argc > 5 ? strtoull(argv[5], NULL, 10) : 1);
    }
    if (argc >= 4 && !strcmp(argv[1], "mkfiles"))
        return cmd_mkfiles(argv[2], atoi(argv[3]), argc > 4 ? strtoull(argv[4], NULL, 10) : 1);
    if (argc >= 7 && !strcmp(argv[1], "multi")) {
        int count = atoi(argv[3]), active = atoi(argv[4]);
        if (active < 1 || active > count) fail("ACTIVE must be 1..COUNT");
        int *fds = calloc((size_t)active, sizeof *fds);
        char path[4096];
        for (int i = 0; i < active; i++) {
            /* spread the active files over the whole name range */
            file_name(path, sizeof path, argv[2], (int)((int64_t)i * count / active));
            fds[i] = open(path, O_WRONLY | O_APPEND);
            if (fds[i] < 0) die(path);
        }
        return append_loop(fds, active, atof(argv[5]), atof(argv[6]), 0, argc > 7 ? strtoull(argv[7], NULL, 10) : 1);
    }
    fprintf(stderr,
            "usage: loggen file PATH BYTES [SEED]\n"
            "       loggen append PATH RATE SECONDS|bytes:N [SEED]\n"
            "       loggen mkfiles DIR COUNT [SEED]\n"
            "       loggen multi DIR COUNT ACTIVE RATE SECONDS [SEED]\n");
    return 1;
}
