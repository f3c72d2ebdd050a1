/* frame_baseline: the practical limit of a copying event framer, the reference
 * point for logsplice's event outputs (format: syslog / json), which cannot
 * splice: every byte is read into userspace, framed and written out.
 *
 *   frame_baseline [--json] FILE HOST PORT
 *
 * Reads FILE in 1 MiB blocks, cuts lines with memchr and frames each one:
 *   default  RFC 5424 with RFC 6587 octet counting:
 *            LEN <14>1 TIMESTAMP HOST bench - - [logsplice@32473 file="FILE"
 *            offset="N" input="bench"] LINE
 *   --json   one NDJSON object per line, the line escaped per RFC 8259
 *            ("\ and control bytes; 8 plain bytes checked at a time):
 *            {"timestamp":"..","host":"..","input":"bench","file":"FILE",
 *             "offset":N,"message":"LINE"}
 * and writes the frames to a TCP socket (127.0.0.0/8 only) in 1 MiB writes.
 * The timestamp is taken once per block (as an agent stamps a batch). No
 * UTF-8 validation and no SD-value escaping of FILE: an upper bound for the
 * agent, which does both. A last line without newline is framed too.
 * Prints "frames N in_bytes B out_bytes O seconds S" to stderr.
 */
#include "common.h"

#include <sys/socket.h>
#include <sys/time.h>

#define BLOCK (1 * MiB)
#define OUTBUF (1 * MiB)

static char *out;
static size_t out_len, out_cap;
static int sock;
static uint64_t out_total;

static void flush_out(void) {
    write_all(sock, out, out_len);
    out_total += out_len;
    out_len = 0;
}

/* Room for n more bytes: flush when the buffer is full, grow for a huge frame. */
static void reserve(size_t n) {
    if (out_len + n <= out_cap) return;
    if (out_len) flush_out();
    if (n > out_cap) {
        out_cap = n;
        out = realloc(out, out_cap);
        if (!out) fail("out of memory");
    }
}

static void put(const void *p, size_t n) {
    memcpy(out + out_len, p, n);
    out_len += n;
}

/* "2026-11-30T21:20:00.123456Z" (27 bytes) */
static void timestamp(char buf[28]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tmp[96]; /* room for what the compiler thinks the fields could be */
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
    memcpy(buf, tmp, 27);
    buf[27] = 0;
}

static size_t u64(char *p, uint64_t v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
    return n;
}

static const char *g_host, *g_file;
static char g_stamp[28];

static void frame_syslog(const char *line, size_t n, uint64_t offset) {
    char head[512 + 4096];
    int h = snprintf(head, sizeof head, "<14>1 %s %s bench - - [logsplice@32473 file=\"%s\" offset=\"",
                     g_stamp, g_host, g_file);
    if (h < 0 || (size_t)h > sizeof head - 64) fail("header too long");
    size_t hl = (size_t)h;
    hl += u64(head + hl, offset);
    memcpy(head + hl, "\" input=\"bench\"] ", 17);
    hl += 17;
    char len[24];
    size_t ll = u64(len, hl + n);
    len[ll++] = ' ';
    reserve(ll + hl + n);
    put(len, ll);
    put(head, hl);
    put(line, n);
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
static inline uint64_t has_zero(uint64_t w) { return (w - ONES) & ~w & HIGHS; }
static inline int plain8(const char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return !(has_zero(w & (ONES * 0xE0)) | has_zero(w ^ (ONES * '"')) | has_zero(w ^ (ONES * '\\')));
}

static void escape_json(const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        while (i + 8 <= n && plain8(s + i)) i += 8;
        while (i < n) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20 || c == '"' || c == '\\') break;
            i++;
        }
        put(s + start, i - start);
        if (i >= n) break;
        unsigned char c = (unsigned char)s[i++];
        char e[6] = {'\\', 0, 0, 0, 0, 0};
        switch (c) {
        case '"': e[1] = '"'; put(e, 2); break;
        case '\\': e[1] = '\\'; put(e, 2); break;
        case '\n': e[1] = 'n'; put(e, 2); break;
        case '\t': e[1] = 't'; put(e, 2); break;
        case '\r': e[1] = 'r'; put(e, 2); break;
        case '\b': e[1] = 'b'; put(e, 2); break;
        case '\f': e[1] = 'f'; put(e, 2); break;
        default:
            e[1] = 'u'; e[2] = '0'; e[3] = '0'; e[4] = hex[c >> 4]; e[5] = hex[c & 15];
            put(e, 6);
        }
    }
}

static void frame_json(const char *line, size_t n, uint64_t offset) {
    char head[512 + 4096];
    int h = snprintf(head, sizeof head,
                     "{\"timestamp\":\"%s\",\"host\":\"%s\",\"input\":\"bench\",\"file\":\"%s\","
                     "\"offset\":",
                     g_stamp, g_host, g_file);
    if (h < 0 || (size_t)h > sizeof head - 64) fail("header too long");
    size_t hl = (size_t)h;
    hl += u64(head + hl, offset);
    memcpy(head + hl, ",\"message\":\"", 12);
    hl += 12;
    reserve(hl + 6 * n + 3); /* worst case: every byte a \u00XX */
    put(head, hl);
    escape_json(line, n);
    put("\"}\n", 3);
}

int main(int argc, char **argv) {
    int json = 0;
    int a = 1;
    if (a < argc && !strcmp(argv[a], "--json")) {
        json = 1;
        a++;
    }
    if (argc - a != 3) {
        fprintf(stderr, "usage: frame_baseline [--json] FILE HOST PORT\n");
        return 2;
    }
    g_file = argv[a];
    int fd = open(g_file, O_RDONLY);
    if (fd < 0) die(g_file);
    char spec[128];
    snprintf(spec, sizeof spec, "%s:%s", argv[a + 1], argv[a + 2]);
    struct sockaddr_in addr = loopback_addr(spec);
    sock = socket(AF_INET, SOCK_STREAM, 0);
    if (sock < 0) die("socket");
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr)) die("connect");
    char host[256];
    if (gethostname(host, sizeof host - 1)) strcpy(host, "localhost");
    host[sizeof host - 1] = 0;
    g_host = host;

    out_cap = OUTBUF;
    out = malloc(out_cap);
    size_t cap = BLOCK;
    char *buf = malloc(cap);
    if (!out || !buf) fail("out of memory");
    size_t have = 0;        /* bytes in buf: an incomplete line carried over, then new ones */
    uint64_t base = 0;      /* file offset of buf[0] */
    uint64_t frames = 0, in_total = 0;
    double t0 = mono_s();
    int eof = 0;
    while (!eof) {
        if (have == cap) { /* one line longer than the buffer: grow it */
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) fail("out of memory");
        }
        ssize_t r = read(fd, buf + have, cap - have);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("read");
        }
        if (r == 0) eof = 1;
        in_total += (uint64_t)r;
        have += (size_t)r;
        timestamp(g_stamp);
        size_t pos = 0;
        for (;;) {
            char *nl = memchr(buf + pos, '\n', have - pos);
            size_t end;
            if (nl) {
                end = (size_t)(nl - buf);
            } else if (eof && pos < have) {
                end = have; /* a last line without newline */
            } else {
                break;
            }
            if (json) frame_json(buf + pos, end - pos, base + pos);
            else frame_syslog(buf + pos, end - pos, base + pos);
            frames++;
            pos = nl ? end + 1 : end;
        }
        memmove(buf, buf + pos, have - pos);
        have -= pos;
        base += pos;
    }
    if (out_len) flush_out();
    double dt = mono_s() - t0;
    fprintf(stderr, "frames %llu in_bytes %llu out_bytes %llu seconds %.3f\n",
            (unsigned long long)frames, (unsigned long long)in_total,
            (unsigned long long)out_total, dt);
    close(sock);
    return 0;
}
