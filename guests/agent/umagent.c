/*
 * umagent: the Unmachine guest agent. Holds its port (virtio-console /dev/hvc0, or COM2) open
 * and raw, and speaks core/agent/'s framed protocol with the host's session.ts: hello, ping,
 * exec, clipboard, display, setTime (the clock, after a resume). Frames are "UM" + u32 LE length + payload (capped at MAX_PAYLOAD);
 * every length from the host is checked against what is left. One process, one poll loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define AGENT_VERSION "1.0.0"
#define PROTO_MIN 1
#define PROTO_MAX 1

/* The same numbers as core/agent/frame.ts and messages.ts (LIMITS). */
#define FRAME_HEADER 6
#define MAX_PAYLOAD (1024 * 1024 + 64 * 1024)
#define MSG_HEADER 6
#define MAX_CLIPBOARD (1024 * 1024)
#define MAX_COMMAND (64 * 1024)
#define MAX_OUTPUT (1024 * 1024)
#define MAX_TIMEOUT_MS (24u * 60 * 60 * 1000)
#define MAX_INFO 256
#define MAX_ERROR 1024
#define MAX_FIELDS 64

#define T_HELLO 1
#define T_PING 2
#define T_PONG 3
#define T_EXEC 4
#define T_EXEC_RESULT 5
#define T_CLIPBOARD 6
#define T_DISPLAY 7
#define T_ERROR 8
#define T_SET_TIME 9

#define MAX_JOBS 8
#define TICK_MS 300
#define DEFAULT_PORT "/dev/hvc0"
#define DEFAULT_CLIPBOARD "/run/unmachine/clipboard"
#define FB_SIZE "/sys/class/graphics/fb0/virtual_size"

static int port_fd = -1;
static int verbose;
static unsigned negotiated; /* agreed protocol version, 0 until the host answers hello */
static const char *clip_path = DEFAULT_CLIPBOARD;
static int sigchld_pipe[2] = {-1, -1};

static void logmsg(const char *fmt, ...)
{
	va_list ap;
	fputs("umagent: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------------------ */
/* UTF-8: what the guest sends as text must be valid (the host checks strictly). */

/* Length of the valid sequence at p (n bytes left), or 0 if the byte at p starts none. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len, i;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/*
 * Copies src into dst (room for cap bytes) as valid UTF-8: each invalid byte becomes U+FFFD,
 * and the copy stops before a character that would not fit. Returns the bytes written.
 */
static size_t utf8_clean(unsigned char *dst, size_t cap, const unsigned char *src, size_t n)
{
	size_t in = 0, out = 0;
	while (in < n) {
		size_t len = utf8_seq(src + in, n - in);
		if (len == 0) {
			if (cap - out < 3)
				break;
			dst[out++] = 0xef;
			dst[out++] = 0xbf;
			dst[out++] = 0xbd;
			in++;
			continue;
		}
		if (cap - out < len)
			break;
		memcpy(dst + out, src + in, len);
		out += len;
		in += len;
	}
	return out;
}

/* ------------------------------------------------------------------------ */
/* Writing frames. One message is built at a time in `out`, then written whole. */

static unsigned char out[FRAME_HEADER + MAX_PAYLOAD];
static size_t out_len;
static int out_overflow;

static void write_all(const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(port_fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = {.fd = port_fd, .events = POLLOUT};
				poll(&pfd, 1, 1000);
				continue;
			}
			logmsg("cannot write to the agent port: %s", strerror(errno));
			exit(1);
		}
		p += w;
		n -= (size_t)w;
	}
}

static void msg_begin(unsigned version, unsigned type, uint32_t id)
{
	out[0] = 'U';
	out[1] = 'M';
	out[FRAME_HEADER] = (unsigned char)version;
	out[FRAME_HEADER + 1] = (unsigned char)type;
	put_le32(out + FRAME_HEADER + 2, id);
	out_len = FRAME_HEADER + MSG_HEADER;
	out_overflow = 0;
}

/* Room for a field of n value bytes? */
static int msg_room(size_t n)
{
	if (out_overflow || n > sizeof out || sizeof out - out_len < 5 || sizeof out - out_len - 5 < n) {
		out_overflow = 1;
		return 0;
	}
	return 1;
}

static void msg_bytes(unsigned tag, const void *value, size_t n)
{
	if (!msg_room(n))
		return;
	out[out_len] = (unsigned char)tag;
	put_le32(out + out_len + 1, (uint32_t)n);
	if (n > 0)
		memcpy(out + out_len + 5, value, n);
	out_len += 5 + n;
}

static void msg_u32(unsigned tag, uint32_t v)
{
	unsigned char b[4];
	put_le32(b, v);
	msg_bytes(tag, b, 4);
}

/* A text field, cleaned to valid UTF-8 and capped at max bytes. */
static void msg_text(unsigned tag, const void *value, size_t n, size_t max)
{
	if (!msg_room(max < n * 3 ? max : n * 3))
		return;
	out[out_len] = (unsigned char)tag;
	size_t len = utf8_clean(out + out_len + 5, max, value, n);
	put_le32(out + out_len + 1, (uint32_t)len);
	out_len += 5 + len;
}

static void msg_cstr(unsigned tag, const char *s, size_t max)
{
	msg_text(tag, s, strlen(s), max);
}

static void msg_send(void)
{
	if (out_overflow) {
		logmsg("message of type %u too large; not sent", out[FRAME_HEADER + 1]);
		return;
	}
	put_le32(out + 2, (uint32_t)(out_len - FRAME_HEADER));
	write_all(out, out_len);
}

static void send_error(unsigned version, uint32_t id, const char *message)
{
	msg_begin(version, T_ERROR, id);
	msg_cstr(1, message, MAX_ERROR);
	msg_send();
}

/* ------------------------------------------------------------------------ */
/* Reading fields of a received payload. */

struct field {
	unsigned tag;
	uint32_t len;
	const unsigned char *value;
};

/* Splits the TLV fields after the message header; -1 if they are malformed. */
static int parse_fields(const unsigned char *p, size_t n, struct field *fields, int max)
{
	size_t at = MSG_HEADER;
	int count = 0;
	while (at < n) {
		if (n - at < 5 || count >= max)
			return -1;
		uint32_t len = get_le32(p + at + 1);
		if (len > n - at - 5)
			return -1;
		fields[count].tag = p[at];
		fields[count].len = len;
		fields[count].value = p + at + 5;
		count++;
		at += 5 + (size_t)len;
	}
	return count;
}

static const struct field *find_field(const struct field *fields, int count, unsigned tag)
{
	for (int i = 0; i < count; i++)
		if (fields[i].tag == tag)
			return &fields[i];
	return NULL;
}

/* A u32 field in [min, max]; 0 and *ok = 0 when absent or out of range. */
static uint32_t field_u32(const struct field *fields, int count, unsigned tag, uint32_t min, uint32_t max, int *ok)
{
	const struct field *f = find_field(fields, count, tag);
	if (!f || f->len != 4) {
		*ok = 0;
		return 0;
	}
	uint32_t v = get_le32(f->value);
	if (v < min || v > max)
		*ok = 0;
	return v;
}

/* ------------------------------------------------------------------------ */
/* hello */

static void send_hello(void)
{
	struct utsname u;
	static const char *caps[] = {"ping", "exec", "clipboard", "display", "time"};
	msg_begin(PROTO_MAX, T_HELLO, 0);
	msg_u32(1, PROTO_MIN);
	msg_u32(2, PROTO_MAX);
	msg_cstr(4, "umagent " AGENT_VERSION, MAX_INFO);
	if (uname(&u) == 0) {
		msg_cstr(5, u.sysname, MAX_INFO);
		msg_cstr(6, u.release, MAX_INFO);
		msg_cstr(7, u.version, MAX_INFO);
		msg_cstr(8, u.machine, MAX_INFO);
		msg_cstr(9, u.nodename, MAX_INFO);
	}
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
		msg_cstr(10, caps[i], 32);
	msg_u32(11, (uint32_t)getpid());
	msg_send();
}

/* ------------------------------------------------------------------------ */
/* display */

static unsigned disp_mode, disp_w, disp_h; /* last sent; disp_w == 0: nothing sent yet */

static void check_display(void)
{
	unsigned mode = 0, w = 80, h = 25;
	char buf[64];
	int fd = open(FB_SIZE, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			unsigned fw, fh;
			buf[n] = 0;
			if (sscanf(buf, "%u,%u", &fw, &fh) == 2 && fw >= 1 && fw <= 65535 && fh >= 1 && fh <= 65535) {
				mode = 1;
				w = fw;
				h = fh;
			}
		}
	}
	if (!negotiated || (mode == disp_mode && w == disp_w && h == disp_h))
		return;
	msg_begin(negotiated, T_DISPLAY, 0);
	msg_u32(1, mode);
	msg_u32(2, w);
	msg_u32(3, h);
	msg_send();
	disp_mode = mode;
	disp_w = w;
	disp_h = h;
}

/* ------------------------------------------------------------------------ */
/* clipboard: the file's text is the guest's clipboard */

struct clip_stat {
	int exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

static struct clip_stat clip_synced; /* the file as last agreed with the host */
static struct clip_stat clip_seen;   /* the file at the previous tick */
static unsigned char *clip_text;     /* its content then (raw bytes) */
static size_t clip_len;
static unsigned char clip_buf[MAX_CLIPBOARD + 1];
static unsigned char clip_clean[MAX_CLIPBOARD];

static struct clip_stat clip_stat_now(void)
{
	struct clip_stat s;
	struct stat st;
	memset(&s, 0, sizeof s);
	if (stat(clip_path, &st) == 0 && S_ISREG(st.st_mode)) {
		s.exists = 1;
		s.dev = st.st_dev;
		s.ino = st.st_ino;
		s.size = st.st_size;
		s.mtime = st.st_mtim;
		s.ctime = st.st_ctim;
	}
	return s;
}

static int clip_same(const struct clip_stat *a, const struct clip_stat *b)
{
	if (a->exists != b->exists)
		return 0;
	if (!a->exists)
		return 1;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void clip_remember(const unsigned char *text, size_t len)
{
	unsigned char *copy = malloc(len ? len : 1);
	if (!copy) {
		logmsg("out of memory for the clipboard");
		return;
	}
	if (len)
		memcpy(copy, text, len);
	free(clip_text);
	clip_text = copy;
	clip_len = len;
}

/* mkdir -p of the clipboard file's folder. */
static void clip_make_dir(void)
{
	char dir[PATH_MAX];
	size_t n = strlen(clip_path);
	if (n >= sizeof dir)
		return;
	memcpy(dir, clip_path, n + 1);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = 0;
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		mkdir(dir, 0755);
		*p = '/';
	}
	mkdir(dir, 0755);
}

/* The host set the clipboard: replace the file at once (write, then rename). */
static void clip_set(const unsigned char *text, size_t len)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", clip_path, (long)getpid()) >= (int)sizeof tmp) {
		logmsg("clipboard path too long: %s", clip_path);
		return;
	}
	clip_make_dir();
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		logmsg("cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	size_t at = 0;
	while (at < len) {
		ssize_t w = write(fd, text + at, len - at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			logmsg("cannot write %s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return;
		}
		at += (size_t)w;
	}
	close(fd);
	if (rename(tmp, clip_path) != 0) {
		logmsg("cannot replace %s: %s", clip_path, strerror(errno));
		unlink(tmp);
		return;
	}
	/* What the host set is never sent back to it. */
	clip_synced = clip_stat_now();
	clip_seen = clip_synced;
	clip_remember(text, len);
}

/* Reads the file (at most MAX_CLIPBOARD bytes); -1 if it cannot be read. */
static ssize_t clip_read(void)
{
	int fd = open(clip_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	size_t len = 0;
	while (len < sizeof clip_buf) {
		ssize_t n = read(fd, clip_buf + len, sizeof clip_buf - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len > MAX_CLIPBOARD) {
		logmsg("%s holds more than %d bytes; sending the first %d", clip_path, MAX_CLIPBOARD, MAX_CLIPBOARD);
		len = MAX_CLIPBOARD;
	}
	return (ssize_t)len;
}

/*
 * Every tick: a file that changed and then stayed the same for one tick (so a write in
 * progress is not sent half done) is sent to the host, unless its text is what the host has.
 */
static void check_clipboard(void)
{
	struct clip_stat now = clip_stat_now();
	if (clip_same(&now, &clip_synced)) {
		clip_seen = now;
		return;
	}
	if (!clip_same(&now, &clip_seen)) {
		clip_seen = now;
		return;
	}
	if (!now.exists) {
		clip_synced = now; /* a deleted file clears nothing on the host */
		return;
	}
	if (!negotiated)
		return; /* sent once the host has answered hello */
	ssize_t len = clip_read();
	if (len < 0) {
		clip_synced = now;
		return;
	}
	clip_synced = now;
	if ((size_t)len == clip_len && (len == 0 || memcmp(clip_buf, clip_text, (size_t)len) == 0))
		return;
	clip_remember(clip_buf, (size_t)len);
	size_t clean = utf8_clean(clip_clean, sizeof clip_clean, clip_buf, (size_t)len);
	msg_begin(negotiated, T_CLIPBOARD, 0);
	msg_bytes(1, clip_clean, clean);
	msg_send();
}

static void clip_init(void)
{
	clip_synced = clip_stat_now();
	clip_seen = clip_synced;
	ssize_t len = clip_synced.exists ? clip_read() : 0;
	clip_remember(clip_buf, len > 0 ? (size_t)len : 0);
}

/* ------------------------------------------------------------------------ */
/* exec: /bin/sh -c COMMAND in its own session, stdout and stderr into one pipe */

struct job {
	int used;
	pid_t pid;
	int fd; /* read end of the output pipe, -1 at EOF */
	uint32_t id;
	unsigned version;
	unsigned char *buf;
	size_t len, cap, max;
	int truncated, timed_out, exited, status;
	uint64_t deadline;
};

static struct job jobs[MAX_JOBS];

static void on_sigchld(int sig)
{
	int saved = errno;
	char c = 0;
	(void)sig;
	if (write(sigchld_pipe[1], &c, 1) < 0) {
		/* the pipe is full: a wake-up is already pending */
	}
	errno = saved;
}

static void job_append(struct job *j, const unsigned char *p, size_t n)
{
	size_t room = j->max - j->len;
	if (n > room) {
		j->truncated = 1;
		n = room;
	}
	if (n == 0)
		return;
	if (j->len + n > j->cap) {
		size_t cap = j->cap ? j->cap : 4096;
		while (cap < j->len + n)
			cap *= 2;
		if (cap > j->max)
			cap = j->max;
		unsigned char *grown = realloc(j->buf, cap);
		if (!grown) {
			j->truncated = 1;
			return;
		}
		j->buf = grown;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, p, n);
	j->len += n;
}

/* Reads what the pipe holds now; stops at EOF (closing it) or when it would block. */
static void job_read(struct job *j)
{
	unsigned char buf[65536];
	while (j->fd >= 0) {
		ssize_t n = read(j->fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0) {
			job_append(j, buf, (size_t)n);
			continue;
		}
		if (n == 0 || errno != EAGAIN) {
			close(j->fd);
			j->fd = -1;
		}
		return;
	}
}

static void job_finish(struct job *j)
{
	int status = 0, sig = 0;
	/* Output still in the pipe when the shell ended; a background child may hold it open. */
	job_read(j);
	if (WIFEXITED(j->status))
		status = WEXITSTATUS(j->status);
	else if (WIFSIGNALED(j->status)) {
		sig = WTERMSIG(j->status);
		status = 128 + sig;
		if (status > 255)
			status = 255;
	}
	msg_begin(j->version, T_EXEC_RESULT, j->id);
	msg_u32(1, (uint32_t)status);
	msg_u32(2, (uint32_t)sig);
	msg_u32(3, (uint32_t)j->timed_out);
	msg_u32(4, (uint32_t)j->truncated);
	msg_bytes(5, j->buf, j->len);
	msg_send();
	if (j->fd >= 0)
		close(j->fd);
	free(j->buf);
	memset(j, 0, sizeof *j);
	j->fd = -1;
}

static void job_start(unsigned version, uint32_t id, const unsigned char *cmd, size_t cmd_len, uint32_t timeout_ms, uint32_t max_output)
{
	struct job *j = NULL;
	for (int i = 0; i < MAX_JOBS; i++)
		if (!jobs[i].used) {
			j = &jobs[i];
			break;
		}
	if (!j) {
		send_error(version, id, "too many commands running in the guest (8); try again when one ends");
		return;
	}
	char *command = malloc(cmd_len + 1);
	if (!command) {
		send_error(version, id, "out of memory in the guest");
		return;
	}
	memcpy(command, cmd, cmd_len);
	command[cmd_len] = 0;

	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0) {
		send_error(version, id, "cannot create a pipe in the guest");
		free(command);
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		send_error(version, id, "cannot start a process in the guest (fork failed)");
		close(fds[0]);
		close(fds[1]);
		free(command);
		return;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		setsid();
		int null = open("/dev/null", O_RDONLY);
		if (null >= 0 && null != 0) {
			dup2(null, 0);
			close(null);
		}
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		dprintf(2, "umagent: cannot run /bin/sh: %s\n", strerror(errno));
		_exit(127);
	}
	free(command);
	close(fds[1]);
	fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
	memset(j, 0, sizeof *j);
	j->used = 1;
	j->pid = pid;
	j->fd = fds[0];
	j->id = id;
	j->version = version;
	j->max = max_output;
	j->deadline = now_ms() + timeout_ms;
}

static void jobs_reap(void)
{
	for (int i = 0; i < MAX_JOBS; i++) {
		struct job *j = &jobs[i];
		if (!j->used || j->exited)
			continue;
		int st;
		pid_t r = waitpid(j->pid, &st, WNOHANG);
		if (r == j->pid) {
			j->exited = 1;
			j->status = st;
		}
	}
}

static void jobs_check_deadlines(uint64_t now)
{
	for (int i = 0; i < MAX_JOBS; i++) {
		struct job *j = &jobs[i];
		if (!j->used || j->exited || j->timed_out || now < j->deadline)
			continue;
		j->timed_out = 1;
		kill(-j->pid, SIGKILL);
		kill(j->pid, SIGKILL);
	}
}

/* ------------------------------------------------------------------------ */
/* one received message */

static void handle_hello(const struct field *fields, int count)
{
	int ok = 1;
	uint32_t chosen = field_u32(fields, count, 3, 1, 255, &ok);
	if (!find_field(fields, count, 3)) {
		send_hello(); /* the host asks who is there */
		return;
	}
	if (!ok || chosen < PROTO_MIN || chosen > PROTO_MAX) {
		logmsg("the host chose protocol version %u; this agent speaks %d..%d", (unsigned)chosen, PROTO_MIN, PROTO_MAX);
		return;
	}
	negotiated = chosen;
	disp_w = 0; /* report the display to this host */
	check_display();
}

static void handle_exec(unsigned version, uint32_t id, const struct field *fields, int count)
{
	int ok = 1;
	const struct field *cmd = find_field(fields, count, 1);
	uint32_t timeout_ms = field_u32(fields, count, 2, 1, MAX_TIMEOUT_MS, &ok);
	uint32_t max_output = field_u32(fields, count, 3, 0, MAX_OUTPUT, &ok);
	if (!cmd || !ok || cmd->len > MAX_COMMAND || memchr(cmd->value, 0, cmd->len)) {
		send_error(version, id, "malformed exec request");
		return;
	}
	job_start(version, id, cmd->value, cmd->len, timeout_ms, max_output);
}

/* The host's clock after a resume: the guest's stood still while it was suspended. */
static void handle_set_time(const struct field *fields, int count)
{
	int ok = 1;
	struct timespec ts;
	ts.tv_sec = (time_t)field_u32(fields, count, 1, 0, UINT32_MAX, &ok);
	ts.tv_nsec = (long)field_u32(fields, count, 2, 0, 999999999u, &ok);
	if (!ok) {
		logmsg("ignoring a malformed setTime message");
		return;
	}
	if (clock_settime(CLOCK_REALTIME, &ts) != 0)
		logmsg("cannot set the clock: %s", strerror(errno));
	else if (verbose)
		logmsg("clock set to %lld", (long long)ts.tv_sec);
}

static void handle_payload(const unsigned char *p, size_t n)
{
	static struct field fields[MAX_FIELDS];
	if (n < MSG_HEADER) {
		logmsg("ignoring a message of %zu bytes (shorter than its header)", n);
		return;
	}
	unsigned version = p[0], type = p[1];
	uint32_t id = get_le32(p + 2);
	int count = parse_fields(p, n, fields, MAX_FIELDS);
	if (count < 0) {
		logmsg("ignoring a malformed message of type %u", type);
		return;
	}
	if (verbose)
		logmsg("received type %u, id %u, version %u, %zu bytes", type, (unsigned)id, version, n);
	if (type == T_HELLO) {
		handle_hello(fields, count);
		return;
	}
	if (version < PROTO_MIN || version > PROTO_MAX) {
		logmsg("ignoring a message in protocol version %u", version);
		return;
	}
	switch (type) {
	case T_PING:
		if (id != 0) {
			msg_begin(version, T_PONG, id);
			msg_send();
		}
		break;
	case T_EXEC:
		if (id != 0)
			handle_exec(version, id, fields, count);
		break;
	case T_CLIPBOARD: {
		const struct field *text = find_field(fields, count, 1);
		if (text && text->len <= MAX_CLIPBOARD)
			clip_set(text->value, text->len);
		else
			logmsg("ignoring a malformed clipboard message");
		break;
	}
	case T_SET_TIME:
		handle_set_time(fields, count);
		break;
	default:
		break; /* unknown types are for newer agents */
	}
}

/* ------------------------------------------------------------------------ */
/* the byte stream from the host, cut into frames */

static unsigned char inbuf[FRAME_HEADER + MAX_PAYLOAD];
static size_t in_start, in_end;
static size_t skipped;

static void process_input(void)
{
	for (;;) {
		size_t avail = in_end - in_start;
		unsigned char *p = inbuf + in_start;
		if (avail >= 1 && p[0] != 'U') {
			unsigned char *u = memchr(p, 'U', avail);
			size_t drop = u ? (size_t)(u - p) : avail;
			in_start += drop;
			skipped += drop;
			continue;
		}
		if (avail >= 2 && p[1] != 'M') {
			in_start++;
			skipped++;
			continue;
		}
		if (avail < FRAME_HEADER)
			break;
		uint32_t len = get_le32(p + 2);
		if (len > MAX_PAYLOAD) {
			logmsg("frame of %u bytes is over the limit; skipping its header", (unsigned)len);
			in_start++;
			skipped++;
			continue;
		}
		if (avail - FRAME_HEADER < len)
			break;
		if (skipped) {
			logmsg("skipped %zu bytes that were not frames", skipped);
			skipped = 0;
		}
		in_start += FRAME_HEADER + len;
		handle_payload(p + FRAME_HEADER, len);
	}
	if (in_start == in_end)
		in_start = in_end = 0;
}

static void read_port(void)
{
	if (in_end == sizeof inbuf && in_start > 0) {
		memmove(inbuf, inbuf + in_start, in_end - in_start);
		in_end -= in_start;
		in_start = 0;
	}
	ssize_t n = read(port_fd, inbuf + in_end, sizeof inbuf - in_end);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		logmsg("the agent port closed (%s)", n == 0 ? "end of file" : strerror(errno));
		exit(1);
	}
	in_end += (size_t)n;
	process_input();
}

/* ------------------------------------------------------------------------ */

static void open_port(const char *path)
{
	port_fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (port_fd < 0) {
		logmsg("cannot open the agent port %s: %s", path, strerror(errno));
		exit(1);
	}
	if (isatty(port_fd)) {
		struct termios t;
		if (tcgetattr(port_fd, &t) != 0) {
			logmsg("cannot read the terminal settings of %s: %s", path, strerror(errno));
			exit(1);
		}
		cfmakeraw(&t);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		if (tcsetattr(port_fd, TCSANOW, &t) != 0) {
			logmsg("cannot set %s to raw mode: %s", path, strerror(errno));
			exit(1);
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: umagent [-c CLIPBOARD_FILE] [-v] [PORT]\n"
		"The Unmachine guest agent: talks to the host over PORT (default " DEFAULT_PORT ").\n"
		"  -c FILE  the clipboard's text (default " DEFAULT_CLIPBOARD ")\n"
		"  -v       log each message\n"
		"  -V       print the version\n");
}

int main(int argc, char **argv)
{
	const char *port_path = DEFAULT_PORT;
	int opt;
	while ((opt = getopt(argc, argv, "c:vVh")) != -1) {
		switch (opt) {
		case 'c':
			clip_path = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'V':
			puts("umagent " AGENT_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		port_path = argv[optind++];
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (clip_path[0] != '/' || strlen(clip_path) > PATH_MAX - 32) {
		logmsg("the clipboard file must be an absolute path: %s", clip_path);
		return 2;
	}

	/* Descriptors 0..2 open, so no pipe of ours lands on them. */
	for (;;) {
		int fd = open("/dev/null", O_RDWR);
		if (fd < 0 || fd > 2) {
			if (fd >= 0)
				close(fd);
			break;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		logmsg("cannot create a pipe: %s", strerror(errno));
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	for (int i = 0; i < MAX_JOBS; i++)
		jobs[i].fd = -1;

	open_port(port_path);
	clip_make_dir();
	clip_init();
	send_hello();
	if (verbose)
		logmsg("started on %s, clipboard %s", port_path, clip_path);

	uint64_t next_tick = now_ms() + TICK_MS;
	for (;;) {
		struct pollfd pfd[2 + MAX_JOBS];
		int slot[2 + MAX_JOBS];
		int nfds = 0;
		pfd[nfds].fd = port_fd;
		pfd[nfds++].events = POLLIN;
		pfd[nfds].fd = sigchld_pipe[0];
		pfd[nfds++].events = POLLIN;
		uint64_t now = now_ms();
		uint64_t wake = next_tick;
		for (int i = 0; i < MAX_JOBS; i++) {
			if (!jobs[i].used)
				continue;
			if (jobs[i].fd >= 0) {
				slot[nfds] = i;
				pfd[nfds].fd = jobs[i].fd;
				pfd[nfds++].events = POLLIN;
			}
			if (!jobs[i].exited && !jobs[i].timed_out && jobs[i].deadline < wake)
				wake = jobs[i].deadline;
		}
		int timeout = wake > now ? (int)(wake - now) : 0;
		int ready = poll(pfd, (nfds_t)nfds, timeout);
		if (ready < 0 && errno != EINTR) {
			logmsg("poll failed: %s", strerror(errno));
			return 1;
		}
		if (ready > 0) {
			if (pfd[1].revents & POLLIN) {
				char drain[64];
				while (read(sigchld_pipe[0], drain, sizeof drain) > 0) {
				}
			}
			for (int k = 2; k < nfds; k++)
				if (pfd[k].revents)
					job_read(&jobs[slot[k]]);
			if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
				read_port();
		}
		jobs_reap();
		now = now_ms();
		jobs_check_deadlines(now);
		for (int i = 0; i < MAX_JOBS; i++)
			if (jobs[i].used && jobs[i].exited)
				job_finish(&jobs[i]);
		if (now >= next_tick) {
			check_clipboard();
			check_display();
			next_tick = now + TICK_MS;
		}
	}
}
