/* tls_receiver: a TLS collector on 127.0.0.1 for the benchmarks: terminates TLS with OpenSSL,
 * counts the plaintext bytes and throws them away.
 *
 *   tls_receiver --cert FILE --key FILE [--listen 127.0.0.1:PORT] [--port-file F]
 *                [--expect-bytes N] [--timeout S] [--idle S] [--progress FILE]
 *
 * Accepts any number of connections (also reconnects), runs each handshake non-blocking under
 * epoll and SSL_reads into a 1 MiB buffer. It exits when the expected bytes have arrived
 * (exit 0), at --timeout (exit 3), after --idle seconds without data once data has flowed
 * (exit 0), or on SIGTERM/SIGINT (exit 1), and prints one JSON object on stdout, as receiver.c
 * does, plus the protocol and cipher negotiated on the first connection. Times t_* are
 * CLOCK_MONOTONIC seconds.
 */
#include "common.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define MAXCONN 256
#define BUFSZ (1 * MiB)

typedef struct {
    int fd;
    SSL *ssl;
    int open;
    uint64_t bytes;
} Conn;

static Conn g_conns[MAXCONN];
static int g_nconn;
static uint64_t g_bytes;
static double g_t_start, g_t_first, g_t_last;
static char g_protocol[64], g_cipher[128];
static uint64_t g_handshake_failures;
static volatile sig_atomic_t g_stop;

static void on_term(int sig) {
    (void)sig;
    g_stop = 1;
}

static void close_conn(int ep, Conn *c) {
    if (!c->open) return;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    SSL_free(c->ssl);
    close(c->fd);
    c->ssl = NULL;
    c->open = 0;
}

static void write_progress(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%llu 0 %.6f\n", (unsigned long long)g_bytes, g_t_last);
    fclose(f);
    rename(tmp, path);
}

/* Handshake (if not done) and read everything available; 0 when the connection is gone. */
static int serve(Conn *c, char *buf) {
    if (!SSL_is_init_finished(c->ssl)) {
        ERR_clear_error();
        int rc = SSL_do_handshake(c->ssl);
        if (rc != 1) {
            int err = SSL_get_error(c->ssl, rc);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return 1;
            char why[256] = "closed";
            unsigned long e = ERR_get_error();
            if (e) ERR_error_string_n(e, why, sizeof why);
            fprintf(stderr, "tls_receiver: handshake failed: %s\n", why);
            g_handshake_failures++;
            return 0;
        }
        if (!g_protocol[0]) {
            snprintf(g_protocol, sizeof g_protocol, "%s", SSL_get_version(c->ssl));
            snprintf(g_cipher, sizeof g_cipher, "%s", SSL_get_cipher_name(c->ssl));
        }
    }
    for (int rounds = 0; rounds < 64; rounds++) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, buf, BUFSZ);
        if (n > 0) {
            double t = mono_s();
            if (g_t_first == 0) g_t_first = t;
            g_t_last = t;
            c->bytes += (uint64_t)n;
            g_bytes += (uint64_t)n;
            continue;
        }
        int err = SSL_get_error(c->ssl, n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return 1;
        return 0; /* close_notify, EOF or an error: the connection is done */
    }
    return 1;
}

int main(int argc, char **argv) {
    const char *listen_spec = "127.0.0.1:0", *port_file = NULL, *progress = NULL;
    const char *cert = NULL, *key = NULL;
    uint64_t expect_bytes = 0;
    double timeout = 0, idle = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) fail("missing option value");
        if (!strcmp(a, "--listen")) listen_spec = v;
        else if (!strcmp(a, "--port-file")) port_file = v;
        else if (!strcmp(a, "--progress")) progress = v;
        else if (!strcmp(a, "--cert")) cert = v;
        else if (!strcmp(a, "--key")) key = v;
        else if (!strcmp(a, "--expect-bytes")) expect_bytes = parse_size(v);
        else if (!strcmp(a, "--timeout")) timeout = atof(v);
        else if (!strcmp(a, "--idle")) idle = atof(v);
        else fail("unknown option");
        i++;
    }
    if (!cert || !key) fail("--cert and --key are required");
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGPIPE, SIG_IGN);

    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        fail("cannot load the certificate or key");

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
    char *buf = malloc(BUFSZ);
    if (!buf) die("malloc");
    g_t_start = mono_s();
    const char *status = "stopped";
    double last_progress = 0;
    for (;;) {
        if (g_stop) break;
        if (expect_bytes && g_bytes >= expect_bytes) { status = "done"; break; }
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
                    c->open = 1;
                    c->ssl = SSL_new(ctx);
                    SSL_set_fd(c->ssl, fd);
                    SSL_set_accept_state(c->ssl);
                    struct epoll_event cev = {.events = EPOLLIN, .data.u32 = (uint32_t)g_nconn};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                    g_nconn++;
                }
                continue;
            }
            Conn *c = &g_conns[evs[j].data.u32];
            if (c->open && !serve(c, buf)) close_conn(ep, c);
        }
        /* A connection that stopped after 64 rounds may keep bytes inside OpenSSL that the
         * socket no longer signals: serve those here. */
        for (int i = 0; i < g_nconn; i++) {
            Conn *c = &g_conns[i];
            if (c->open && SSL_is_init_finished(c->ssl) && SSL_pending(c->ssl) > 0 && !serve(c, buf))
                close_conn(ep, c);
        }
    }
    printf("{\"status\":\"%s\",\"bytes\":%llu,\"lines\":0,\"conns\":%d,"
           "\"t_start\":%.6f,\"t_first\":%.6f,\"t_last\":%.6f,"
           "\"protocol\":\"%s\",\"cipher\":\"%s\",\"handshake_failures\":%llu}\n",
           status, (unsigned long long)g_bytes, g_nconn, g_t_start, g_t_first, g_t_last, g_protocol,
           g_cipher, (unsigned long long)g_handshake_failures);
    fflush(stdout);
    return !strcmp(status, "done") || !strcmp(status, "idle") ? 0 : (!strcmp(status, "timeout") ? 3 : 1);
}
