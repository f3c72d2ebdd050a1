/* Small helpers shared by the bench programs (loggen, receiver, baseline).
 * Linux only; every program is single-file C plus this header. */
#ifndef LSB_COMMON_H
#define LSB_COMMON_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KiB (1024ULL)
#define MiB (1024ULL * 1024ULL)

static inline void die(const char *what) {
    fprintf(stderr, "fatal: %s: %s\n", what, strerror(errno));
    exit(2);
}

static inline void fail(const char *what) {
    fprintf(stderr, "fatal: %s\n", what);
    exit(2);
}

static inline double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* wall-clock microseconds since the epoch: the stamp format shared by the
 * generator and the receiver (the two run on the same host) */
static inline int64_t real_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* "64M", "1G", "512k", "1000" -> bytes (binary multiples) */
static inline uint64_t parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s) fail("bad size");
    switch (*end) {
    case 'k': case 'K': v *= (double)KiB; break;
    case 'm': case 'M': v *= (double)MiB; break;
    case 'g': case 'G': v *= (double)(1024 * MiB); break;
    case '\0': break;
    default: fail("bad size suffix");
    }
    return (uint64_t)v;
}

static inline void write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write");
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Parse "127.0.0.1:PORT" or "PORT"; only loopback addresses are accepted:
 * the benchmark must never send traffic anywhere else. */
#include <arpa/inet.h>
#include <netinet/in.h>
static inline struct sockaddr_in loopback_addr(const char *spec) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    const char *colon = strrchr(spec, ':');
    const char *port = colon ? colon + 1 : spec;
    if (colon) {
        char host[64];
        size_t hl = (size_t)(colon - spec);
        if (hl >= sizeof host) fail("bad address");
        memcpy(host, spec, hl);
        host[hl] = 0;
        if (inet_pton(AF_INET, host, &a.sin_addr) != 1) fail("bad address");
        if ((ntohl(a.sin_addr.s_addr) >> 24) != 127) fail("only 127.0.0.0/8 addresses are allowed");
    } else {
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    a.sin_port = htons((uint16_t)atoi(port));
    return a;
}
#endif
