/* ilbench: interleaved benchmark harness for OCI runtimes (husk, runc, crun) and the kernel floor.
 *
 * Interleaved = every iteration runs every target once (round robin, the start target rotates
 * each iteration), so slow load drift on a shared machine hits all targets alike.
 * Wall time = CLOCK_MONOTONIC around fork/exec/wait of the runtime command. Every command gets
 * a watchdog (-t, default 5000 ms): still running after that => its process group is killed,
 * the container is force-deleted and the sample is dropped and counted as a failure. A
 * command exiting non-zero is a failure too (its stderr is reported).
 *
 * The harness is a child subreaper (PR_SET_CHILD_SUBREAPER), as containerd-shim and conmon are:
 * processes a runtime leaves behind (e.g. the container init after `create`) are re-parented to
 * it and reaped, and their rusage counts towards the resource metrics ("max over the process tree").
 *
 * Build: gcc -O2 -Wall -o ilbench ilbench.c
 *
 * Usage: ilbench [options] MODE
 *   -r NAME=BIN:STATEROOT   a runtime target, invoked as `BIN --root STATEROOT ...` (repeatable)
 *   -f NAME=BIN             a kernel-floor target, invoked as `BIN [-n] BUNDLE/rootfs` (-n for nonet)
 *   -b VARIANT=BUNDLE       a bundle; VARIANT is `net` or `nonet` (repeatable; many/res use the first)
 *   -n N  iterations (default 50)      -w N  warmup iterations, not recorded (default 3)
 *   -t MS watchdog per command (5000)  -o FILE  append results (TSV) to FILE (default stdout)
 *   -c N  containers per batch (many, default 100)
 *   -P N[,N...]  at most N commands at a time (many, default 1); several values are interleaved too
 *   -p DIR  where split writes --pid-file files (default /tmp)
 * MODE:
 *   run    `RT run -b BUNDLE ID` of the bundle's process (floor: one floor run)
 *   split  `RT create --pid-file F -b BUNDLE ID`; `RT start ID` + wait for the container pid to
 *          exit (pidfd_open + poll); `RT delete ID`; and the sum (runtime targets only)
 *   many   one sample = total wall time of -c `run`s with at most -P at a time (netns bundle)
 *   res    one `run` per sample; peak RSS (KiB, max over the process tree) and page faults
 *          (ru_minflt, summed over the tree), from wait4 rusage
 * Output lines (tab separated):
 *   S MODE TARGET VARIANT METRIC ITER VALUE      a sample (ms for times)
 *   F MODE TARGET VARIANT PHASE ITER MESSAGE     a failure (exact command + error)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXT 8
#define MAXV 2
#define MAXP 64

struct target {
    char name[64];
    char bin[512];
    char root[512]; /* empty => floor */
};
struct variant {
    char name[16];
    char bundle[512];
};

static struct target targets[MAXT];
static int ntargets;
static struct variant variants[MAXV];
static int nvariants;
static const char *piddir = "/tmp";
static int iters = 50, warmup = 3, timeout_ms = 5000, batch = 100;
static int pars[8] = { 1 }, npars = 1;
static FILE *out;
static const char *mode;
static unsigned long idctr;

/* ---------- process tracking ---------- */

struct proc {
    pid_t pid;
    int pidfd;
    int errfd;        /* memfd holding the command's stderr, -1 for non-children */
    int child;        /* our direct child (needs reaping) */
    int done;         /* exited (pidfd readable) */
    int reaped;
    int status;
    struct rusage ru;
    double t_start, t_end;
    char cmd[1536];   /* the exact command line, for failure reports */
    char err[1024];   /* its stderr (failed commands only) */
};

static struct proc *reg[MAXP * 2];
static int nreg;
static long orphan_maxrss, orphan_minflt, orphan_majflt, orphan_nvcsw, orphan_nivcsw;
static double orphan_cpu_ms;
static int devnull = -1;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ilbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void reg_add(struct proc *p)
{
    if (nreg >= (int)(sizeof reg / sizeof reg[0]))
        die("too many tracked processes");
    reg[nreg++] = p;
}

static void reg_del(struct proc *p)
{
    for (int i = 0; i < nreg; i++)
        if (reg[i] == p) {
            reg[i] = reg[--nreg];
            return;
        }
}

static double ru_cpu_ms(const struct rusage *ru)
{
    return ru->ru_utime.tv_sec * 1e3 + ru->ru_utime.tv_usec / 1e3 + ru->ru_stime.tv_sec * 1e3 +
           ru->ru_stime.tv_usec / 1e3;
}

/* Reap every exited child: tracked ones get their status/rusage, the rest are orphans a runtime
 * left to us (subreaper) and count towards the orphan totals. */
static void reap_all(void)
{
    for (;;) {
        int st;
        struct rusage ru;
        pid_t pid = wait4(-1, &st, WNOHANG | __WALL, &ru);
        if (pid <= 0)
            return;
        struct proc *p = NULL;
        for (int i = 0; i < nreg; i++)
            if (reg[i]->pid == pid)
                p = reg[i];
        if (p && p->child) {
            p->reaped = 1;
            p->status = st;
            p->ru = ru;
            continue;
        }
        if (p)
            p->reaped = 1;
        if (ru.ru_maxrss > orphan_maxrss)
            orphan_maxrss = ru.ru_maxrss;
        orphan_minflt += ru.ru_minflt;
        orphan_majflt += ru.ru_majflt;
        orphan_nvcsw += ru.ru_nvcsw;
        orphan_nivcsw += ru.ru_nivcsw;
        orphan_cpu_ms += ru_cpu_ms(&ru);
    }
}

static void orphan_reset(void)
{
    orphan_maxrss = orphan_minflt = orphan_majflt = orphan_nvcsw = orphan_nivcsw = 0;
    orphan_cpu_ms = 0;
}

static void cmdline(char *buf, size_t n, char *const argv[])
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; argv[i] && o < n; i++)
        o += snprintf(buf + o, n - o, "%s%s", i ? " " : "", argv[i]);
}

/* fork + exec argv in its own process group, stdin/stdout on /dev/null, stderr in a memfd.
 * t_start is taken just before fork. */
static void spawn(struct proc *p, char *const argv[])
{
    memset(p, 0, sizeof *p);
    cmdline(p->cmd, sizeof p->cmd, argv);
    p->errfd = memfd_create("stderr", MFD_CLOEXEC);
    if (p->errfd < 0)
        die("memfd_create: %s", strerror(errno));
    p->child = 1;
    p->t_start = now_ms();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(p->errfd, 2);
        execv(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    p->pid = pid;
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (p->pidfd < 0)
        die("pidfd_open(%d): %s", pid, strerror(errno));
    reg_add(p);
}

/* Track a process that is not (necessarily) our child, e.g. a container init. */
static int track(struct proc *p, pid_t pid, const char *what)
{
    memset(p, 0, sizeof *p);
    snprintf(p->cmd, sizeof p->cmd, "%s", what);
    p->errfd = -1;
    p->pid = pid;
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (p->pidfd < 0)
        return -1;
    p->t_start = now_ms();
    reg_add(p);
    return 0;
}

/* Wait until one of ps[0..n) that is not done exits or a deadline passes.
 * Returns the number of processes that became done, 0 on timeout of the earliest deadline. */
static int wait_some(struct proc **ps, int n)
{
    struct pollfd fds[MAXP * 2];
    int idx[MAXP * 2], m = 0;
    double deadline = 1e300;
    for (int i = 0; i < n; i++)
        if (!ps[i]->done) {
            fds[m].fd = ps[i]->pidfd;
            fds[m].events = POLLIN;
            idx[m++] = i;
            if (ps[i]->t_start + timeout_ms < deadline)
                deadline = ps[i]->t_start + timeout_ms;
        }
    if (m == 0)
        return 0;
    for (;;) {
        double left = deadline - now_ms();
        if (left <= 0)
            return 0;
        int r = poll(fds, m, (int)left + 1);
        double t = now_ms();
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("poll: %s", strerror(errno));
        }
        if (r == 0)
            continue; /* re-check the deadline */
        int k = 0;
        for (int j = 0; j < m; j++)
            if (fds[j].revents) {
                ps[idx[j]]->done = 1;
                ps[idx[j]]->t_end = t;
                k++;
            }
        reap_all();
        return k;
    }
}

static void read_err(struct proc *p, char *buf, size_t n)
{
    buf[0] = 0;
    if (p->errfd < 0)
        return;
    ssize_t r = pread(p->errfd, buf, n - 1, 0);
    if (r < 0)
        r = 0;
    buf[r] = 0;
    for (char *c = buf; *c; c++)
        if (*c == '\n' || *c == '\t' || *c == '\r')
            *c = ' ';
}

/* Finish a tracked process: make sure a child is reaped, close fds, unregister. */
static void finish(struct proc *p)
{
    if (p->child && !p->reaped) {
        int st;
        struct rusage ru;
        if (wait4(p->pid, &st, __WALL, &ru) == p->pid) {
            p->status = st;
            p->ru = ru;
        }
        p->reaped = 1;
    }
    reg_del(p);
    close(p->pidfd);
    p->err[0] = 0;
    if (p->errfd >= 0) {
        if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0)
            read_err(p, p->err, sizeof p->err);
        close(p->errfd);
    }
    reap_all();
}

/* Kill a timed-out process (its whole process group for children). */
static void kill_proc(struct proc *p)
{
    if (p->child)
        kill(-p->pid, SIGKILL);
    kill(p->pid, SIGKILL);
    struct proc *ps[1] = { p };
    double t = p->t_start;
    p->t_start = now_ms(); /* a fresh deadline for the kill itself */
    while (!p->done && wait_some(ps, 1) >= 0 && !p->done && now_ms() - p->t_start < timeout_ms)
        ;
    p->t_start = t;
}

static void failure(const char *tname, const char *vname, const char *phase, int it, const char *fmt, ...)
{
    char msg[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(out, "F\t%s\t%s\t%s\t%s\t%d\t%s\n", mode, tname, vname, phase, it, msg);
    fflush(out);
}

static void sample(const char *tname, const char *vname, const char *metric, int it, double v)
{
    fprintf(out, "S\t%s\t%s\t%s\t%s\t%d\t%.4f\n", mode, tname, vname, metric, it, v);
}

/* Run one command to completion with the watchdog. Returns 0 on success (exit 0). */
static int run_one(struct proc *p, char *const argv[], const char *tname, const char *vname,
                   const char *phase, int it)
{
    spawn(p, argv);
    struct proc *ps[1] = { p };
    while (!p->done)
        if (wait_some(ps, 1) == 0 && !p->done)
            break;
    if (!p->done) {
        kill_proc(p);
        finish(p);
        failure(tname, vname, phase, it, "timeout after %d ms (killed): %s", timeout_ms, p->cmd);
        return -1;
    }
    finish(p);
    if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
        if (WIFEXITED(p->status))
            failure(tname, vname, phase, it, "exit %d: %s: %s", WEXITSTATUS(p->status), p->cmd, p->err);
        else
            failure(tname, vname, phase, it, "signal %d: %s: %s", WTERMSIG(p->status), p->cmd, p->err);
        return -1;
    }
    return 0;
}

/* ---------- argv builders ---------- */

struct argv_buf {
    char *v[16];
    char s[8][1024];
};

static void new_id(char *buf, size_t n)
{
    snprintf(buf, n, "ilb%d-%lu", (int)getpid(), ++idctr);
}

static void argv_run(struct argv_buf *a, struct target *t, struct variant *v, const char *id)
{
    int i = 0;
    a->v[i++] = t->bin;
    if (t->root[0]) {
        a->v[i++] = "--root";
        a->v[i++] = t->root;
        a->v[i++] = "run";
        a->v[i++] = "-b";
        a->v[i++] = v->bundle;
        snprintf(a->s[0], sizeof a->s[0], "%s", id);
        a->v[i++] = a->s[0];
    } else {
        if (strcmp(v->name, "nonet") == 0)
            a->v[i++] = "-n";
        snprintf(a->s[0], sizeof a->s[0], "%s/rootfs", v->bundle);
        a->v[i++] = a->s[0];
    }
    a->v[i] = NULL;
}

static void argv_rt(struct argv_buf *a, struct target *t, const char *verb, const char *id,
                    const char *bundle, const char *pidfile, int force)
{
    int i = 0;
    a->v[i++] = t->bin;
    a->v[i++] = "--root";
    a->v[i++] = t->root;
    snprintf(a->s[0], sizeof a->s[0], "%s", verb);
    a->v[i++] = a->s[0];
    if (force)
        a->v[i++] = "--force";
    if (pidfile) {
        a->v[i++] = "--pid-file";
        snprintf(a->s[1], sizeof a->s[1], "%s", pidfile);
        a->v[i++] = a->s[1];
    }
    if (bundle) {
        a->v[i++] = "-b";
        snprintf(a->s[2], sizeof a->s[2], "%s", bundle);
        a->v[i++] = a->s[2];
    }
    snprintf(a->s[3], sizeof a->s[3], "%s", id);
    a->v[i++] = a->s[3];
    a->v[i] = NULL;
}

/* Best-effort cleanup after a failure: `RT delete --force ID` (untimed). */
static void cleanup(struct target *t, const char *id)
{
    if (!t->root[0])
        return;
    struct argv_buf a;
    argv_rt(&a, t, "delete", id, NULL, NULL, 1);
    struct proc p;
    spawn(&p, a.v);
    struct proc *ps[1] = { &p };
    while (!p.done)
        if (wait_some(ps, 1) == 0 && !p.done)
            break;
    if (!p.done)
        kill_proc(&p);
    finish(&p);
}

/* ---------- modes ---------- */

static void mode_run(void)
{
    int nt = ntargets, nv = nvariants;
    for (int it = -warmup; it < iters; it++) {
        for (int k = 0; k < nt * nv; k++) {
            int j = (k + (it + warmup)) % (nt * nv);
            struct target *t = &targets[j / nv];
            struct variant *v = &variants[j % nv];
            char id[64];
            new_id(id, sizeof id);
            struct argv_buf a;
            argv_run(&a, t, v, id);
            struct proc p;
            if (run_one(&p, a.v, t->name, v->name, "run", it) == 0) {
                if (it >= 0)
                    sample(t->name, v->name, "run_ms", it, p.t_end - p.t_start);
            } else {
                cleanup(t, id);
            }
        }
        fflush(out);
    }
}

static pid_t read_pidfile(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long pid = -1;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = -1;
    fclose(f);
    return (pid_t)pid;
}

static void mode_split(void)
{
    int rt[MAXT], nrt = 0;
    for (int i = 0; i < ntargets; i++)
        if (targets[i].root[0])
            rt[nrt++] = i;
    int nv = nvariants;
    for (int it = -warmup; it < iters; it++) {
        for (int k = 0; k < nrt * nv; k++) {
            int j = (k + (it + warmup)) % (nrt * nv);
            struct target *t = &targets[rt[j / nv]];
            struct variant *v = &variants[j % nv];
            char id[64], pidfile[700];
            new_id(id, sizeof id);
            snprintf(pidfile, sizeof pidfile, "%s/%s.pid", piddir, id);
            unlink(pidfile);
            struct argv_buf a;
            struct proc p, c;
            double tc, ts, td;

            argv_rt(&a, t, "create", id, v->bundle, pidfile, 0);
            if (run_one(&p, a.v, t->name, v->name, "create", it) != 0) {
                cleanup(t, id);
                continue;
            }
            tc = p.t_end - p.t_start;
            pid_t cpid = read_pidfile(pidfile);
            unlink(pidfile);
            if (cpid <= 0 || track(&c, cpid, "container init") != 0) {
                failure(t->name, v->name, "create", it, "no usable pid in --pid-file %s (pid %d): %s",
                        pidfile, (int)cpid, strerror(errno));
                cleanup(t, id);
                continue;
            }

            /* start + wait for the container's init to exit */
            argv_rt(&a, t, "start", id, NULL, NULL, 0);
            spawn(&p, a.v);
            c.t_start = p.t_start;
            struct proc *ps[2] = { &p, &c };
            while (!p.done || !c.done)
                if (wait_some(ps, 2) == 0 && (!p.done || !c.done))
                    break;
            int ok = 1;
            if (!p.done || !c.done) {
                if (!p.done)
                    kill_proc(&p);
                if (!c.done)
                    kill_proc(&c);
                failure(t->name, v->name, "start", it,
                        "timeout after %d ms (killed; start %s, container %s): %s", timeout_ms,
                        p.done ? "exited" : "running", c.done ? "exited" : "running", p.cmd);
                ok = 0;
            }
            finish(&p);
            finish(&c);
            if (ok && (!WIFEXITED(p.status) || WEXITSTATUS(p.status) != 0)) {
                failure(t->name, v->name, "start", it, "status 0x%x: %s: %s", p.status, p.cmd, p.err);
                ok = 0;
            }
            if (!ok) {
                cleanup(t, id);
                continue;
            }
            ts = (p.t_end > c.t_end ? p.t_end : c.t_end) - p.t_start;

            argv_rt(&a, t, "delete", id, NULL, NULL, 0);
            if (run_one(&p, a.v, t->name, v->name, "delete", it) != 0) {
                cleanup(t, id);
                continue;
            }
            td = p.t_end - p.t_start;
            if (it >= 0) {
                sample(t->name, v->name, "create_ms", it, tc);
                sample(t->name, v->name, "start_wait_ms", it, ts);
                sample(t->name, v->name, "delete_ms", it, td);
                sample(t->name, v->name, "split_sum_ms", it, tc + ts + td);
            }
        }
        fflush(out);
    }
}

static void mode_many(void)
{
    struct variant *v = &variants[0];
    int nk = ntargets * npars;
    for (int it = -warmup; it < iters; it++) {
        for (int k = 0; k < nk; k++) {
            int j = (k + it + warmup) % nk;
            struct target *t = &targets[j / npars];
            int par = pars[j % npars];
            char metric[64];
            if (par <= 1)
                snprintf(metric, sizeof metric, "seq%d_total_ms", batch);
            else
                snprintf(metric, sizeof metric, "par%dx%d_total_ms", batch, par);
            struct proc slots[MAXP];
            char ids[MAXP][64];
            struct proc *running[MAXP];
            int nrun = 0, launched = 0, fails = 0;
            double t0 = now_ms(), tlast = t0;
            while (launched < batch || nrun > 0) {
                while (launched < batch && nrun < par) {
                    /* find a free slot */
                    int s = 0;
                    for (; s < par; s++) {
                        int used = 0;
                        for (int r = 0; r < nrun; r++)
                            if (running[r] == &slots[s])
                                used = 1;
                        if (!used)
                            break;
                    }
                    new_id(ids[s], sizeof ids[s]);
                    struct argv_buf a;
                    argv_run(&a, t, v, ids[s]);
                    spawn(&slots[s], a.v);
                    running[nrun++] = &slots[s];
                    launched++;
                }
                int got = wait_some(running, nrun);
                for (int r = 0; r < nrun; r++) {
                    struct proc *p = running[r];
                    int s = (int)(p - slots);
                    int timed_out = !p->done && now_ms() - p->t_start >= timeout_ms;
                    if (!p->done && !timed_out)
                        continue;
                    if (timed_out)
                        kill_proc(p);
                    finish(p);
                    if (p->t_end > tlast)
                        tlast = p->t_end;
                    if (timed_out) {
                        failure(t->name, v->name, metric, it, "timeout after %d ms (killed): %s",
                                timeout_ms, p->cmd);
                        fails++;
                        cleanup(t, ids[s]);
                    } else if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
                        failure(t->name, v->name, metric, it, "status 0x%x: %s: %s", p->status,
                                p->cmd, p->err);
                        fails++;
                        cleanup(t, ids[s]);
                    }
                    running[r--] = running[--nrun];
                }
                (void)got;
            }
            if (it >= 0) {
                sample(t->name, v->name, metric, it, tlast - t0);
                if (fails)
                    sample(t->name, v->name, "failed_in_batch", it, fails);
            }
            fflush(out);
        }
    }
}

static void mode_res(void)
{
    struct variant *v = &variants[0];
    for (int it = -warmup; it < iters; it++) {
        for (int k = 0; k < ntargets; k++) {
            struct target *t = &targets[(k + it + warmup) % ntargets];
            char id[64];
            new_id(id, sizeof id);
            struct argv_buf a;
            argv_run(&a, t, v, id);
            struct proc p;
            reap_all();
            orphan_reset();
            if (run_one(&p, a.v, t->name, v->name, "res", it) != 0) {
                cleanup(t, id);
                continue;
            }
            usleep(2000); /* let processes re-parented to us at the runtime's exit be reaped */
            reap_all();
            long maxrss = p.ru.ru_maxrss > orphan_maxrss ? p.ru.ru_maxrss : orphan_maxrss;
            if (it >= 0) {
                sample(t->name, v->name, "maxrss_kib", it, maxrss);
                sample(t->name, v->name, "minflt", it, p.ru.ru_minflt + orphan_minflt);
                sample(t->name, v->name, "majflt", it, p.ru.ru_majflt + orphan_majflt);
                sample(t->name, v->name, "ctxsw", it,
                       p.ru.ru_nvcsw + p.ru.ru_nivcsw + orphan_nvcsw + orphan_nivcsw);
                sample(t->name, v->name, "cpu_ms", it, ru_cpu_ms(&p.ru) + orphan_cpu_ms);
            }
        }
        fflush(out);
    }
}

static void parse_kv(const char *arg, char *k, size_t kn, const char **vp)
{
    const char *eq = strchr(arg, '=');
    if (!eq || (size_t)(eq - arg) >= kn)
        die("bad argument %s (want NAME=VALUE)", arg);
    memcpy(k, arg, eq - arg);
    k[eq - arg] = 0;
    *vp = eq + 1;
}

int main(int argc, char **argv)
{
    int opt;
    out = stdout;
    while ((opt = getopt(argc, argv, "r:f:b:n:w:t:o:c:P:p:")) != -1) {
        const char *val;
        switch (opt) {
        case 'r':
        case 'f': {
            if (ntargets >= MAXT)
                die("too many targets");
            struct target *t = &targets[ntargets++];
            parse_kv(optarg, t->name, sizeof t->name, &val);
            const char *colon = opt == 'r' ? strrchr(val, ':') : NULL;
            if (opt == 'r' && !colon)
                die("-r NAME=BIN:STATEROOT");
            size_t bl = colon ? (size_t)(colon - val) : strlen(val);
            if (bl >= sizeof t->bin)
                die("path too long");
            memcpy(t->bin, val, bl);
            t->bin[bl] = 0;
            if (colon)
                snprintf(t->root, sizeof t->root, "%s", colon + 1);
            break;
        }
        case 'b': {
            if (nvariants >= MAXV)
                die("too many bundles");
            struct variant *v = &variants[nvariants++];
            parse_kv(optarg, v->name, sizeof v->name, &val);
            snprintf(v->bundle, sizeof v->bundle, "%s", val);
            break;
        }
        case 'n': iters = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 't': timeout_ms = atoi(optarg); break;
        case 'c': batch = atoi(optarg); break;
        case 'P': {
            char *e = optarg;
            npars = 0;
            while (*e && npars < 8) {
                pars[npars] = (int)strtol(e, &e, 10);
                if (pars[npars] < 1 || pars[npars] > MAXP)
                    die("-P values must be 1..%d", MAXP);
                npars++;
                if (*e == ',')
                    e++;
                else if (*e)
                    die("bad -P %s", optarg);
            }
            break;
        }
        case 'p': piddir = optarg; break;
        case 'o':
            out = fopen(optarg, "ae");
            if (!out)
                die("open %s: %s", optarg, strerror(errno));
            break;
        default:
            die("bad usage (see the comment at the top of ilbench.c)");
        }
    }
    if (optind != argc - 1 || ntargets == 0 || nvariants == 0)
        die("usage: ilbench [-r NAME=BIN:ROOT]... [-f NAME=BIN]... -b VARIANT=BUNDLE... [opts] run|split|many|res");
    mode = argv[optind];
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        die("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "run") == 0)
        mode_run();
    else if (strcmp(mode, "split") == 0)
        mode_split();
    else if (strcmp(mode, "many") == 0)
        mode_many();
    else if (strcmp(mode, "res") == 0)
        mode_res();
    else
        die("unknown mode %s", mode);
    usleep(10000);
    reap_all(); /* leftovers re-parented to us (e.g. after a watchdog kill) */
    fflush(out);
    return 0;
}
