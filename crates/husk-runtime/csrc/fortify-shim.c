/* husk links Debian's libseccomp.a, built against glibc with _FORTIFY_SOURCE, into a musl
 * binary. The one glibc-only symbol it needs is __fprintf_chk (from its PFC exporter, which
 * husk never calls); this defines it the way glibc does, minus the format checks. Everything
 * else libseccomp uses (malloc, errno, __assert_fail, __stack_chk_fail, ...) musl provides with
 * the same ABI. Built and linked (whole) by build.rs only for musl targets.
 */
#include <stdarg.h>
#include <stdio.h>

int __fprintf_chk(FILE *f, int flag, const char *fmt, ...)
{
	va_list ap;
	int r;

	(void)flag;
	va_start(ap, fmt);
	r = vfprintf(f, fmt, ap);
	va_end(ap);
	return r;
}
