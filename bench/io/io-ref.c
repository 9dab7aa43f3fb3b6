// io-ref: C reference loops for bench/io/ports.bench.ts, the floor each addon path is compared
// with in the same run. Compiled by the bench at run time (gcc -O2) into a temporary directory.
//
//   io-ref tap-read  IFNAME COUNT          attach to TAP IFNAME (IFF_TAP | IFF_NO_PI, non-blocking)
//                                          and drain: poll() + read() until EAGAIN
//   io-ref tap-write IFNAME COUNT          write() COUNT 64-byte frames to TAP IFNAME
//   io-ref udp-recv  ADDR PORT COUNT       bind, SO_RCVBUFFORCE 128 MiB, drain: poll() + recvmmsg(64)
//   io-ref udp-send  SRC DST PORT COUNT    sendmmsg(64) of 22-byte datagrams (64-byte frames),
//                                          a destination address per message (unconnected)
//
// Each prints "ready", waits for a line on stdin, runs, and prints one JSON line:
// {"frames": n, "ns": elapsed, "cpuNs": user + system, "drops": n}. Elapsed runs from the go
// line to the last frame received (drains: until COUNT frames or 1 s without any) or sent.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
         ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void ready_then_wait(void) {
  printf("ready\n");
  fflush(stdout);
  char line[64];
  if (fgets(line, sizeof line, stdin) == NULL) exit(1);
}

static int open_tap(const char* name) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");
  return fd;
}

static struct sockaddr_in addr_of(const char* ip, int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) die("inet_pton");
  return a;
}

static unsigned char bufs[BATCH][2048];

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: see the header of io-ref.c\n");
    return 2;
  }
  const char* mode = argv[1];
  long count = strtol(argv[argc - 1], NULL, 10), frames = 0, drops = 0;
  int64_t c0, t0, last;

  if (strcmp(mode, "tap-read") == 0 || strcmp(mode, "udp-recv") == 0) {
    const int tap = mode[0] == 't';
    int fd;
    if (tap) {
      fd = open_tap(argv[2]);
    } else {
      fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int sz = 128 << 20;
      if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0) die("SO_RCVBUFFORCE");
      struct sockaddr_in a = addr_of(argv[2], atoi(argv[3]));
      if (bind(fd, (struct sockaddr*)&a, sizeof a) < 0) die("bind");
    }
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    ready_then_wait();
    c0 = cpu_ns();
    t0 = last = now_ns();
    struct pollfd p = {fd, POLLIN, 0};
    while (frames < count) {
      int r = poll(&p, 1, 1000);
      if (r == 0) break;  // a second without frames: the queue is empty
      if (r < 0) {
        if (errno == EINTR) continue;
        die("poll");
      }
      for (;;) {
        int n = tap ? (int)read(fd, bufs[0], sizeof bufs[0]) : recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
          if (errno == EAGAIN) break;
          if (errno == EINTR) continue;
          die("read");
        }
        frames += tap ? 1 : n;
      }
      last = now_ns();
    }
  } else if (strcmp(mode, "tap-write") == 0) {
    int fd = open_tap(argv[2]);
    memset(bufs[0], 0, 64);
    memset(bufs[0], 0x02, 6);  // a unicast MAC that is not the TAP's: dropped early
    bufs[0][12] = 0x88;        // local experimental EtherType
    bufs[0][13] = 0xb5;
    ready_then_wait();
    c0 = cpu_ns();
    t0 = now_ns();
    for (long i = 0; i < count; i++) {
      if (write(fd, bufs[0], 64) < 0) drops++;
      else frames++;
    }
    last = now_ns();
  } else if (strcmp(mode, "udp-send") == 0 && argc == 6) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in src = addr_of(argv[2], 0), dst = addr_of(argv[3], atoi(argv[4]));
    int sz = 128 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz);
    if (bind(fd, (struct sockaddr*)&src, sizeof src) < 0) die("bind");
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in to[BATCH];
    ready_then_wait();
    c0 = cpu_ns();
    t0 = now_ns();
    while (frames < count) {
      int n = count - frames < BATCH ? (int)(count - frames) : BATCH;
      for (int i = 0; i < n; i++) {  // built per batch, as a forwarder with mixed peers would
        to[i] = dst;
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = 22;
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_name = &to[i];
        msgs[i].msg_hdr.msg_namelen = sizeof to[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int r = sendmmsg(fd, msgs, (unsigned)n, MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EAGAIN || errno == ENOBUFS) { drops++; continue; }
        die("sendmmsg");
      }
      frames += r;
    }
    last = now_ns();
  } else {
    fprintf(stderr, "io-ref: bad mode or arguments\n");
    return 2;
  }
  const int64_t c1 = cpu_ns();
  printf("{\"frames\": %ld, \"ns\": %lld, \"cpuNs\": %lld, \"drops\": %ld}\n", frames, (long long)(last - t0),
         (long long)(c1 - c0), drops);
  return 0;
}
