/* husk-exec: the last program husk runs in a container before the container's own.
 *
 * Why it exists (CVE-2019-5736): until its final execve, a container's init is a clone of
 * husk, so /proc/self/exe names the husk binary on the host. A container program that is
 * `#!/proc/self/exe` would run that binary again, now dumpable, and let the container reopen
 * it for writing. husk used to re-execute itself from a read-only copy before every create
 * (about 1 ms then: an exec of a multi-megabyte static program and its start-up). Instead,
 * init executes this program from a sealed memfd (about 0.1 ms: 2 KB, no libc, no start-up
 * work), and this program executes the container's. From then on
 * /proc/self/exe of anything in the container is either the container's program or this
 * sealed memfd; neither is a host file. husk still re-executes itself where this is not
 * equivalent (see trampoline.rs).
 *
 * Called as: husk-exec FDS PATH ARG0 ARG1 ... with the container's environment, where FDS is a
 * comma-separated list of descriptors (possibly empty) to make close-on-exec here, so that
 * their EOF tells husk the container's program itself was executed, and PATH is the program.
 * On failure it reports as init would: "husk: exec PATH: ENAME (text)" on stderr, exit 127
 * when the program is missing, else 126.
 *
 * No libc: raw syscalls, x86_64 and aarch64. Built by build.rs, embedded in husk.
 */

#if defined(__x86_64__)
#define NR_write 1
#define NR_close 3
#define NR_fcntl 72
#define NR_execve 59
#define NR_exit_group 231
static long sys3(long n, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(n), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return r;
}
__asm__(".text\n.global _start\n_start:\n"
	"	xor %rbp, %rbp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call start_c\n"
	"	hlt\n");
#elif defined(__aarch64__)
#define NR_write 64
#define NR_close 57
#define NR_fcntl 25
#define NR_execve 221
#define NR_exit_group 94
static long sys3(long n, long a, long b, long c)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	return x0;
}
__asm__(".text\n.global _start\n_start:\n"
	"	mov x0, sp\n"
	"	bl start_c\n"
	"	brk #0\n");
#else
#error "husk-exec: unsupported architecture"
#endif

#define F_SETFD 2
#define FD_CLOEXEC 1

struct errname {
	int no;
	const char *name;
	const char *text;
};

/* The errors execve(2) documents, named as husk names errno elsewhere. */
static const struct errname errnames[] = {
	{1, "EPERM", "Operation not permitted"},
	{2, "ENOENT", "No such file or directory"},
	{5, "EIO", "Input/output error"},
	{7, "E2BIG", "Argument list too long"},
	{8, "ENOEXEC", "Exec format error"},
	{12, "ENOMEM", "Cannot allocate memory"},
	{13, "EACCES", "Permission denied"},
	{14, "EFAULT", "Bad address"},
	{20, "ENOTDIR", "Not a directory"},
	{21, "EISDIR", "Is a directory"},
	{22, "EINVAL", "Invalid argument"},
	{23, "ENFILE", "Too many open files in system"},
	{24, "EMFILE", "Too many open files"},
	{26, "ETXTBSY", "Text file busy"},
	{36, "ENAMETOOLONG", "File name too long"},
	{38, "ENOSYS", "Function not implemented"},
	{40, "ELOOP", "Too many levels of symbolic links"},
	{80, "ELIBBAD", "Accessing a corrupted shared library"},
	{0, 0, 0},
};

static unsigned long len(const char *s)
{
	unsigned long n = 0;
	while (s[n])
		n++;
	return n;
}

static void put(const char *s)
{
	sys3(NR_write, 2, (long)s, (long)len(s));
}

__attribute__((noreturn, used)) void start_c(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	if (argc < 3) {
		put("husk-exec: usage: husk-exec FDS PATH ARG0 [ARG...]\n");
		sys3(NR_exit_group, 126, 0, 0);
	}
	for (const char *p = argv[0]; *p;) {
		long fd = 0;
		if (*p < '0' || *p > '9') {
			put("husk-exec: FDS must be a comma-separated list of descriptors\n");
			sys3(NR_exit_group, 126, 0, 0);
		}
		while (*p >= '0' && *p <= '9')
			fd = fd * 10 + (*p++ - '0');
		if (*p == ',')
			p++;
		/* A profile that refuses fcntl must not leak the fd: close it (EOF comes early). */
		if (sys3(NR_fcntl, fd, F_SETFD, FD_CLOEXEC) < 0)
			sys3(NR_close, fd, 0, 0);
	}
	long err = -sys3(NR_execve, (long)argv[1], (long)(argv + 2), (long)envp);
	put("husk: exec ");
	put(argv[1]);
	put(": ");
	const struct errname *e = errnames;
	while (e->no && e->no != err)
		e++;
	if (e->no) {
		put(e->name);
		put(" (");
		put(e->text);
		put(")\n");
	} else {
		char num[24], *q = num + sizeof(num) - 1;
		*q = 0;
		do
			*--q = (char)('0' + err % 10);
		while (err /= 10);
		put("errno ");
		put(q);
		put("\n");
	}
	sys3(NR_exit_group, e->no == 2 ? 127 : 126, 0, 0);
	__builtin_unreachable();
}
