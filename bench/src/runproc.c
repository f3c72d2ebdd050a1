/* runproc: run a command and report its resource use precisely.
 *
 *   runproc OUT -- CMD [ARGS...]
 *
 * Forks CMD from this small process (so the child's peak RSS is not inflated
 * by the harness's own memory, which a fork from Python would count), writes
 * the child's pid to OUT.pid at once, forwards SIGTERM/SIGINT to it, and when
 * it exits writes "user_s sys_s maxrss_kib exitcode" (wait4 rusage) to OUT.
 */
#include "common.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

static volatile pid_t g_child;
static void forward(int sig) {
    if (g_child > 0) kill(g_child, sig);
}

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[2], "--")) {
        fprintf(stderr, "usage: runproc OUT -- CMD [ARGS...]\n");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        execvp(argv[3], argv + 3);
        die(argv[3]);
    }
    g_child = pid;
    char path[4096];
    snprintf(path, sizeof path, "%s.pid", argv[1]);
    FILE *f = fopen(path, "w");
    if (!f) die(path);
    fprintf(f, "%d\n", pid);
    fclose(f);
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) die("wait4");
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    f = fopen(argv[1], "w");
    if (!f) die(argv[1]);
    fprintf(f, "%.6f %.6f %ld %d\n", (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6,
            (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6, ru.ru_maxrss, code);
    fclose(f);
    return code;
}
