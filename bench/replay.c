/* Replay a fixed HTTP/1.1 request list over N keep-alive connections and time every request.

   cc -O2 -o replay bench/replay.c
   replay HOST PORT CONNECTIONS REQUESTS_FILE OUT_FILE [RATE]

   bench/origin.py builds it: wrk can replay a list from Lua, but it reports one latency
   histogram for all requests, and the origin bench needs p50/p99 per request class
   (segment, range, playlist, 404) from the same mixed run. One thread, epoll, no
   pipelining: each connection sends its next request once the previous answer's last
   byte arrived, so a slow answer delays only its own connection (as with wrk).
   With RATE (requests/s, all connections together) request i is due at i/RATE s and goes
   out then on an idle connection (players with think time, not a saturating crowd); its
   latency counts from when it was due, so a server that falls behind is charged for the
   wait (no coordinated omission, as in wrk2).

   REQUESTS_FILE: one request per line, "PATH<TAB>RANGE" (RANGE is "-" for none).
   Requests are handed out in file order, each exactly once.
   OUT_FILE: one line per request in file order: "STATUS BYTES MICROSECONDS"
   (BYTES: body bytes received), then a last line "wall_us WALL".
   Bodies framed by Content-Length or sent chunked (the nginx front's signed manifests, their
   token put into one kept copy) are understood; any other framing fails the run (exit 3). */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *req;  /* the request's bytes */
    int len;
    int status;
    long long bytes;
    long long us;
} Req;

typedef struct {
    int fd;
    long cur;       /* request index in flight, -1: none */
    int sent;       /* bytes of the request written */
    char head[16384];
    int head_len;   /* header bytes collected */
    long long body_left; /* -1: still reading headers; CHUNKED: a chunked body */
    int cstate;          /* chunked: 0 size line, 1 data, 2 the CRLF after data, 3 trailers */
    long long cleft;     /* chunked: data bytes left in this chunk */
    char cline[256];     /* chunked: the size (or trailer) line so far */
    int clen;
    long long t0;
    int retries;
} Conn;

#define CHUNKED (1LL << 62)

static Req *reqs;
static long nreqs, next_req, done_reqs;
static struct sockaddr_in addr;
static int ep;
static char buf[1 << 20];
static double rate;          /* 0: closed loop */
static long long t_start;
static Conn **idle;          /* paced mode: connections without a request */
static int nidle;

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what) { perror(what); exit(2); }

static void open_conn(Conn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) die("connect");
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

static void want(Conn *c, unsigned events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static long long due(long i) { return t_start + (long long)(i * 1e6 / rate); }

static void assign(Conn *c, long long t0) {
    if (c->fd < 0) open_conn(c);
    c->cur = next_req++;
    c->sent = 0; c->head_len = 0; c->body_left = -1; c->retries = 0;
    c->t0 = t0;
    want(c, EPOLLOUT);
}

static void start_next(Conn *c) {
    if (next_req >= nreqs) {
        c->cur = -1;
        if (c->fd >= 0) { epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); c->fd = -1; }
        return;
    }
    if (rate > 0) { c->cur = -1; if (c->fd >= 0) want(c, 0); idle[nidle++] = c; return; }
    assign(c, now_us());
}

/* paced mode: send every request that is due on an idle connection */
static void dispatch(void) {
    long long now = now_us();
    while (nidle > 0 && next_req < nreqs && due(next_req) <= now) assign(idle[--nidle], due(next_req));
}

static void reconnect_retry(Conn *c) {
    /* the server closed a kept-alive connection before answering: resend on a new one */
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (++c->retries > 3) { fprintf(stderr, "request %ld: connection closed 3 times\n", c->cur); exit(3); }
    open_conn(c);
    c->sent = 0; c->head_len = 0; c->body_left = -1;
}

static void finish(Conn *c) {
    Req *r = &reqs[c->cur];
    r->us = now_us() - c->t0;
    done_reqs++;
    start_next(c);
}

/* headers complete in c->head[0..end): status and Content-Length */
static void parse_head(Conn *c, int end) {
    Req *r = &reqs[c->cur];
    c->head[end - 1] = 0;
    if (sscanf(c->head, "HTTP/1.%*d %d", &r->status) != 1) { fprintf(stderr, "bad status line\n"); exit(3); }
    long long length = -1;
    for (char *line = strstr(c->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (!strncasecmp(line + 2, "content-length:", 15)) length = atoll(line + 17);
    }
    for (char *line = strstr(c->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (!strncasecmp(line + 2, "transfer-encoding:", 18)) {
            char *eol = strstr(line + 2, "\r\n");
            size_t value = eol ? (size_t)(eol - (line + 20)) : strlen(line + 20);
            if (!memmem(line + 20, value, "chunked", 7) || length >= 0) {
                fprintf(stderr, "request %ld: unsupported framing\n", c->cur); exit(3);
            }
            c->body_left = CHUNKED; c->cstate = 0; c->clen = 0;
            return;
        }
    }
    if (length < 0) length = (r->status == 304 || r->status == 204) ? 0 : -2;
    if (length == -2) { fprintf(stderr, "request %ld: no content-length (status %d)\n", c->cur, r->status); exit(3); }
    c->body_left = length;
}

/* Feed n bytes of a chunked body; 1 once its last chunk and trailers are in. Counts the data bytes. */
static int feed_chunked(Conn *c, const char *p, long long n) {
    Req *r = &reqs[c->cur];
    for (long long i = 0; i < n;) {
        if (c->cstate == 1) {
            long long take = n - i < c->cleft ? n - i : c->cleft;
            r->bytes += take; c->cleft -= take; i += take;
            if (c->cleft == 0) { c->cstate = 2; c->clen = 0; }
            continue;
        }
        char ch = p[i++];
        if (c->clen == (int)sizeof c->cline - 1) { fprintf(stderr, "request %ld: chunk line too long\n", c->cur); exit(3); }
        c->cline[c->clen++] = ch;
        if (ch != '\n') continue;
        c->cline[c->clen] = 0;
        int blank = c->clen <= 2;
        c->clen = 0;
        if (c->cstate == 0) {
            char *end;
            c->cleft = strtoll(c->cline, &end, 16);
            if (end == c->cline || c->cleft < 0) { fprintf(stderr, "request %ld: bad chunk size\n", c->cur); exit(3); }
            c->cstate = c->cleft ? 1 : 3;
        } else if (c->cstate == 2) {
            if (!blank) { fprintf(stderr, "request %ld: no CRLF after a chunk\n", c->cur); exit(3); }
            c->cstate = 0;
        } else if (blank) {  /* the empty line after the last chunk (and any trailers) */
            if (i != n) { fprintf(stderr, "request %ld: bytes after the body\n", c->cur); exit(3); }
            return 1;
        }
    }
    return 0;
}

static void on_readable(Conn *c) {
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EAGAIN) return;
            if (errno == ECONNRESET && c->head_len == 0 && c->body_left < 0) { reconnect_retry(c); return; }
            die("recv");
        }
        if (n == 0) {
            if (c->head_len == 0 && c->body_left < 0) { reconnect_retry(c); return; }
            fprintf(stderr, "request %ld: closed mid-answer\n", c->cur); exit(3);
        }
        ssize_t off = 0;
        if (c->body_left < 0) {
            int take = n < (ssize_t)sizeof c->head - c->head_len ? (int)n : (int)sizeof c->head - c->head_len;
            memcpy(c->head + c->head_len, buf, take);
            int before = c->head_len;
            c->head_len += take;
            char *end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
            if (!end) {
                if (c->head_len == (int)sizeof c->head) { fprintf(stderr, "headers too long\n"); exit(3); }
                continue;
            }
            int head_end = (int)(end - c->head) + 4;
            parse_head(c, head_end);
            off = head_end - before;
        }
        long long body = n - off;
        if (c->body_left == CHUNKED) {
            if (feed_chunked(c, buf + off, body)) { finish(c); return; }
            continue;
        }
        if (body > c->body_left) { fprintf(stderr, "request %ld: more bytes than announced\n", c->cur); exit(3); }
        reqs[c->cur].bytes += body;
        c->body_left -= body;
        if (c->body_left == 0) { finish(c); return; }
    }
}

static void on_writable(Conn *c) {
    Req *r = &reqs[c->cur];
    while (c->sent < r->len) {
        ssize_t n = send(c->fd, r->req + c->sent, r->len - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) return;
            if ((errno == EPIPE || errno == ECONNRESET) && c->sent == 0) { reconnect_retry(c); return; }
            die("send");
        }
        c->sent += (int)n;
    }
    want(c, EPOLLIN);
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) { fprintf(stderr, "usage: replay HOST PORT CONNECTIONS REQUESTS_FILE OUT_FILE [RATE]\n"); return 2; }
    rate = argc == 7 ? atof(argv[6]) : 0;
    addr.sin_family = AF_INET;
    addr.sin_port = htons(atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) { fprintf(stderr, "HOST must be an IPv4 address\n"); return 2; }
    int nconn = atoi(argv[3]);
    struct rlimit lim = {nconn + 64, nconn + 64};
    setrlimit(RLIMIT_NOFILE, &lim);

    FILE *in = fopen(argv[4], "r");
    if (!in) die(argv[4]);
    long cap = 1024;
    reqs = calloc(cap, sizeof *reqs);
    char line[4096];
    while (fgets(line, sizeof line, in)) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        char *range = tab + 1;
        range[strcspn(range, "\r\n")] = 0;
        if (nreqs == cap) { cap *= 2; reqs = realloc(reqs, cap * sizeof *reqs); memset(reqs + nreqs, 0, (cap - nreqs) * sizeof *reqs); }
        char req[8192];
        int len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%s\r\nAccept-Encoding: gzip\r\n%s%s%s\r\n",
                           line, argv[1], argv[2], strcmp(range, "-") ? "Range: " : "",
                           strcmp(range, "-") ? range : "", strcmp(range, "-") ? "\r\n" : "");
        reqs[nreqs].req = strndup(req, len);
        reqs[nreqs].len = len;
        nreqs++;
    }
    fclose(in);

    ep = epoll_create1(0);
    if (nconn > nreqs) nconn = (int)nreqs;
    Conn *conns = calloc(nconn, sizeof *conns);
    idle = calloc(nconn, sizeof *idle);
    long long t0 = now_us();
    t_start = t0;
    for (int i = 0; i < nconn; i++) { open_conn(&conns[i]); conns[i].cur = -1; start_next(&conns[i]); }
    struct epoll_event evs[512];
    long long progress = now_us();
    long last_done = 0;
    while (done_reqs < nreqs) {
        int timeout = 1000;
        if (rate > 0 && nidle > 0 && next_req < nreqs) {
            long long wait = due(next_req) - now_us();
            timeout = wait <= 0 ? 0 : (int)(wait / 1000) + 1;
        }
        int n = epoll_wait(ep, evs, 512, timeout);
        if (done_reqs != last_done) { last_done = done_reqs; progress = now_us(); }
        if (now_us() - progress > 60000000) { fprintf(stderr, "no progress for 60 s (%ld of %ld done)\n", done_reqs, nreqs); return 3; }
        for (int i = 0; i < n; i++) {
            Conn *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            if (c->cur < 0) {  /* an idle kept-alive connection closed by the server: reopen when needed */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); c->fd = -1;
                continue;
            }
            if (c->body_left < 0 && c->sent < reqs[c->cur].len) {
                if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(c);
            } else if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                on_readable(c);
            }
        }
        if (rate > 0) dispatch();
    }
    long long wall = now_us() - t0;
    FILE *out = fopen(argv[5], "w");
    if (!out) die(argv[5]);
    for (long i = 0; i < nreqs; i++) fprintf(out, "%d %lld %lld\n", reqs[i].status, reqs[i].bytes, reqs[i].us);
    fprintf(out, "wall_us %lld\n", wall);
    fclose(out);
    return 0;
}
