/*
 * flatnet-cni-fast: a CNI plugin launcher that starts in about a millisecond. A runtime runs it
 * as it runs any plugin (CNI_* in the environment, the network configuration on stdin); it
 * hands the invocation to the node's flatnet daemon, which runs the plugin's code in-process
 * (control command `cni-exec`), and prints the daemon's answer with its exit status. When the
 * daemon does not answer (not running, an older daemon), it runs the Node plugin instead, with
 * the same stdin, so every answer, errors included, is the plugin's own.
 *
 *   flatnet-cni-fast SOCKET NODE PLUGIN_MAIN      (written by `flatnet cni install --fast`)
 *
 * Wire: one line `{"id":1,"cmd":"cni-exec","env":{...CNI_*...},"pid":N,"stdin":"..."}`, one line back
 * `{"id":1,"ok":true,"data":{"rc":N,"stdout":"..."}}` (JSON as JSON.stringify writes it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct buf { char *p; size_t len, cap; };

static void put(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { perror("flatnet-cni-fast: realloc"); exit(1); }
    b->p = p; b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* put_json_string appends s as a JSON string: quotes, backslashes and control characters escaped. */
static void put_json_string(struct buf *b, const char *s, size_t n) {
  put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; put(b, e, 2); }
    else if (c < 0x20) { char e[8]; snprintf(e, sizeof e, "\\u%04x", c); put(b, e, 6); }
    else put(b, (const char *)&c, 1);
  }
  put(b, "\"", 1);
}

/* fallback runs the Node plugin with `in` as its stdin and exits with its status. */
static void fallback(char **argv, const struct buf *in) {
  int fds[2];
  if (pipe(fds) != 0) { perror("flatnet-cni-fast: pipe"); exit(1); }
  pid_t pid = fork();
  if (pid < 0) { perror("flatnet-cni-fast: fork"); exit(1); }
  if (pid == 0) {
    dup2(fds[0], 0);
    close(fds[0]); close(fds[1]);
    char *args[] = {argv[2], argv[3], NULL};
    execv(argv[2], args);
    perror("flatnet-cni-fast: exec node");
    _exit(127);
  }
  close(fds[0]);
  for (size_t off = 0; off < in->len;) {
    ssize_t w = write(fds[1], in->p + off, in->len - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
  close(fds[1]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

/* unescape_json_string decodes the JSON string starting after its opening quote at s; writes to out. */
static const char *unescape_json_string(const char *s, struct buf *out) {
  while (*s && *s != '"') {
    if (*s != '\\') { put(out, s, 1); s++; continue; }
    s++;
    char c = *s++;
    switch (c) {
      case 'n': put(out, "\n", 1); break;
      case 'r': put(out, "\r", 1); break;
      case 't': put(out, "\t", 1); break;
      case 'b': put(out, "\b", 1); break;
      case 'f': put(out, "\f", 1); break;
      case 'u': {
        char hex[5] = {0};
        for (int i = 0; i < 4 && *s; i++) hex[i] = *s++;
        unsigned v = (unsigned)strtoul(hex, NULL, 16);
        char u[3];
        if (v < 0x80) { u[0] = (char)v; put(out, u, 1); }
        else if (v < 0x800) { u[0] = (char)(0xc0 | (v >> 6)); u[1] = (char)(0x80 | (v & 0x3f)); put(out, u, 2); }
        else { u[0] = (char)(0xe0 | (v >> 12)); u[1] = (char)(0x80 | ((v >> 6) & 0x3f)); u[2] = (char)(0x80 | (v & 0x3f)); put(out, u, 3); }
        break;
      }
      default: put(out, &c, 1);
    }
  }
  return s;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: flatnet-cni-fast SOCKET NODE PLUGIN_MAIN\n");
    return 1;
  }
  struct buf in = {0};
  char chunk[8192];
  for (;;) {
    ssize_t r = read(0, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    put(&in, chunk, (size_t)r);
  }
  if (!in.p) put(&in, "", 0);

  struct buf req = {0};
  puts_(&req, "{\"id\":1,\"cmd\":\"cni-exec\",\"env\":{");
  int first = 1;
  for (char **e = environ; *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    size_t klen = (size_t)(eq - *e);
    if (!(klen > 4 && strncmp(*e, "CNI_", 4) == 0) && !(klen == 17 && strncmp(*e, "FLATNET_CNI_TRACE", 17) == 0)) continue;
    if (!first) put(&req, ",", 1);
    first = 0;
    put_json_string(&req, *e, klen);
    put(&req, ":", 1);
    put_json_string(&req, eq + 1, strlen(eq + 1));
  }
  /* Our pid: the daemon opens CNI_NETNS through /proc/PID/root, as our mount namespace sees it. */
  char pid[32];
  snprintf(pid, sizeof pid, "},\"pid\":%d", (int)getpid());
  puts_(&req, pid);
  puts_(&req, ",\"stdin\":");
  put_json_string(&req, in.p, in.len);
  puts_(&req, "}\n");

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (fd < 0 || strlen(argv[1]) >= sizeof sa.sun_path) fallback(argv, &in);
  strcpy(sa.sun_path, argv[1]);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) fallback(argv, &in);
  for (size_t off = 0; off < req.len;) {
    ssize_t w = write(fd, req.p + off, req.len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fallback(argv, &in);
    off += (size_t)w;
  }
  struct buf resp = {0};
  while (!resp.p || !strchr(resp.p, '\n')) {
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    put(&resp, chunk, (size_t)r);
  }
  close(fd);
  /* Only an answer of ours counts; anything else (an older daemon, a refusal) goes to the Node plugin. */
  if (!resp.p || !strstr(resp.p, "\"ok\":true")) fallback(argv, &in);
  const char *rc = strstr(resp.p, "\"rc\":");
  const char *so = strstr(resp.p, "\"stdout\":\"");
  if (!rc || !so) fallback(argv, &in);
  struct buf out = {0};
  unescape_json_string(so + 10, &out);
  if (out.len > 0 && fwrite(out.p, 1, out.len, stdout) != out.len) return 1;
  fflush(stdout);
  return atoi(rc + 5);
}
