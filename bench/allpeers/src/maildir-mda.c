/*
 * maildir-mda DIR — the local delivery program chasquid runs in gomta's
 * benchmark (chasquid execs one per message and recipient; the message is on
 * standard input). The delivery is made as durable as gomta's and Postfix
 * virtual(8)'s before the program exits 0:
 *   DIR/tmp/NAME written and fsync(2)'d, renamed to DIR/new/NAME, DIR/new fsync'd.
 * Exit 75 (EX_TEMPFAIL, chasquid retries later) on any failure, 64 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what, const char *tmp) {
	fprintf(stderr, "maildir-mda: %s: %s\n", what, strerror(errno));
	if (tmp) unlink(tmp);
	return 75;
}

static int copy_all(int in, int out) {
	char buf[65536];
	for (;;) {
		ssize_t n = read(in, buf, sizeof buf);
		if (n == 0) return 0;
		if (n < 0) { if (errno == EINTR) continue; return -1; }
		char *p = buf;
		while (n > 0) {
			ssize_t w = write(out, p, (size_t)n);
			if (w < 0) { if (errno == EINTR) continue; return -1; }
			p += w; n -= w;
		}
	}
}

int main(int argc, char **argv) {
	if (argc != 2) { fputs("usage: maildir-mda MAILDIR < message\n", stderr); return 64; }
	const char *dir = argv[1];
	char sub[4096], name[256], tmp[4096], dst[4096];
	const char *subs[] = {"", "/tmp", "/new", "/cur"};
	for (int i = 0; i < 4; i++) {          /* a new account's Maildir */
		snprintf(sub, sizeof sub, "%s%s", dir, subs[i]);
		if (mkdir(sub, 0700) != 0 && errno != EEXIST) return fail("mkdir", NULL);
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(name, sizeof name, "%lld.N%09ldP%d.bench", (long long)ts.tv_sec, ts.tv_nsec, (int)getpid());
	snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, name);
	snprintf(dst, sizeof dst, "%s/new/%s", dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) return fail("create", NULL);
	if (copy_all(0, fd) != 0) return fail("write", tmp);
	if (fsync(fd) != 0) return fail("fsync", tmp);
	if (close(fd) != 0) return fail("close", tmp);
	if (rename(tmp, dst) != 0) return fail("rename", tmp);
	snprintf(sub, sizeof sub, "%s/new", dir);
	int dfd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) return fail("fsync new/", NULL);
	close(dfd);
	return 0;
}
