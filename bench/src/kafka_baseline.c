/* kafka_baseline: the librdkafka denominator of the `kafka` benchmark. Produces every line of
 * a file (without its '\n') as one message, as fast as librdkafka takes them, with the
 * producer settings the logsplice kafka output uses by default (acks=all, idempotence,
 * linger.ms=5, no compression), then flushes and exits.
 *
 *   kafka_baseline [--no-fast-bins] [--dr] [--bounded BYTES] [--headers INPUT] FILE BOOTSTRAP TOPIC
 *
 * --headers: every message also carries the four headers a logsplice kafka output sends by
 * default, with the same names and values: host (gethostname), input (INPUT), path (FILE as
 * given) and offset (decimal file offset of the line's first byte), attached the same way
 * (rd_kafka_producev with RD_KAFKA_V_HEADER), so the baseline produces the same messages.
 * --no-fast-bins: mallopt(M_MXFAST, 0) first, as the logsplice kafka output does at start
 * (with headers glibc's fast-bin consolidation otherwise dominates; see docs/kafka.md), so the
 * allocator is tuned alike on both sides.
 * --dr: a delivery-report callback (counting failures), served by rd_kafka_poll on the
 * producing thread as logsplice serves its reports on its loop. Without one librdkafka frees
 * delivered messages on its broker threads; with one it frees them here, which measured
 * faster and cheaper on the benchmark's 2-CPU machine, so it makes the stronger baseline.
 *
 * --bounded BYTES: librdkafka's queue bounded as a logsplice kafka output bounds it for
 * max_in_flight_bytes BYTES (queue.buffering.max.kbytes BYTES/2/1024, queue.buffering.max.messages
 * BYTES/1024): the same memory budget. Without it librdkafka queues up to 100,000 messages and
 * 1 GiB, which is the unbounded-memory baseline.
 *
 * Prints "lines=N bytes=B" on stdout. */
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void set(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s: %s\n", k, err);
        exit(2);
    }
}

static unsigned long long failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    if (m->err) failed++;
}

int main(int argc, char **argv) {
    const char *input = NULL;
    int dr = 0;
    unsigned long long bounded = 0;
    for (;;) {
        if (argc > 1 && strcmp(argv[1], "--no-fast-bins") == 0) {
            mallopt(M_MXFAST, 0);
        } else if (argc > 1 && strcmp(argv[1], "--dr") == 0) {
            dr = 1;
        } else if (argc > 2 && strcmp(argv[1], "--bounded") == 0) {
            bounded = strtoull(argv[2], NULL, 10);
            argv++;
            argc--;
        } else {
            break;
        }
        argv++;
        argc--;
    }
    if (argc == 6 && strcmp(argv[1], "--headers") == 0) {
        input = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: kafka_baseline [--headers INPUT] FILE BOOTSTRAP TOPIC\n");
        return 2;
    }
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const size_t host_len = strlen(host), path_len = strlen(argv[1]);
    const size_t input_len = input ? strlen(input) : 0;
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[1]);
        return 1;
    }
    const char *data = st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : "";
    if (data == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    madvise((void *)data, (size_t)st.st_size, MADV_SEQUENTIAL);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", argv[2]);
    set(conf, "acks", "all");
    set(conf, "enable.idempotence", "true");
    set(conf, "linger.ms", "5");
    set(conf, "compression.codec", "none");
    if (bounded) {
        char v[32];
        unsigned long long kbytes = bounded / 2 / 1024, messages = bounded / 1024;
        snprintf(v, sizeof v, "%llu", kbytes ? kbytes : 1);
        set(conf, "queue.buffering.max.kbytes", v);
        snprintf(v, sizeof v, "%llu", messages > 64 ? messages : 64);
        set(conf, "queue.buffering.max.messages", v);
    }
    if (dr) rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        return 1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, argv[3], NULL);
    unsigned long long lines = 0, bytes = 0;
    const char *p = data, *end = data + st.st_size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        for (;;) {
            rd_kafka_resp_err_t e;
            if (input) {
                char offset[24];
                int offset_len = snprintf(offset, sizeof offset, "%llu", (unsigned long long)(p - data));
                e = rd_kafka_producev(
                    rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_VALUE((void *)p, len),
                    RD_KAFKA_V_HEADER("host", host, (ssize_t)host_len),
                    RD_KAFKA_V_HEADER("input", input, (ssize_t)input_len),
                    RD_KAFKA_V_HEADER("path", argv[1], (ssize_t)path_len),
                    RD_KAFKA_V_HEADER("offset", offset, (ssize_t)offset_len), RD_KAFKA_V_END);
            } else {
                e = rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)p,
                                     len, NULL, 0, NULL) == 0
                        ? RD_KAFKA_RESP_ERR_NO_ERROR
                        : rd_kafka_last_error();
            }
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "produce: %s\n", rd_kafka_err2str(e));
                return 1;
            }
            rd_kafka_poll(rk, 10);
        }
        rd_kafka_poll(rk, 0);
        lines++;
        bytes += len + 1;
        p += len + 1;
    }
    while (rd_kafka_outq_len(rk) > 0) rd_kafka_flush(rk, 1000);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    printf("lines=%llu bytes=%llu failed=%llu\n", lines, bytes, failed);
    return 0;
}
