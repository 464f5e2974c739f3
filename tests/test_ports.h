/* test_ports.h: loopback ports for tests that start servers, reserved so
 * that tests running side by side never share one.
 *
 * Ports 10000-29999 (below Linux's ephemeral range, 32768+, so no outgoing
 * connection and no bind to port 0 takes them) are cut into blocks of
 * TEST_PORT_BLOCK. A process owns a block while it holds an flock on
 * /tmp/gcsd-test-ports/<block>; the kernel drops the lock when the process
 * exits, however it exits. The search starts at a block chosen by the
 * process id. tests/fault/run takes blocks the same way, so the C tests
 * and the fault harness stay out of each other's ports too.
 *
 * Servers a test starts (gcsd, raft members) bind inside the block, and a
 * member that is killed finds its ports free again when it restarts. */
#ifndef GCSD_TEST_PORTS_H
#define GCSD_TEST_PORTS_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEST_PORT_FIRST 10000
#define TEST_PORT_BLOCK 40
#define TEST_PORT_BLOCKS 500 /* up to 29999 */
#define TEST_PORT_LOCK_DIR "/tmp/gcsd-test-ports"

/* Reserve a block for this process; returns its first port, or -1 when all
 * blocks are taken or the lock directory can't be used. The lock's fd is
 * kept open (close-on-exec, so servers the test starts don't hold it) until
 * the process exits. Each call reserves one more block. */
static inline int test_port_block(void)
{
    if (mkdir(TEST_PORT_LOCK_DIR, 0777) != 0 && errno != EEXIST) return -1;
    unsigned start = (unsigned)getpid() % TEST_PORT_BLOCKS;
    for (unsigned i = 0; i < TEST_PORT_BLOCKS; i++) {
        unsigned b = (start + i) % TEST_PORT_BLOCKS;
        char path[64];
        snprintf(path, sizeof path, TEST_PORT_LOCK_DIR "/%u", b);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) return -1;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            return TEST_PORT_FIRST + (int)b * TEST_PORT_BLOCK;
        }
        close(fd);
    }
    return -1;
}

#endif
