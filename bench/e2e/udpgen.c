/*
 * udpgen: the e2e bench's small-packet generator and sink (compiled by bench/e2e at run time
 * with gcc -O2 into a temporary directory; runs inside a pod namespace).
 *
 *   udpgen send DST_IP PORT RATE_PPS SECONDS PAYLOAD
 *       Sends PAYLOAD-byte UDP datagrams (22 bytes = 64-byte Ethernet frames) from a connected
 *       socket with sendmmsg, in batches of at most 64, for SECONDS. RATE_PPS 0 = as fast as
 *       the socket takes them; otherwise paced on the monotonic clock: it sleeps (never spins)
 *       until at least max(1, rate x 100 us) datagrams are due, then sends what is due, so a
 *       slow moment is caught up in the next batches. Prints one JSON line:
 *       {"sent":N,"refused":R,"seconds":S,"errors":E,"userSeconds":U,"sysSeconds":Y}
 *       sent: datagrams the kernel accepted; refused: datagrams a failed sendmmsg did not send;
 *       seconds: from the start to the last successful send.
 *   udpgen sink PORT
 *       Binds 0.0.0.0:PORT with the smallest receive buffer and never reads: datagrams reach
 *       the pod's UDP layer (no ICMP port unreachable goes back) and are dropped there
 *       (RcvbufErrors), at the least cost to the shared CPUs. Exits on SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_until(double t) {
  struct timespec ts;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int do_sink(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) { perror("socket"); return 1; }
  int one = 1, small = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port), .sin_addr.s_addr = htonl(INADDR_ANY) };
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("bind"); return 1; }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  printf("ready\n");
  fflush(stdout);
  while (!stop) pause();
  close(fd);
  return 0;
}

static int do_send(const char *ip, int port, double rate, double seconds, int payload) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) { perror("socket"); return 1; }
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", ip); return 2; }
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 1; }
  if (payload < 1 || payload > 1400) { fprintf(stderr, "payload 1..1400\n"); return 2; }

  static char buf[BATCH][1400];
  static struct iovec iov[BATCH];
  static struct mmsghdr msgs[BATCH];
  for (int i = 0; i < BATCH; i++) {
    memset(buf[i], 'x', (size_t)payload);
    iov[i].iov_base = buf[i];
    iov[i].iov_len = (size_t)payload;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  /* The smallest burst worth waking up for: 100 us worth of datagrams, at least one. */
  double min_burst = rate > 0 ? rate * 100e-6 : 0;
  if (min_burst < 1) min_burst = 1;
  if (min_burst > BATCH) min_burst = BATCH;

  long long sent = 0, refused = 0, errors = 0;
  double t0 = now(), end = t0 + seconds, last = t0;
  for (;;) {
    double t = now();
    if (t >= end) break;
    long long want = BATCH;
    if (rate > 0) {
      /* Pacing counts refused datagrams as offered, so a refusal does not cause a burst later. */
      double due = rate * (t - t0) - (double)(sent + refused);
      if (due < min_burst) {
        double wake = t0 + ((double)(sent + refused) + min_burst) / rate;
        if (wake > end) wake = end;
        sleep_until(wake);
        continue;
      }
      want = (long long)due;
      if (want > BATCH) want = BATCH;
    }
    int n = sendmmsg(fd, msgs, (unsigned)want, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      /* ENOBUFS, or an ICMP error reported on the connected socket: the first datagram of the
         batch was not sent; count it and go on. */
      errors++;
      refused++;
      continue;
    }
    sent += n;
    last = now();
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"sent\":%lld,\"refused\":%lld,\"seconds\":%.6f,\"errors\":%lld,\"userSeconds\":%.6f,\"sysSeconds\":%.6f}\n",
         sent, refused, last - t0, errors,
         (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6);
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "sink") == 0) return do_sink(atoi(argv[2]));
  if (argc == 7 && strcmp(argv[1], "send") == 0) {
    return do_send(argv[2], atoi(argv[3]), atof(argv[4]), atof(argv[5]), atoi(argv[6]));
  }
  fprintf(stderr, "usage: udpgen send DST_IP PORT RATE_PPS SECONDS PAYLOAD | udpgen sink PORT\n");
  return 2;
}
