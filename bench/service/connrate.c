/*
 * connrate: the Service connection-rate bench's two ends (compiled by connrate.bench.ts with
 * gcc -O2 into a temporary directory; each runs inside a pod namespace).
 *
 *   connrate serve PORT
 *       Accepts TCP connections on 0.0.0.0:PORT (epoll, backlog 4096) and answers each with one
 *       byte, then closes it: the server closes first, so the client's side ends passively and
 *       keeps no TIME_WAIT (its ports are free again at once). Exits on SIGTERM/SIGINT.
 *   connrate client DST_IP PORT SECONDS INFLIGHT
 *       Keeps INFLIGHT connections to DST_IP:PORT open at once for SECONDS: non-blocking
 *       connect, wait for the server's byte and its FIN, close, open the next. A connection
 *       counts when the byte and the end arrived; one refused or reset counts as an error; one
 *       not done within 2 s is abandoned as a timeout. Prints one JSON line:
 *       {"connections":N,"errors":E,"timeouts":T,"seconds":S,"userSeconds":U,"sysSeconds":Y}
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag = 0;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int serve(int port) {
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
  if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) { perror("bind/listen"); return 1; }
  int ep = epoll_create1(0);
  struct epoll_event ev = { .events = EPOLLIN, .data.fd = ls };
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  printf("ready\n");
  fflush(stdout);
  while (!stop_flag) {
    struct epoll_event got[1];
    int n = epoll_wait(ep, got, 1, 200);
    if (n <= 0) continue;
    for (;;) {
      int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
      if (c < 0) break;
      (void)!send(c, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
      close(c);
    }
  }
  return 0;
}

struct slot { int fd; double started; };

static int client(const char *dst, int port, double seconds, int inflight) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
  if (inet_pton(AF_INET, dst, &a.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", dst); return 2; }
  int ep = epoll_create1(0);
  struct slot *slots = calloc(inflight, sizeof *slots);
  long done = 0, errors = 0, timeouts = 0;
  double t0 = now_s(), end = t0 + seconds, last_done = t0, last_scan = t0;
  char buf[64];
  /* open: a new non-blocking connect in slot i (the slot index is the epoll cookie). */
  #define OPEN(i) do { \
      int fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0); \
      slots[i].fd = fd_; slots[i].started = now_s(); \
      if (connect(fd_, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) { errors++; close(fd_); slots[i].fd = -1; break; } \
      struct epoll_event e_ = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)(i) }; \
      epoll_ctl(ep, EPOLL_CTL_ADD, fd_, &e_); \
    } while (0)
  for (int i = 0; i < inflight; i++) { slots[i].fd = -1; OPEN(i); }
  struct epoll_event evs[256];
  while (!stop_flag) {
    double t = now_s();
    if (t >= end) break;
    int n = epoll_wait(ep, evs, 256, 50);
    for (int k = 0; k < n; k++) {
      int i = (int)evs[k].data.u32, fd = slots[i].fd;
      if (fd < 0) continue;
      int finished = 0, failed = 0;
      if (evs[k].events & EPOLLERR) failed = 1;
      else {
        for (;;) {
          ssize_t r = recv(fd, buf, sizeof buf, 0);
          if (r > 0) continue;
          if (r == 0) { finished = 1; break; }
          if (errno == EAGAIN) break;
          failed = 1;
          break;
        }
      }
      if (!finished && !failed) continue;
      if (finished) { done++; last_done = now_s(); } else errors++;
      close(fd);
      slots[i].fd = -1;
      if (now_s() < end) OPEN(i);
    }
    t = now_s();
    if (t - last_scan > 0.1) {
      last_scan = t;
      for (int i = 0; i < inflight; i++) {
        if (slots[i].fd >= 0 && t - slots[i].started > 2.0) { timeouts++; close(slots[i].fd); slots[i].fd = -1; if (t < end) OPEN(i); }
        else if (slots[i].fd < 0 && t < end) OPEN(i);
      }
    }
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"connections\":%ld,\"errors\":%ld,\"timeouts\":%ld,\"seconds\":%.6f,\"userSeconds\":%.3f,\"sysSeconds\":%.3f}\n",
         done, errors, timeouts, (done > 0 ? last_done : now_s()) - t0,
         ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && strcmp(argv[1], "serve") == 0) return serve(atoi(argv[2]));
  if (argc == 6 && strcmp(argv[1], "client") == 0) return client(argv[2], atoi(argv[3]), atof(argv[4]), atoi(argv[5]));
  fprintf(stderr, "usage: connrate serve PORT | connrate client DST_IP PORT SECONDS INFLIGHT\n");
  return 2;
}
