/*
 * backlog.so — LD_PRELOAD shim for OpenSMTPD only: listen(2) with a backlog of
 * at least 4096 (the kernel caps it at net.core.somaxconn). OpenSMTPD 6.8 listens
 * with SMTPD_BACKLOG = 5: at 20 sessions the kernel drops SYNs and each client
 * waits the 1 s SYN retransmission, which would measure the backlog, not the MTA.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/socket.h>

int listen(int fd, int backlog) {
	static int (*real)(int, int);
	if (!real) real = (int (*)(int, int))dlsym(RTLD_NEXT, "listen");
	return real(fd, backlog < 4096 ? 4096 : backlog);
}
