/*
 * gen: the e2e bench's traffic tools (compiled by bench/e2e at run time with gcc -O2 into a
 * temporary directory; each runs inside a pod namespace).
 *
 *   gen send DST_IP PORT RATE_PPS SECONDS PAYLOAD
 *       Sends PAYLOAD-byte UDP datagrams (22 bytes = 64-byte Ethernet frames) from a connected
 *       socket with sendmmsg, in batches of at most 64, for SECONDS. RATE_PPS 0 = as fast as
 *       the socket takes them; otherwise paced on the monotonic clock: it sleeps (never spins)
 *       until at least max(1, rate x 100 us) datagrams are due, then sends what is due, so a
 *       slow moment is caught up in the next batches. Prints one JSON line:
 *       {"sent":N,"refused":R,"seconds":S,"errors":E,"userSeconds":U,"sysSeconds":Y}
 *       sent: datagrams the kernel accepted; refused: datagrams a failed sendmmsg did not send;
 *       seconds: from the start to the last successful send.
 *   gen sink PORT
 *       Binds 0.0.0.0:PORT with the smallest receive buffer and never reads: datagrams reach
 *       the pod's UDP layer (no ICMP port unreachable goes back) and are dropped there
 *       (RcvbufErrors), at the least cost to the shared CPUs. Exits on SIGTERM/SIGINT.
 *   gen icmp DST_IP COUNT INTERVAL_US
 *       ICMP echo requests (56-byte payload, like ping) every INTERVAL_US, each waited for with a
 *       blocking poll() (1 s timeout) and the next one sent at its scheduled time after a sleep.
 *       RTT as iputils ping computes it: the reply's kernel receive timestamp (SO_TIMESTAMPNS)
 *       minus the time just before sendto(). Unlike iputils ping, which busy-polls a whole core
 *       at intervals under 10 ms, it sleeps between probes, so it leaves the CPUs to the data
 *       plane. Prints {"sent":N,"received":M,"rttNs":[...]} (one entry per reply).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdint.h>
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

static uint16_t csum16(const void *data, size_t len) {
  const uint8_t *p = data;
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += (uint32_t)(p[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons((uint16_t)~sum);
}

static int64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int do_icmp(const char *ip, int count, double interval_us) {
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (fd < 0) { perror("socket(SOCK_RAW, IPPROTO_ICMP)"); return 1; }
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0) { perror("SO_TIMESTAMPNS"); return 1; }
  struct sockaddr_in dst = { .sin_family = AF_INET };
  if (inet_pton(AF_INET, ip, &dst.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", ip); return 2; }
  if (count < 1 || count > 1000000) { fprintf(stderr, "count 1..1000000\n"); return 2; }
  int64_t *rtt = calloc((size_t)count, sizeof *rtt);
  if (rtt == NULL) return 1;
  uint16_t id = (uint16_t)(getpid() & 0xffff);
  int received = 0;
  double t0 = now();
  for (int seq = 1; seq <= count; seq++) {
    uint8_t pkt[8 + 56];
    memset(pkt, 0, sizeof pkt);
    struct icmphdr *h = (struct icmphdr *)pkt;
    h->type = ICMP_ECHO;
    h->un.echo.id = htons(id);
    h->un.echo.sequence = htons((uint16_t)seq);
    h->checksum = csum16(pkt, sizeof pkt);
    int64_t sent_at = realtime_ns();
    if (sendto(fd, pkt, sizeof pkt, 0, (struct sockaddr *)&dst, sizeof dst) < 0) { perror("sendto"); return 1; }
    double deadline = now() + 1.0;
    for (;;) {
      int ms = (int)((deadline - now()) * 1000);
      if (ms < 0) break;
      struct pollfd pfd = { .fd = fd, .events = POLLIN };
      int pr = poll(&pfd, 1, ms);
      if (pr < 0 && errno == EINTR) continue;
      if (pr <= 0) break;
      uint8_t buf[256];
      char cbuf[256];
      struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
      struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
      ssize_t n = recvmsg(fd, &mh, 0);
      if (n < (ssize_t)sizeof(struct iphdr)) continue;
      const struct iphdr *iph = (const struct iphdr *)buf;
      size_t ihl = (size_t)iph->ihl * 4;
      if ((size_t)n < ihl + 8) continue;
      const struct icmphdr *r = (const struct icmphdr *)(buf + ihl);
      if (r->type != ICMP_ECHOREPLY || ntohs(r->un.echo.id) != id || ntohs(r->un.echo.sequence) != (uint16_t)seq) continue;
      int64_t at = realtime_ns();
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          struct timespec ts;
          memcpy(&ts, CMSG_DATA(c), sizeof ts);
          at = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        }
      }
      rtt[received++] = at - sent_at;
      break;
    }
    if (seq < count) sleep_until(t0 + (double)seq * interval_us * 1e-6);
  }
  printf("{\"sent\":%d,\"received\":%d,\"rttNs\":[", count, received);
  for (int i = 0; i < received; i++) printf(i == 0 ? "%lld" : ",%lld", (long long)rtt[i]);
  printf("]}\n");
  free(rtt);
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "sink") == 0) return do_sink(atoi(argv[2]));
  if (argc == 7 && strcmp(argv[1], "send") == 0) {
    return do_send(argv[2], atoi(argv[3]), atof(argv[4]), atof(argv[5]), atoi(argv[6]));
  }
  if (argc == 5 && strcmp(argv[1], "icmp") == 0) return do_icmp(argv[2], atoi(argv[3]), atof(argv[4]));
  fprintf(stderr, "usage: gen send DST_IP PORT RATE_PPS SECONDS PAYLOAD | gen sink PORT | gen icmp DST_IP COUNT INTERVAL_US\n");
  return 2;
}
