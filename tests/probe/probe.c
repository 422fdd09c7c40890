/* probe: prints what a container sees, one `key=value` per line, for husk's integration tests.
 * Built static (gcc -static) so it runs in a busybox rootfs. Usage:
 *   probe              print everything
 *   probe exit N       exit with N
 *   probe kill SIG     kill itself with SIG
 *   probe sleep S      sleep S seconds (then print everything)
 *   probe pty          open /dev/ptmx, unlock it and open its slave; prints ptmx= and pts=
 *                      (`ok /dev/pts/N` or the errno's name)
 *   probe exe-attack DEV INO READY GO OUT
 *                      CVE-2019-5736 from inside: until GO exists (no time limit: the test says
 *                      when), open /proc/PID/exe of every other process for writing, and by
 *                      O_PATH; keep the O_PATH handles of the file DEV:INO (the husk binary) and
 *                      reopen them for writing through /proc/self/fd, then once more after GO
 *                      appears. Creates READY after the first scan. Writes nothing to the file;
 *                      the counts go to OUT, written whole (OUT.tmp renamed) so a reader never
 *                      sees half a report.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

static void status_line(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[512];
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
            char *v = line + strlen(key) + 1;
            while (*v == ' ' || *v == '\t') v++;
            v[strcspn(v, "\n")] = 0;
            printf("%s=%s\n", key, v);
        }
    }
    fclose(f);
}

static long rw_ok, rw_erofs, rw_etxtbsy, rw_other;

/* Reopens an O_PATH handle for writing the way the CVE-2019-5736 exploits do; closes at once. */
static void try_rw(int fd) {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    int w = open(p, O_RDWR | O_CLOEXEC);
    if (w >= 0) { rw_ok++; close(w); return; }
    if (errno == EROFS) rw_erofs++;
    else if (errno == ETXTBSY) rw_etxtbsy++;
    else rw_other++;
}

static int exe_attack(char **argv) {
    dev_t dev = strtoull(argv[2], 0, 10);
    ino_t ino = strtoull(argv[3], 0, 10);
    const char *ready = argv[4], *go = argv[5], *out = argv[6];
    int held[64], nheld = 0;
    long direct_rw = 0, grabbed = 0, grabbed_on_rw_mount = 0, scans = 0;
    pid_t self = getpid();
    while (access(go, F_OK) != 0) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        while (d && (de = readdir(d))) {
            int pid = atoi(de->d_name);
            if (pid <= 0 || pid == self) continue;
            char p[64];
            snprintf(p, sizeof p, "/proc/%d/exe", pid);
            int fd = open(p, O_RDWR | O_CLOEXEC);
            if (fd >= 0) { direct_rw++; close(fd); }
            fd = open(p, O_PATH | O_CLOEXEC);
            if (fd < 0) continue;
            struct stat st;
            if (fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino && nheld < 64) {
                grabbed++;
                /* A handle on a writable mount is the vulnerability, whether or not the binary
                 * happens to be busy (ETXTBSY) at the moment of the reopen. */
                struct statvfs sv;
                if (fstatvfs(fd, &sv) != 0 || !(sv.f_flag & ST_RDONLY)) grabbed_on_rw_mount++;
                try_rw(fd);
                held[nheld++] = fd;
            } else {
                close(fd);
            }
        }
        if (d) closedir(d);
        if (scans++ == 0) close(open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    }
    /* No husk process runs now (the test says so by creating GO): ETXTBSY no longer protects. */
    for (int i = 0; i < nheld; i++) try_rw(held[i]);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *f = fopen(tmp, "w");
    if (!f) return 1;
    fprintf(f, "scans=%ld\ngrabbed=%ld\ngrabbed_on_rw_mount=%ld\ndirect_rw=%ld\nrw_ok=%ld\nrw_erofs=%ld\nrw_etxtbsy=%ld\nrw_other=%ld\n",
            scans, grabbed, grabbed_on_rw_mount, direct_rw, rw_ok, rw_erofs, rw_etxtbsy, rw_other);
    if (fclose(f) != 0 || rename(tmp, out) != 0) return 1;
    return 0;
}

/* What a terminal-using process does first (podman's conmon, `script`, sshd): the master from
 * /dev/ptmx (c 5:2), then the slave /dev/pts/N (c 136:N). */
static int pty(void) {
    int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) { printf("ptmx=%s\npts=untried\n", strerrorname_np(errno)); return 1; }
    printf("ptmx=ok\n");
    int unlock = 0;
    unsigned n;
    if (ioctl(m, TIOCSPTLCK, &unlock) != 0 || ioctl(m, TIOCGPTN, &n) != 0) {
        printf("pts=%s\n", strerrorname_np(errno));
        return 1;
    }
    char p[64];
    snprintf(p, sizeof p, "/dev/pts/%u", n);
    int s = open(p, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) { printf("pts=%s\n", strerrorname_np(errno)); return 1; }
    printf("pts=ok %s\n", p);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "pty") == 0) return pty();
    if (argc > 6 && strcmp(argv[1], "exe-attack") == 0) return exe_attack(argv);
    if (argc > 2 && strcmp(argv[1], "exit") == 0) return atoi(argv[2]);
    if (argc > 2 && strcmp(argv[1], "kill") == 0) { kill(getpid(), atoi(argv[2])); pause(); }
    if (argc > 2 && strcmp(argv[1], "sleep") == 0) sleep(atoi(argv[2]));

    printf("pid=%d\nppid=%d\n", getpid(), getppid());
    uid_t r, e, s; gid_t gr, ge, gs;
    getresuid(&r, &e, &s); getresgid(&gr, &ge, &gs);
    printf("uid=%u\ngid=%u\n", e, ge);
    gid_t groups[64]; int n = getgroups(64, groups);
    printf("groups=");
    for (int i = 0; i < n; i++) printf("%s%u", i ? "," : "", groups[i]);
    printf("\n");
    const char *ns[] = {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"};
    for (unsigned i = 0; i < sizeof ns / sizeof *ns; i++) {
        char p[64]; struct stat st;
        snprintf(p, sizeof p, "/proc/self/ns/%s", ns[i]);
        if (stat(p, &st) == 0) printf("ns.%s=%lu\n", ns[i], (unsigned long)st.st_ino);
    }
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) printf("cwd=%s\n", cwd);
    struct utsname u; uname(&u);
    printf("hostname=%s\ndomainname=%s\n", u.nodename, u.domainname);
    struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl);
    printf("rlimit.nofile=%llu:%llu\n", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
    /* KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3), without creating one. */
    printf("session_keyring=%ld\n", syscall(SYS_keyctl, 0, -3, 0));
    printf("nnp=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    printf("dumpable=%d\n", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    mode_t m = umask(0); printf("umask=%04o\n", m);
    status_line("CapInh"); status_line("CapPrm"); status_line("CapEff"); status_line("CapBnd"); status_line("CapAmb");
    status_line("Cpus_allowed_list");
    status_line("Seccomp");
    struct sched_param sp;
    printf("sched.policy=%d\n", sched_getscheduler(0));
    if (sched_getparam(0, &sp) == 0) printf("sched.priority=%d\n", sp.sched_priority);
    printf("nice=%d\n", getpriority(PRIO_PROCESS, 0));
    /* IOPRIO_WHO_PROCESS (1), self: class in the top bits, level in the low 13. */
    long io = syscall(SYS_ioprio_get, 1, 0);
    if (io >= 0) printf("ioprio=%ld:%ld\n", io >> 13, io & 0x1fff);
    DIR *d = opendir("/proc/self/fd");
    printf("fds=");
    int first = 1, dfd = d ? dirfd(d) : -1;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.' || atoi(de->d_name) == dfd) continue;
        printf("%s%s", first ? "" : ",", de->d_name); first = 0;
    }
    printf("\n");
    if (d) closedir(d);
    FILE *f = fopen("/proc/self/oom_score_adj", "r");
    int adj; if (f && fscanf(f, "%d", &adj) == 1) printf("oom_score_adj=%d\n", adj);
    if (f) fclose(f);
    for (char **env = __environ; *env; env++) printf("env.%s\n", *env);
    return 0;
}
