/* A Kafka cluster for the tests and the benchmark: librdkafka's protocol-level mock cluster
 * (rdkafka_mock.h) in its own process. Its brokers listen on 127.0.0.1 (ephemeral ports).
 *
 *   kafka_mock_cluster [--brokers N] [--topic NAME:PARTITIONS[:REPLICATION]]...
 *
 * Prints the bootstrap address ("127.0.0.1:p1,127.0.0.1:p2,...") on the first line of stdout,
 * then reads one command per line on stdin and answers "ok" or "error <why>" on a line:
 *
 *   broker-down <id|-1>              disconnect a broker (-1: all) and refuse connections
 *   broker-up <id|-1>
 *   push-errors <apikey> <count> <err>   the next <count> requests of <apikey> (0 = Produce)
 *                                        fail with Kafka error code <err>
 *   leader <topic> <partition> <id>  move a partition's leadership
 *   topic <name> <partitions> <replication>
 *   topic-error <topic> <err>        topic-level error in metadata responses
 *   rtt <id> <ms>                    add round-trip time to a broker
 *
 * EOF on stdin (or SIGTERM) destroys the cluster and exits. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void answer(const char *what) {
  printf("%s\n", what);
  fflush(stdout);
}

static int run(rd_kafka_mock_cluster_t *mc, char *line) {
  char cmd[64] = {0}, name[256] = {0};
  long a = 0, b = 0, c = 0;
  if (sscanf(line, "%63s", cmd) != 1) return 0;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (!strcmp(cmd, "broker-down") && sscanf(line, "%*s %ld", &a) == 1) {
    err = rd_kafka_mock_broker_set_down(mc, (int32_t)a);
  } else if (!strcmp(cmd, "broker-up") && sscanf(line, "%*s %ld", &a) == 1) {
    err = rd_kafka_mock_broker_set_up(mc, (int32_t)a);
  } else if (!strcmp(cmd, "push-errors") && sscanf(line, "%*s %ld %ld %ld", &a, &b, &c) == 3) {
    rd_kafka_resp_err_t *errs = calloc((size_t)(b > 0 ? b : 1), sizeof *errs);
    for (long i = 0; i < b; i++) errs[i] = (rd_kafka_resp_err_t)c;
    rd_kafka_mock_push_request_errors_array(mc, (int16_t)a, (size_t)b, errs);
    free(errs);
  } else if (!strcmp(cmd, "leader") && sscanf(line, "%*s %255s %ld %ld", name, &a, &b) == 3) {
    err = rd_kafka_mock_partition_set_leader(mc, name, (int32_t)a, (int32_t)b);
  } else if (!strcmp(cmd, "topic") && sscanf(line, "%*s %255s %ld %ld", name, &a, &b) == 3) {
    err = rd_kafka_mock_topic_create(mc, name, (int)a, (int)b);
  } else if (!strcmp(cmd, "topic-error") && sscanf(line, "%*s %255s %ld", name, &a) == 2) {
    rd_kafka_mock_topic_set_error(mc, name, (rd_kafka_resp_err_t)a);
  } else if (!strcmp(cmd, "rtt") && sscanf(line, "%*s %ld %ld", &a, &b) == 2) {
    err = rd_kafka_mock_broker_set_rtt(mc, (int32_t)a, (int)b);
  } else {
    answer("error unknown command");
    return 0;
  }
  if (err) {
    char msg[300];
    snprintf(msg, sizeof msg, "error %s", rd_kafka_err2str(err));
    answer(msg);
  } else {
    answer("ok");
  }
  return 0;
}

int main(int argc, char **argv) {
  int brokers = 3;
  char errstr[512];
  signal(SIGPIPE, SIG_IGN);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    fprintf(stderr, "rd_kafka_new: %s\n", errstr);
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--brokers") && i + 1 < argc) brokers = atoi(argv[++i]);
  }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) {
    fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--topic") && i + 1 < argc) {
      char name[256] = {0};
      int parts = 1, repl = 1;
      if (sscanf(argv[++i], "%255[^:]:%d:%d", name, &parts, &repl) < 1) continue;
      if (repl > brokers) repl = brokers;
      rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, name, parts, repl);
      if (err) {
        fprintf(stderr, "topic %s: %s\n", name, rd_kafka_err2str(err));
        return 1;
      }
    }
  }
  answer(rd_kafka_mock_cluster_bootstraps(mc));
  char line[1024];
  while (fgets(line, sizeof line, stdin)) run(mc, line);
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
