/* floor: the kernel floor of a container `run`, for comparison with the runtimes.
 *
 * Does only what every runtime must do at minimum for the benchmark bundle:
 *   clone(CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC[|CLONE_NEWNET])
 *   -> bind-mount the rootfs onto itself -> pivot_root -> detach the old root
 *   -> mount /proc -> exec /bin/true, while the parent waits for it.
 * No config parsing, no cgroups, no /dev, no capabilities, no seccomp.
 *
 * Build: gcc -O2 -o floor floor.c
 * Usage: floor [-n] ROOTFS      (-n: no network namespace)
 * Exit status: the container's exit status, or 125 when a setup step failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *rootfs;

static int fail(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    return 125;
}

static int child(void *arg)
{
    (void)arg;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return fail("make / private");
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        return fail("bind rootfs");
    if (chdir(rootfs) < 0)
        return fail("chdir rootfs");
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return fail("pivot_root");
    if (umount2(".", MNT_DETACH) < 0)
        return fail("detach old root");
    if (chdir("/") < 0)
        return fail("chdir /");
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) < 0)
        return fail("mount /proc");
    char *argv[] = { "/bin/true", NULL };
    char *envp[] = { "PATH=/bin", NULL };
    execve(argv[0], argv, envp);
    return fail("exec /bin/true");
}

int main(int argc, char **argv)
{
    int net = 1, i = 1;
    if (i < argc && strcmp(argv[i], "-n") == 0) {
        net = 0;
        i++;
    }
    if (i != argc - 1) {
        fprintf(stderr, "usage: floor [-n] ROOTFS\n");
        return 2;
    }
    rootfs = argv[i];
    static char stack[64 * 1024] __attribute__((aligned(16)));
    int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
    if (net)
        flags |= CLONE_NEWNET;
    pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
    if (pid < 0)
        return fail("clone");
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return fail("waitpid");
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}
