/* tls_baseline: the practical userspace limit for shipping a file over TLS: one connection,
 * the file read in 16 KiB pieces (one full TLS record each) and SSL_write'n, nothing else.
 *
 *   tls_baseline FILE ADDR CA_FILE
 *
 * Verifies the receiver's certificate against CA_FILE (for the address's IP), prints the
 * negotiated protocol and cipher on stdout, sends the file, closes with close_notify and exits 0
 * once the receiver closed too.
 * The socket is blocking: a single-purpose loop. The receiver and the harness time delivery.
 */
#include "common.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>

#define RECORD (16 * KiB)

static void ssl_fail(const char *what) {
    char why[256] = "unknown";
    unsigned long e = ERR_get_error();
    if (e) ERR_error_string_n(e, why, sizeof why);
    fprintf(stderr, "fatal: %s: %s\n", what, why);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc != 4) fail("usage: tls_baseline FILE ADDR CA_FILE");
    signal(SIGPIPE, SIG_IGN);
    int in = open(argv[1], O_RDONLY);
    if (in < 0) die(argv[1]);
    struct sockaddr_in a = loopback_addr(argv[2]);
    char host[64];
    inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);

    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) ssl_fail("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1) ssl_fail("CA file");

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) die("connect");
    SSL *ssl = SSL_new(ctx);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) ssl_fail("handshake");
    printf("negotiated %s %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    fflush(stdout);

    char *buf = malloc(RECORD);
    if (!buf) die("malloc");
    for (;;) {
        ssize_t n = read(in, buf, RECORD);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("read");
        }
        if (n == 0) break;
        /* Blocking socket, no partial writes: SSL_write takes all n bytes (one record). */
        if (SSL_write(ssl, buf, (int)n) != (int)n) ssl_fail("SSL_write");
    }
    /* close_notify, then wait for the receiver to close: closing with unread bytes (its
     * session tickets) would reset the connection and drop what it has not read yet. */
    SSL_shutdown(ssl);
    shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t n = read(fd, buf, RECORD);
        if (n > 0 || (n < 0 && errno == EINTR)) continue;
        break;
    }
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    return 0;
}
