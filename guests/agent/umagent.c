/*
 * umagent: the Unmachine guest agent. Holds its port (virtio-console /dev/hvc0, or COM2) open
 * and raw, and speaks core/agent/'s framed protocol with the host's session.ts: hello, ping,
 * exec, clipboard, display, setTime (the clock, after a resume), and on an X display the
 * window list, the apps and launching them, and the clipboard as X's CLIPBOARD and PRIMARY selections
 * (text and PNG images). Frames are "UM" + u32 LE length + payload (capped
 * at MAX_PAYLOAD); every length from the host or the X server is checked. One poll loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
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
#define MAX_PAYLOAD (8 * 1024 * 1024 + 64 * 1024)
#define MSG_HEADER 6
#define MAX_CLIPBOARD (1024 * 1024)
#define MAX_CLIP_IMAGE (8 * 1024 * 1024)
#define MIME_TEXT "text/plain;charset=utf-8"
#define MIME_PNG "image/png"
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
#define T_WINDOWS 10
#define T_APPS_REQUEST 11
#define T_APPS 12
#define T_LAUNCH 13
#define T_LAUNCHED 14
#define T_WINDOW_ACTION 15
#define T_SET_DISPLAY 16

/* Windows and apps: the same caps as LIMITS in messages.ts. */
#define MAX_WINDOWS 256
#define MAX_TITLE 1024
#define MAX_CLASS 256
#define MAX_APPS 128
#define MAX_APP_ID 128
#define MAX_APP_NAME 256
#define MAX_APP_EXEC 1024
#define MAX_ICON (64 * 1024)
#define APPS_ICON_BUDGET (768 * 1024)

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
			if (errno == EIO) {
				/*
				 * A port no host serves: COM2 in a machine without one, or a
				 * virtio-console port the host has not opened. Exiting would have the
				 * guest start the agent again each second, a line on its console each
				 * time; it waits instead, after one line, trying again each second.
				 */
				static int told;
				if (!told) {
					logmsg("the agent port takes no writes (%s): waiting for the host", strerror(errno));
					told = 1;
				}
				sleep(1);
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

/* Opens a field whose value is nested fields; msg_close sets its length. */
static size_t msg_open(unsigned tag)
{
	if (!msg_room(0))
		return 0;
	size_t at = out_len;
	out[at] = (unsigned char)tag;
	out_len += 5;
	return at;
}

static void msg_close(size_t at)
{
	if (!out_overflow && at > 0)
		put_le32(out + at + 1, (uint32_t)(out_len - at - 5));
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
	static const char *caps[] = {"ping", "exec", "clipboard", "display", "time", "windows", "apps", "launch", "window-action", "display.size", "clipboard.png"};
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
static int x_screen_size(unsigned *w, unsigned *h);

static void check_display(void)
{
	unsigned mode = 0, w = 80, h = 25;
	char buf[64];
	int from_x = x_screen_size(&w, &h);
	int fd = from_x ? -1 : open(FB_SIZE, O_RDONLY | O_CLOEXEC);
	if (from_x)
		mode = 1;
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

/*
 * In a child just forked to run a program: the signals as a program expects them (none blocked,
 * every one at its default, as job_start gives a command), a session of its own.
 */
static void child_reset(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < 32; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	setsid();
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
	/*
	 * posix_spawn, not fork then exec: glibc starts the shell without copying the agent's
	 * address space first (a vfork-like clone). In an emulated guest a fork's page-table copy
	 * and the faults after it are a large part of starting a command.
	 * The child: stdin from /dev/null, stdout and stderr into the pipe, a session of its own,
	 * and the signals as a program expects them: none blocked, every one at its default (the
	 * agent ignores SIGPIPE, and a shell starts a background job such as the agent with SIGINT
	 * and SIGQUIT ignored).
	 */
	pid_t pid;
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	sigemptyset(&none);
	sigfillset(&defaults);
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
	posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	char *const argv[] = {"sh", "-c", command, NULL};
	int failed = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attr);
	if (failed) {
		char why[160];
		snprintf(why, sizeof why, "cannot start /bin/sh in the guest: %s", strerror(failed));
		send_error(version, id, why);
		close(fds[0]);
		close(fds[1]);
		free(command);
		return;
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
/*
 * windows: a small X11 client on the raw wire protocol (X Window System Protocol, X11R7),
 * connected to display :0 over its Unix socket with no authorization data (the desktop guest
 * starts X without -auth). It reads the window manager's client list (EWMH
 * _NET_CLIENT_LIST_STACKING) and each client's title, geometry and state, and sends the list
 * whenever it changes, 30 ms after the first event of a burst; a new window is listed before
 * that, from the events alone, as soon as its frame is mapped (x_early_*). Every length and count
 * from the server is checked; a server that breaks the protocol or stalls is dropped and retried.
 */

#ifndef X_SOCKET /* another display only for the host-side tests */
#define X_SOCKET "/tmp/.X11-unix/X0"
#endif
#define X_BUF (320 * 1024)
#define XSTR2(x) #x
#define XSTR(x) XSTR2(x)
#define X_TIMEOUT_MS 5000 /* an emulated X server busy with a mode change or a start answers late */
#define X_RETRY_MS 1000
/*
 * How long the host keeps the list after the agent lost the X display: an X server busy past
 * X_TIMEOUT_MS (a loaded host, a mode change) is reconnected within a few seconds, and its
 * windows are the same windows; the host's would otherwise close and open again.
 */
#define X_LOST_MS 10000
#define X_COALESCE_MS 30
#define X_LAUNCH_MS 30000 /* an emulated guest busy resizing its screen or starting can take that long */
#define MAX_LAUNCHES 8

/* Predefined atoms (protocol appendix B). */
#define XA_CARDINAL 6
#define XA_STRING 31
#define XA_WINDOW 33
#define XA_WM_CLASS 67
#define XA_WM_NAME 39

/* Event masks and codes (protocol section 10 and appendix). */
#define X_PROPERTY_CHANGE 0x400000u
#define X_STRUCTURE_NOTIFY 0x20000u
#define X_SUBSTRUCTURE_NOTIFY 0x80000u

static int x_fd = -1;
static uint32_t x_root;
static unsigned x_root_w, x_root_h; /* the X screen's size, as the server last said */
static unsigned x_seq;
static uint64_t x_retry_at;
static uint64_t x_lost_at; /* when the display was lost while the host had its list; 0 if not */
static uint64_t x_scan_at; /* 0: no change waiting */
static unsigned char xbuf[X_BUF];
static size_t xb_start, xb_end;

enum { A_CLIENT_LIST, A_CLIENT_LIST_STACKING, A_NET_WM_NAME, A_UTF8_STRING, A_NET_WM_STATE, A_HIDDEN, A_WM_STATE, A_NET_WM_PID, A_ACTIVE, A_COUNT };
static const char *const atom_names[A_COUNT] = {"_NET_CLIENT_LIST", "_NET_CLIENT_LIST_STACKING", "_NET_WM_NAME", "UTF8_STRING", "_NET_WM_STATE", "_NET_WM_STATE_HIDDEN", "WM_STATE", "_NET_WM_PID", "_NET_ACTIVE_WINDOW"};
static uint32_t atoms[A_COUNT];

struct xwin {
	uint32_t id, flags, pid;
	uint32_t frame; /* the child of the root that holds it; not sent */
	long stack;     /* its place among the root's children, bottom first; not sent */
	int early;      /* listed from events alone, before a scan confirmed it; not sent */
	uint64_t loose_at; /* since when its window manager has let go of it, while held at its framed place; not sent */
	int32_t x, y, fx, fy;
	uint32_t w, h, fw, fh;
	size_t title_len, class_len;
	unsigned char title[MAX_TITLE];
	unsigned char cls[MAX_CLASS];
};

#define WIN_MINIMIZED 1u
#define WIN_FOCUSED 2u

static struct xwin xwins[MAX_WINDOWS];
static int n_xwins;
static unsigned char *win_sent; /* the last windows payload sent, to send only changes */
static size_t win_sent_len;
static int win_sent_valid;

struct launch {
	int used;
	uint32_t id;
	unsigned version;
	pid_t pid;
	char match[MAX_APP_ID];
	uint64_t deadline;
	int n_known;
	uint32_t known[MAX_WINDOWS];
};
static struct launch launches[MAX_LAUNCHES];

static void put_le16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static unsigned get_le16(const unsigned char *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static int32_t get_s16(const unsigned char *p)
{
	return (int16_t)get_le16(p);
}

/* A scan X_COALESCE_MS after the first event of a burst (sooner than one merely due later). */
static void x_changed(void)
{
	uint64_t at = now_ms() + X_COALESCE_MS;
	if (x_fd >= 0 && (x_scan_at == 0 || x_scan_at > at))
		x_scan_at = at;
}

static void xclip_closed(void);
static void x_early_reset(void);

static void x_close(const char *why)
{
	if (x_fd < 0)
		return;
	if (why)
		logmsg("leaving the X display: %s", why);
	xclip_closed();
	close(x_fd);
	x_fd = -1;
	xb_start = xb_end = 0;
	x_scan_at = 0;
	x_retry_at = now_ms() + X_RETRY_MS;
	x_early_reset();
	/*
	 * The host's list empties X_LOST_MS later unless the display is back; until then the list is
	 * kept, for the first scans after a reconnect to hold it as a regroup does (the window
	 * manager is likely restarting: the server was busy). Launches waiting fail at the next check.
	 */
	x_lost_at = win_sent_valid ? now_ms() : 0;
	if (!x_lost_at)
		n_xwins = 0;
}

/* The display is still gone X_LOST_MS after it was lost: the host's list empties. */
static void x_lost_check(uint64_t now)
{
	if (x_fd >= 0 || x_lost_at == 0 || now < x_lost_at + X_LOST_MS)
		return;
	x_lost_at = 0;
	n_xwins = 0;
	if (negotiated && win_sent_valid) {
		msg_begin(negotiated, T_WINDOWS, 0);
		msg_send();
	}
	win_sent_valid = 0;
}

/* Reads what the socket has within timeout_ms: 1 something, 0 nothing, -1 closed. */
static int x_fill(int timeout_ms)
{
	if (xb_start > 0) {
		memmove(xbuf, xbuf + xb_start, xb_end - xb_start);
		xb_end -= xb_start;
		xb_start = 0;
	}
	if (xb_end == sizeof xbuf)
		return -1;
	struct pollfd pfd = {.fd = x_fd, .events = POLLIN};
	int r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -1;
	if (r == 0)
		return 0;
	ssize_t n = read(x_fd, xbuf + xb_end, sizeof xbuf - xb_end);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (n == 0)
		return -1;
	xb_end += (size_t)n;
	return 1;
}

/* The whole packet at the front of the buffer: its length, 0 if not all here, -1 if too big. */
static long x_packet(void)
{
	size_t avail = xb_end - xb_start;
	if (avail < 32)
		return 0;
	const unsigned char *p = xbuf + xb_start;
	size_t len = 32;
	if (p[0] == 1) {
		uint32_t extra = get_le32(p + 4);
		if (extra > (X_BUF - 32) / 4)
			return -1;
		len += (size_t)extra * 4;
	}
	return avail >= len ? (long)len : 0;
}

/* Whether a change of this property changes the list (a title, a state, the stack). */
static int watched_atom(uint32_t atom)
{
	static const int watched[] = {A_CLIENT_LIST, A_CLIENT_LIST_STACKING, A_NET_WM_NAME, A_NET_WM_STATE, A_WM_STATE, A_ACTIVE};
	if (atom == XA_WM_NAME)
		return 1;
	for (size_t i = 0; i < sizeof watched / sizeof watched[0]; i++)
		if (atoms[watched[i]] == atom)
			return 1;
	return 0;
}

/*
 * A new window listed from the events alone, before any round trip: the root's
 * SubstructureNotify tells each child of the root as it is created, configured, mapped and
 * destroyed, and each client the window manager reparents into a frame (ReparentNotify goes to
 * the old parent, the root). Once the frame that holds a client is mapped, the client is listed
 * ("early": its geometry from the events, no title or class yet, on top) and the list is sent
 * at once; the scan that follows confirms it with the full data. The window manager's list has
 * the last word: an early window it does not list within X_EARLY_MS is dropped, and one whose
 * frame is unmapped or destroyed, or that leaves its frame, is dropped at once. Override-redirect
 * windows (menus, tooltips) are never framed, so never listed. Events only record; the list
 * changes where no message is being built (x_early_flush).
 */
#define X_EARLY_WINDOWS 64
#define X_EARLY_MS 2000

enum { S_NEW, S_EARLY, S_DONE }; /* an early listing: not yet, now, never again (the scan listed it, or it timed out) */

struct x_seen {
	uint32_t id, parent; /* parent: the root, or the frame the client was reparented into */
	int32_t x, y;        /* the outer corner within the parent */
	uint32_t w, h, border;
	int override, mapped, state;
	uint64_t early_at;
	unsigned age;
};
static struct x_seen x_seen[X_EARLY_WINDOWS];
static unsigned x_seen_age;
static int x_early_dirty;

static void x_early_reset(void)
{
	memset(x_seen, 0, sizeof x_seen);
	x_early_dirty = 0;
}

static struct x_seen *x_seen_find(uint32_t id)
{
	if (id == 0)
		return NULL;
	for (int i = 0; i < X_EARLY_WINDOWS; i++)
		if (x_seen[i].id == id)
			return &x_seen[i];
	return NULL;
}

/* A fresh record for the window, in a free slot or the oldest one. */
static struct x_seen *x_seen_add(uint32_t id)
{
	struct x_seen *e = x_seen_find(id);
	if (!e) {
		e = &x_seen[0];
		for (int i = 0; i < X_EARLY_WINDOWS && e->id != 0; i++)
			if (x_seen[i].id == 0 || x_seen[i].age < e->age)
				e = &x_seen[i];
	}
	memset(e, 0, sizeof *e);
	e->id = id;
	e->age = ++x_seen_age;
	return e;
}

/* A window destroyed: its record goes, and its clients' (they went with it). */
static void x_seen_forget(uint32_t id)
{
	for (int i = 0; i < X_EARLY_WINDOWS; i++)
		if (x_seen[i].id != 0 && (x_seen[i].id == id || x_seen[i].parent == id))
			memset(&x_seen[i], 0, sizeof x_seen[i]);
}

/* Records what a structure event tells (protocol section 11, the event layouts). */
static void x_early_event(const unsigned char *p)
{
	if (p[0] & 0x80)
		return; /* sent by a client (SendEvent): a synthetic ConfigureNotify has root coordinates */
	uint32_t event = get_le32(p + 4), window = get_le32(p + 8);
	struct x_seen *e;
	switch (p[0]) {
	case 16: /* CreateNotify: parent, window, x, y, width, height, border, override-redirect */
		if (event != x_root || window == x_root)
			return;
		e = x_seen_add(window);
		e->parent = x_root;
		e->x = get_s16(p + 12);
		e->y = get_s16(p + 14);
		e->w = get_le16(p + 16);
		e->h = get_le16(p + 18);
		e->border = get_le16(p + 20);
		e->override = p[22] != 0;
		break;
	case 17: /* DestroyNotify */
		x_seen_forget(window);
		break;
	case 18: /* UnmapNotify */
	case 19: /* MapNotify */
		e = x_seen_find(window);
		if (!e || e->parent != x_root)
			return; /* only a child of the root (a frame) matters */
		e->mapped = p[0] == 19;
		break;
	case 21: /* ReparentNotify: window, parent, x, y, override-redirect */
		e = x_seen_find(window);
		if (!e)
			return;
		e->parent = get_le32(p + 12);
		e->x = get_s16(p + 16);
		e->y = get_s16(p + 18);
		e->override |= p[20] != 0;
		e->mapped = 0;
		break;
	case 22: /* ConfigureNotify: window, above-sibling, x, y, width, height, border, override-redirect */
		e = x_seen_find(window);
		if (!e || (e->parent != x_root && event != window))
			return;
		e->x = get_s16(p + 16);
		e->y = get_s16(p + 18);
		e->w = get_le16(p + 20);
		e->h = get_le16(p + 22);
		e->border = get_le16(p + 24);
		e->override = p[26] != 0;
		break;
	default:
		return;
	}
	x_early_dirty = 1;
}

static uint32_t u16_sum(uint32_t a, uint32_t b)
{
	return a + b > 65535 ? 65535 : a + b;
}

/* Places an early window from its client's and frame's records: 0 if it is no longer shown so. */
static int x_early_place(const struct x_seen *c, struct xwin *w)
{
	if (!c || c->override || c->parent == x_root || c->state == S_DONE)
		return 0;
	const struct x_seen *f = x_seen_find(c->parent);
	if (!f || f->parent != x_root || !f->mapped)
		return 0;
	w->frame = f->id;
	w->fx = f->x;
	w->fy = f->y;
	w->fw = u16_sum(f->w, 2 * f->border);
	w->fh = u16_sum(f->h, 2 * f->border);
	/* The client's origin, inside its border, inside the frame's border (as TranslateCoordinates gives it). */
	w->x = f->x + (int32_t)f->border + c->x + (int32_t)c->border;
	w->y = f->y + (int32_t)f->border + c->y + (int32_t)c->border;
	w->w = c->w;
	w->h = c->h;
	return 1;
}

static void send_windows(void);

static int x_listed(uint32_t id)
{
	for (int i = 0; i < n_xwins; i++)
		if (xwins[i].id == id)
			return 1;
	return 0;
}

/* Brings the early windows of the list in line with the records, and sends the list if that changed it. */
static void x_early_sync(void)
{
	x_early_dirty = 0;
	int kept = 0;
	for (int i = 0; i < n_xwins; i++) {
		if (xwins[i].early && !x_early_place(x_seen_find(xwins[i].id), &xwins[i]))
			continue;
		if (kept != i)
			xwins[kept] = xwins[i];
		kept++;
	}
	n_xwins = kept;
	uint64_t now = now_ms();
	for (int i = 0; i < X_EARLY_WINDOWS; i++) {
		struct x_seen *c = &x_seen[i];
		if (c->id == 0 || c->state == S_DONE || x_listed(c->id) || n_xwins == MAX_WINDOWS)
			continue;
		struct xwin *w = &xwins[n_xwins];
		memset(w, 0, sizeof *w);
		w->id = c->id;
		w->early = 1;
		if (!x_early_place(c, w))
			continue;
		n_xwins++;
		if (c->state == S_NEW) {
			c->state = S_EARLY;
			c->early_at = now;
			if (verbose)
				logmsg("window 0x%x listed early, %ux%u in frame 0x%x", (unsigned)c->id, (unsigned)w->w, (unsigned)w->h, (unsigned)w->frame);
		}
	}
	send_windows();
}

/* Where no message is being built: applies what the events told since the last call. */
static void x_early_flush(void)
{
	if (x_early_dirty && x_fd >= 0)
		x_early_sync();
}

/*
 * After a scan that started at `started` put the window manager's list in xwins: each client it
 * lists is done with early listing; an early one it has not listed in a scan started X_EARLY_MS
 * after its listing is dropped (such a scan is due then); the others are listed again on top.
 * (jwm sets its client list just after it maps the frame, so a scan may read the list between.)
 */
static void x_early_after_scan(uint64_t started)
{
	uint64_t next = 0;
	for (int i = 0; i < X_EARLY_WINDOWS; i++) {
		struct x_seen *c = &x_seen[i];
		if (c->id == 0 || c->state == S_DONE)
			continue;
		if (x_listed(c->id) || (c->state == S_EARLY && started >= c->early_at + X_EARLY_MS))
			c->state = S_DONE;
		else if (c->state == S_EARLY && (next == 0 || c->early_at + X_EARLY_MS < next))
			next = c->early_at + X_EARLY_MS;
	}
	if (next && (x_scan_at == 0 || next < x_scan_at))
		x_scan_at = next;
	x_early_sync();
}

static void x_root_resized(unsigned w, unsigned h);
static void xclip_event(const unsigned char *p);

static void x_event(const unsigned char *p)
{
	xclip_event(p);
	x_early_event(p);
	switch (p[0] & 0x7f) {
	case 28: /* PropertyNotify */
		if (watched_atom(get_le32(p + 8)))
			x_changed();
		break;
	case 16: /* CreateNotify */
	case 17: /* DestroyNotify */
	case 18: /* UnmapNotify */
	case 19: /* MapNotify */
	case 21: /* ReparentNotify */
	case 22: /* ConfigureNotify */
		if (get_le32(p + 8) == x_root)
			x_root_resized(get_le16(p + 20), get_le16(p + 22));
		else
			x_changed();
		break;
	default:
		break;
	}
}

/* Handles the events (and stray replies) already received; -1 if the connection broke. */
static int x_drain(void)
{
	for (;;) {
		long len = x_packet();
		if (len < 0) {
			x_close("the X server sent an oversized reply");
			return -1;
		}
		if (len == 0)
			return 0;
		const unsigned char *p = xbuf + xb_start;
		if (p[0] > 1)
			x_event(p);
		xb_start += (size_t)len;
	}
}

/* Reads and handles what the X server sent; called when its socket is readable. */
static void x_pump(void)
{
	if (x_fd < 0)
		return;
	int r = x_fill(0);
	if (r < 0) {
		x_close("the X server closed the connection");
		return;
	}
	x_drain();
	x_early_flush();
}

static int x_write(const unsigned char *req, size_t n)
{
	while (n > 0) {
		ssize_t w = write(x_fd, req, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			x_close("cannot write to the X server");
			return -1;
		}
		req += w;
		n -= (size_t)w;
	}
	x_seq = (x_seq + 1) & 0xffff;
	return 0;
}

/*
 * Waits for the next reply or error from the X server, handling the events that come first
 * (and, with flush, sending what they changed at once); the packet is valid until the next
 * read. 1 with it, -1 if the connection is gone (closed, oversized, or no answer in time).
 */
static int x_await(int flush, const unsigned char **packet, size_t *packet_len)
{
	uint64_t deadline = now_ms() + X_TIMEOUT_MS;
	for (;;) {
		long len = x_packet();
		if (len < 0) {
			x_close("the X server sent an oversized reply");
			return -1;
		}
		if (len > 0) {
			const unsigned char *p = xbuf + xb_start;
			xb_start += (size_t)len;
			if (p[0] > 1) {
				x_event(p);
				if (flush)
					x_early_flush();
				continue;
			}
			*packet = p;
			*packet_len = (size_t)len;
			return 1;
		}
		uint64_t now = now_ms();
		if (now >= deadline) {
			x_close("the X server did not answer within " XSTR(X_TIMEOUT_MS) " ms");
			return -1;
		}
		if (x_fill((int)(deadline - now)) < 0) {
			x_close("the X server closed the connection");
			return -1;
		}
	}
}

/*
 * Sends a request and waits for its reply, handling events that come first. 1 and the reply
 * (valid until the next X call), 0 on an X error for it (a window that went away), -1 if the
 * connection is gone.
 */
static int x_call(const unsigned char *req, size_t n, const unsigned char **reply, size_t *reply_len)
{
	if (x_fd < 0 || x_write(req, n) < 0)
		return -1;
	for (;;) {
		const unsigned char *p;
		size_t len;
		if (x_await(0, &p, &len) < 0)
			return -1;
		if (get_le16(p + 2) != x_seq)
			continue; /* an error for a request without a reply */
		if (p[0] == 0)
			return 0;
		*reply = p;
		*reply_len = len;
		return 1;
	}
}

static int x_intern(const char *name, uint32_t *atom)
{
	unsigned char req[8 + 64];
	size_t n = strlen(name);
	if (n > 64)
		return -1;
	size_t padded = (n + 3) & ~(size_t)3;
	memset(req, 0, sizeof req);
	req[0] = 16; /* InternAtom, only-if-exists false */
	put_le16(req + 2, (unsigned)(2 + padded / 4));
	put_le16(req + 4, (unsigned)n);
	memcpy(req + 8, name, n);
	const unsigned char *r;
	size_t rlen;
	if (x_call(req, 8 + padded, &r, &rlen) != 1)
		return -1;
	*atom = get_le32(r + 8);
	return 0;
}

static void x_select(uint32_t window, uint32_t mask)
{
	unsigned char req[16];
	req[0] = 2; /* ChangeWindowAttributes */
	req[1] = 0;
	put_le16(req + 2, 4);
	put_le32(req + 4, window);
	put_le32(req + 8, 0x800); /* CWEventMask */
	put_le32(req + 12, mask);
	x_write(req, sizeof req);
}

/*
 * A GetProperty reply's value, at most max bytes into dst: the bytes copied, or -1 if the
 * property is absent, of another type (when type is not 0) or malformed. *format gets 8, 16
 * or 32.
 */
static long x_property_value(const unsigned char *r, size_t rlen, uint32_t type, void *dst, size_t max, unsigned *format, uint32_t *type_out)
{
	unsigned fmt = r[1];
	uint32_t got_type = get_le32(r + 8), count = get_le32(r + 16);
	if (got_type == 0 || (type != 0 && got_type != type) || (fmt != 8 && fmt != 16 && fmt != 32))
		return -1;
	if (count > X_BUF)
		return -1;
	size_t bytes = (size_t)count * (fmt / 8);
	if (bytes > rlen - 32)
		return -1;
	if (bytes > max)
		bytes = max;
	memcpy(dst, r + 32, bytes);
	if (format)
		*format = fmt;
	if (type_out)
		*type_out = got_type;
	return (long)bytes;
}

/* Latin-1 (a STRING property) as UTF-8, capped at max bytes. */
static size_t latin1_to_utf8(unsigned char *dst, size_t max, const unsigned char *src, size_t n)
{
	size_t out_n = 0;
	for (size_t i = 0; i < n; i++) {
		if (src[i] < 0x80) {
			if (out_n + 1 > max)
				break;
			dst[out_n++] = src[i];
		} else {
			if (out_n + 2 > max)
				break;
			dst[out_n++] = (unsigned char)(0xc0 | src[i] >> 6);
			dst[out_n++] = (unsigned char)(0x80 | (src[i] & 0x3f));
		}
	}
	return out_n;
}

static int x_known(const uint32_t *ids, int n, uint32_t id)
{
	for (int i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

static void send_windows(void);
static void launches_check(void);

/*
 * The scan's requests are pipelined: a whole phase of requests (for every client at once) is
 * written, and the replies, which the server sends in request order, are matched to them by
 * sequence number as they come, so a phase costs one round trip to the X server instead of
 * one per request. At most X_PIPE requests wait for a reply at a time (the replies are read
 * while more are written). An X error answers the request it names: for a client's window,
 * it means the window went away during the scan, and only that client is dropped. Events
 * that arrive meanwhile are handled as they come.
 */
#define X_PIPE 128
#define X_FRAME_DEPTH 8  /* the frame is looked for at most this far up from the client */
#define X_ROOT_KIDS 8192 /* the root's children kept for the stacking order */

/* What a pipelined request asks (its reply is handled by kind). */
enum {
	Q_LIST_STACKING, Q_LIST, Q_ACTIVE, Q_ROOT_TREE, /* the lists (win unused) */
	Q_GEOMETRY, Q_TRANSLATE, Q_TREE,                 /* the client's own window */
	Q_NET_NAME, Q_NAME, Q_CLASS, Q_PID, Q_NET_STATE, Q_WM_STATE,
	Q_UP_GEOMETRY, Q_UP_TREE                         /* an ancestor, on the way to the frame */
};

struct x_pending {
	unsigned seq;
	int kind, win;
};
static struct x_pending x_pend[X_PIPE];
static int x_pend_head, x_pend_n;

/* A client's state during a scan, beside its entry in fresh[]. */
struct x_scanned {
	int gone;       /* an X error for its window: dropped */
	int framed;     /* its frame is known */
	int named;      /* its title came from _NET_WM_NAME */
	int managed;    /* its WM_STATE is Normal or Iconic: its window manager has taken it on */
	uint32_t up;    /* the ancestor asked about (a frame candidate) */
	uint32_t border; /* the client's, used when it is its own frame */
	uint32_t uid;   /* the ancestor whose geometry follows */
	int32_t ux, uy;
	uint32_t uw, uh, ub;
};

/* The scan in progress: the lists read first, then the clients. */
static uint32_t scan_ids[MAX_WINDOWS], scan_list[MAX_WINDOWS];
static long scan_ids_n, scan_list_n; /* bytes, -1 if absent */
static uint32_t scan_active;
static struct xwin fresh[MAX_WINDOWS];
static struct x_scanned scan_st[MAX_WINDOWS];
static uint32_t root_kids[X_ROOT_KIDS];
static long root_kids_n; /* -1: the root's QueryTree failed */

static void x_frame_found(struct xwin *w, struct x_scanned *s, uint32_t frame, int32_t x, int32_t y, uint32_t fw, uint32_t fh, uint32_t border)
{
	w->frame = frame;
	w->fx = x;
	w->fy = y;
	w->fw = fw + 2 * border > 65535 ? 65535 : fw + 2 * border;
	w->fh = fh + 2 * border > 65535 ? 65535 : fh + 2 * border;
	s->framed = 1;
}

/* One reply (p[0] 1) or error (p[0] 0) of len bytes for a pipelined request. */
static void x_scan_reply(int kind, int win, const unsigned char *p, size_t len)
{
	static unsigned char prop[MAX_TITLE];
	int error = p[0] == 0;
	unsigned format;
	uint32_t type, values[64];
	long n;
	if (kind <= Q_ROOT_TREE) {
		switch (kind) {
		case Q_LIST_STACKING:
			scan_ids_n = error ? -1 : x_property_value(p, len, XA_WINDOW, scan_ids, sizeof scan_ids, &format, NULL);
			if (scan_ids_n > 0 && format != 32)
				scan_ids_n = 0;
			break;
		case Q_LIST:
			scan_list_n = error ? -1 : x_property_value(p, len, XA_WINDOW, scan_list, sizeof scan_list, &format, NULL);
			if (scan_list_n > 0 && format != 32)
				scan_list_n = 0;
			break;
		case Q_ACTIVE:
			if (error || x_property_value(p, len, XA_WINDOW, &scan_active, 4, &format, NULL) != 4)
				scan_active = 0;
			break;
		default: { /* Q_ROOT_TREE: the root's children, bottom first */
			size_t children = error ? 0 : get_le16(p + 16);
			if (error || children > (len - 32) / 4) {
				root_kids_n = -1;
				break;
			}
			if (children > X_ROOT_KIDS)
				children = X_ROOT_KIDS;
			for (size_t k = 0; k < children; k++)
				root_kids[k] = get_le32(p + 32 + 4 * k);
			root_kids_n = (long)children;
			break;
		}
		}
		return;
	}
	struct xwin *w = &fresh[win];
	struct x_scanned *s = &scan_st[win];
	if (s->gone)
		return;
	if (error) {
		/* A property of a window that exists answers without an error; a missing window is gone. */
		if (kind < Q_NET_NAME || kind > Q_WM_STATE || p[1] == 3 /* BadWindow */)
			s->gone = 1;
		return;
	}
	switch (kind) {
	case Q_GEOMETRY:
		w->w = get_le16(p + 16);
		w->h = get_le16(p + 18);
		s->border = get_le16(p + 20);
		break;
	case Q_TRANSLATE:
		w->x = get_s16(p + 12);
		w->y = get_s16(p + 14);
		break;
	case Q_TREE:
	case Q_UP_TREE: {
		uint32_t parent = get_le32(p + 12);
		if (kind == Q_TREE && (parent == x_root || parent == 0))
			x_frame_found(w, s, w->id, w->x, w->y, w->w, w->h, s->border); /* unframed */
		else if (kind == Q_UP_TREE && (parent == x_root || parent == 0))
			x_frame_found(w, s, s->up, s->ux, s->uy, s->uw, s->uh, s->ub);
		else
			s->up = parent;
		break;
	}
	case Q_UP_GEOMETRY:
		s->uid = s->up;
		s->ux = get_s16(p + 12);
		s->uy = get_s16(p + 14);
		s->uw = get_le16(p + 16);
		s->uh = get_le16(p + 18);
		s->ub = get_le16(p + 20);
		break;
	case Q_NET_NAME:
		n = x_property_value(p, len, atoms[A_UTF8_STRING], prop, sizeof prop, &format, NULL);
		if (n >= 0 && format == 8) {
			w->title_len = utf8_clean(w->title, sizeof w->title, prop, (size_t)n);
			s->named = 1;
		}
		break;
	case Q_NAME:
		if (s->named)
			break;
		n = x_property_value(p, len, 0, prop, sizeof prop, &format, &type);
		if (n >= 0 && format == 8) {
			if (type == XA_STRING)
				w->title_len = latin1_to_utf8(w->title, sizeof w->title, prop, (size_t)n);
			else
				w->title_len = utf8_clean(w->title, sizeof w->title, prop, (size_t)n);
		}
		break;
	case Q_CLASS:
		n = x_property_value(p, len, XA_STRING, prop, sizeof prop, &format, NULL);
		if (n > 0 && format == 8) {
			/* "instance\0class\0": the class names the program. */
			size_t first = strnlen((const char *)prop, (size_t)n);
			if (first + 1 < (size_t)n) {
				size_t cl = strnlen((const char *)prop + first + 1, (size_t)n - first - 1);
				w->class_len = latin1_to_utf8(w->cls, sizeof w->cls, prop + first + 1, cl);
			}
		}
		break;
	case Q_PID:
		n = x_property_value(p, len, XA_CARDINAL, values, 4, &format, NULL);
		if (n == 4 && format == 32)
			w->pid = values[0];
		break;
	case Q_NET_STATE:
		n = x_property_value(p, len, 0, values, sizeof values, &format, NULL);
		if (n > 0 && format == 32)
			for (long i = 0; i < n / 4; i++)
				if (values[i] == atoms[A_HIDDEN])
					w->flags |= WIN_MINIMIZED;
		break;
	case Q_WM_STATE:
		n = x_property_value(p, len, 0, values, 4, &format, NULL);
		if (n == 4 && format == 32 && values[0] == 3) /* IconicState (ICCCM 4.1.3.1) */
			w->flags |= WIN_MINIMIZED;
		s->managed = n == 4 && format == 32 && (values[0] == 1 || values[0] == 3); /* NormalState, IconicState */
		break;
	default:
		break;
	}
}

/* Reads packets up to the reply or error of the oldest pending request and handles it; -1 if the connection is gone. */
static int x_pipe_next(void)
{
	for (;;) {
		const unsigned char *p;
		size_t len;
		/* A scan is called where no message is being built: what events changed is sent at once. */
		if (x_await(1, &p, &len) < 0)
			return -1;
		struct x_pending e = x_pend[x_pend_head];
		unsigned ahead = (get_le16(p + 2) - e.seq) & 0xffff;
		if (ahead != 0) {
			if (ahead < 0x8000) {
				x_close("the X server skipped a reply");
				return -1;
			}
			continue; /* an error for an earlier request without a reply */
		}
		x_pend_head = (x_pend_head + 1) % X_PIPE;
		x_pend_n--;
		x_scan_reply(e.kind, e.win, p, len);
		return 0;
	}
}

/* Writes a request that has a reply, first taking replies while X_PIPE are pending; -1 if the connection is gone. */
static int x_pipe_send(const unsigned char *req, size_t n, int kind, int win)
{
	while (x_pend_n == X_PIPE)
		if (x_pipe_next() < 0)
			return -1;
	if (x_fd < 0 || x_write(req, n) < 0)
		return -1;
	x_pend[(x_pend_head + x_pend_n) % X_PIPE] = (struct x_pending){.seq = x_seq, .kind = kind, .win = win};
	x_pend_n++;
	return 0;
}

/* Takes every pending reply; -1 if the connection is gone. */
static int x_pipe_wait(void)
{
	while (x_pend_n > 0)
		if (x_pipe_next() < 0)
			return -1;
	return x_fd >= 0 ? 0 : -1;
}

/* A request whose only argument is one window (GetGeometry, QueryTree). */
static int x_pipe_on(unsigned char opcode, uint32_t window, int kind, int win)
{
	unsigned char req[8];
	req[0] = opcode;
	req[1] = 0;
	put_le16(req + 2, 2);
	put_le32(req + 4, window);
	return x_pipe_send(req, sizeof req, kind, win);
}

/* GetProperty (delete false) of at most max bytes. */
static int x_pipe_property(uint32_t window, uint32_t prop, uint32_t type, size_t max, int kind, int win)
{
	unsigned char req[24];
	req[0] = 20;
	req[1] = 0;
	put_le16(req + 2, 6);
	put_le32(req + 4, window);
	put_le32(req + 8, prop);
	put_le32(req + 12, type);
	put_le32(req + 16, 0);
	put_le32(req + 20, (uint32_t)((max + 3) / 4));
	return x_pipe_send(req, sizeof req, kind, win);
}

/* The window's origin in root coordinates (TranslateCoordinates). */
static int x_pipe_translate(uint32_t window, int win)
{
	unsigned char req[16];
	req[0] = 40;
	req[1] = 0;
	put_le16(req + 2, 4);
	put_le32(req + 4, window);
	put_le32(req + 8, x_root);
	put_le32(req + 12, 0);
	return x_pipe_send(req, sizeof req, Q_TRANSLATE, win);
}

/* Asks everything about one client but its frame. */
static int x_ask_client(uint32_t id, int win)
{
	if (x_pipe_on(14 /* GetGeometry */, id, Q_GEOMETRY, win) < 0 || x_pipe_translate(id, win) < 0 || x_pipe_on(15 /* QueryTree */, id, Q_TREE, win) < 0)
		return -1;
	if (x_pipe_property(id, atoms[A_NET_WM_NAME], atoms[A_UTF8_STRING], MAX_TITLE, Q_NET_NAME, win) < 0 || x_pipe_property(id, XA_WM_NAME, 0, MAX_TITLE, Q_NAME, win) < 0)
		return -1;
	if (x_pipe_property(id, XA_WM_CLASS, XA_STRING, MAX_TITLE, Q_CLASS, win) < 0 || x_pipe_property(id, atoms[A_NET_WM_PID], XA_CARDINAL, 4, Q_PID, win) < 0)
		return -1;
	return x_pipe_property(id, atoms[A_NET_WM_STATE], 0, 64 * 4, Q_NET_STATE, win) < 0 || x_pipe_property(id, atoms[A_WM_STATE], 0, 4, Q_WM_STATE, win) < 0 ? -1 : 0;
}

static int stack_compare(const void *a, const void *b)
{
	long x = ((const struct xwin *)a)->stack, y = ((const struct xwin *)b)->stack;
	return x < y ? -1 : x > y;
}

/*
 * Orders the windows as their frames stack: QueryTree lists the root's children bottom first
 * (protocol, QueryTree), whatever order the window manager's list has.
 */
static void x_sort_by_stack(struct xwin *w, int n)
{
	if (root_kids_n < 0)
		return;
	for (int i = 0; i < n; i++) {
		w[i].stack = -1;
		for (long k = 0; k < root_kids_n; k++)
			if (root_kids[k] == w[i].frame) {
				w[i].stack = k;
				break;
			}
	}
	qsort(w, (size_t)n, sizeof w[0], stack_compare);
}

/*
 * A window manager that restarts (jwm does whenever the screen's size changes) gives its clients
 * back to the root and frames them again a few seconds later; meanwhile each would be listed
 * where its frame was, then jump back. A client that was framed and now sits on the root keeps
 * its framed place and size for up to X_REFRAME_MS, then is listed as X has it. Call it with
 * xwins still the previous list.
 */
#define X_REFRAME_MS 5000
#define X_SOURCE_PAGER 2 /* EWMH "source indication": a pager, i.e. the user's direct action */

/*
 * After the screen's size changes, until the window manager has framed again every window it
 * listed (or X_REFRAME_MS from the first change of a burst): the list is kept as it was. A
 * restarting jwm empties its client list for a moment; the host would take its windows for
 * closed. A window manager that has let go of nothing within X_LETGO_MS does not restart.
 */
#define X_LETGO_MS 2000
static uint64_t x_regroup_from, x_regroup_until;
static int x_regroup_lost;       /* a listed window went missing or loose since the change */
static uint32_t x_regroup_focus; /* the window focused when it began: focused again after, if nothing is */

static void x_regroup_start(void)
{
	if (x_regroup_until != 0)
		return; /* one regroup for a burst of changes: its end is not put off */
	x_regroup_from = now_ms();
	x_regroup_until = x_regroup_from + X_REFRAME_MS;
	x_regroup_lost = 0;
	x_regroup_focus = 0;
	for (int k = 0; k < n_xwins; k++)
		if (xwins[k].flags & WIN_FOCUSED)
			x_regroup_focus = xwins[k].id;
}

static int x_root_message(uint32_t window, const char *type, const uint32_t data[5]);

/*
 * The regroup is over: a restarted window manager focuses nothing, so the window that had the
 * focus (the one the user was typing into) gets it back, as a pager would ask (EWMH).
 */
static void x_regroup_end(const struct xwin *fresh, int n)
{
	x_regroup_until = 0;
	uint32_t focus = x_regroup_focus;
	x_regroup_focus = 0;
	int listed = 0;
	for (int i = 0; i < n; i++) {
		if (fresh[i].flags & WIN_FOCUSED)
			return;
		listed |= fresh[i].id == focus;
	}
	if (!focus || !listed)
		return;
	uint32_t data[5] = {X_SOURCE_PAGER, 0, 0, 0, 0};
	if (x_root_message(focus, "_NET_ACTIVE_WINDOW", data) == 0 && verbose)
		logmsg("window 0x%x focused again after the window manager regrouped", (unsigned)focus);
}

/* When the scan that may end the regroup is due. */
static uint64_t x_regroup_next(void)
{
	return x_regroup_lost ? x_regroup_until : x_regroup_from + X_LETGO_MS;
}

/* Whether the list of this scan (fresh, held) is to be kept back: the window manager is regrouping. */
static int x_regrouping(const struct xwin *fresh, int n, uint64_t now)
{
	if (x_regroup_until == 0)
		return 0;
	if (now >= x_regroup_until || (!x_regroup_lost && now >= x_regroup_from + X_LETGO_MS)) {
		x_regroup_end(fresh, n);
		return 0;
	}
	int whole = 1;
	for (int k = 0; k < n_xwins; k++) {
		if (xwins[k].early)
			continue;
		int found = 0;
		for (int i = 0; i < n && !found; i++)
			found = fresh[i].id == xwins[k].id && fresh[i].loose_at == 0;
		whole &= found;
	}
	if (!whole) {
		x_regroup_lost = 1;
		/* The held list keeps when each window was let go: after the regroup, one left loose is held only what remains of X_REFRAME_MS. */
		for (int i = 0; i < n; i++)
			for (int k = 0; fresh[i].loose_at && k < n_xwins; k++)
				if (xwins[k].id == fresh[i].id && !xwins[k].early && xwins[k].loose_at == 0)
					xwins[k].loose_at = fresh[i].loose_at;
		return 1;
	}
	if (!x_regroup_lost)
		return 1; /* the window manager has not let go yet */
	x_regroup_end(fresh, n);
	return 0;
}

static void x_hold_framed(struct xwin *fresh, int n, uint64_t now)
{
	for (int i = 0; i < n; i++) {
		struct xwin *w = &fresh[i];
		if (w->frame != w->id)
			continue;
		const struct xwin *was = NULL;
		for (int k = 0; k < n_xwins; k++)
			if (xwins[k].id == w->id && !xwins[k].early)
				was = &xwins[k];
		if (!was || (was->frame == was->id && was->loose_at == 0))
			continue;
		uint64_t since = was->loose_at ? was->loose_at : now;
		if (now - since >= X_REFRAME_MS)
			continue;
		w->loose_at = since;
		w->x = was->x;
		w->y = was->y;
		w->w = was->w;
		w->h = was->h;
		w->fx = was->fx;
		w->fy = was->fy;
		w->fw = was->fw;
		w->fh = was->fh;
	}
}

/*
 * Reads the client list and every client, then sends the list if it changed. Three round
 * trips for a window manager's usual client-in-frame: the lists; each client's geometry,
 * parent and properties; each frame's parent and geometry, with the root's children for the
 * stacking order (one more for each further level a frame is nested).
 */
static void x_scan(void)
{
	static uint32_t old[MAX_WINDOWS];
	uint64_t started = now_ms();
	x_scan_at = 0;
	x_pend_n = 0;
	scan_active = 0;
	root_kids_n = -1;
	if (x_pipe_property(x_root, atoms[A_CLIENT_LIST_STACKING], XA_WINDOW, sizeof scan_ids, Q_LIST_STACKING, 0) < 0 ||
	    x_pipe_property(x_root, atoms[A_CLIENT_LIST], XA_WINDOW, sizeof scan_list, Q_LIST, 0) < 0 ||
	    x_pipe_property(x_root, atoms[A_ACTIVE], XA_WINDOW, 4, Q_ACTIVE, 0) < 0 || x_pipe_wait() < 0)
		return;
	const uint32_t *ids = scan_ids;
	long n = scan_ids_n;
	if (n < 0) {
		ids = scan_list;
		n = scan_list_n;
	}
	int count = n > 0 ? (int)(n / 4) : 0;
	int n_old = 0;
	for (int i = 0; i < n_xwins; i++)
		if (!xwins[i].early) /* an early window is not selected yet */
			old[n_old++] = xwins[i].id;
	for (int i = 0; i < count; i++) {
		memset(&fresh[i], 0, sizeof fresh[i]);
		memset(&scan_st[i], 0, sizeof scan_st[i]);
		fresh[i].id = ids[i];
		if (ids[i] == scan_active)
			fresh[i].flags |= WIN_FOCUSED;
		if (!x_known(old, n_old, ids[i]))
			x_select(ids[i], X_STRUCTURE_NOTIFY | X_PROPERTY_CHANGE);
		if (x_fd < 0 || x_ask_client(ids[i], i) < 0)
			return;
	}
	if (x_pipe_wait() < 0)
		return;
	/* Up from each client to its frame, the child of the root, a level at a time. */
	for (int depth = 0; depth < X_FRAME_DEPTH; depth++) {
		int asked = 0;
		if (depth == 0 && x_pipe_on(15 /* QueryTree */, x_root, Q_ROOT_TREE, 0) < 0)
			return;
		for (int i = 0; i < count; i++) {
			if (scan_st[i].gone || scan_st[i].framed)
				continue;
			if (x_pipe_on(14 /* GetGeometry */, scan_st[i].up, Q_UP_GEOMETRY, i) < 0 || x_pipe_on(15 /* QueryTree */, scan_st[i].up, Q_UP_TREE, i) < 0)
				return;
			asked++;
		}
		if (x_pipe_wait() < 0)
			return;
		if (asked == 0)
			break;
	}
	/*
	 * Only a client its window manager has taken on (ICCCM 4.1.3.1: it sets WM_STATE then) is
	 * listed. fluxbox's lists go on naming, for a while, a window destroyed while it mapped it
	 * (seen here); X gives that id to a later client's window, which the lists then name before
	 * fluxbox has it, unframed, and a move asked for it then is lost. The window manager's
	 * setting WM_STATE brings another scan (the client's properties are watched).
	 */
	int kept = 0;
	for (int i = 0; i < count; i++) {
		if (scan_st[i].gone || !scan_st[i].managed)
			continue;
		if (!scan_st[i].framed) /* nested deeper than X_FRAME_DEPTH: the last ancestor asked about */
			x_frame_found(&fresh[i], &scan_st[i], scan_st[i].uid, scan_st[i].ux, scan_st[i].uy, scan_st[i].uw, scan_st[i].uh, scan_st[i].ub);
		if (kept != i)
			fresh[kept] = fresh[i];
		kept++;
	}
	x_sort_by_stack(fresh, kept);
	x_hold_framed(fresh, kept, started);
	if (x_regrouping(fresh, kept, started)) {
		if (x_scan_at == 0 || x_regroup_next() < x_scan_at)
			x_scan_at = x_regroup_next(); /* and again then, if no event comes first */
		return;
	}
	memcpy(xwins, fresh, (size_t)kept * sizeof fresh[0]);
	n_xwins = kept;
	x_early_after_scan(started); /* and sends the list */
	launches_check();
}

static void xclip_setup(uint32_t base, uint32_t mask, unsigned max_request);
static void xclip_connected(void);

static void x_connect(void)
{
	x_retry_at = now_ms() + X_RETRY_MS;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, X_SOCKET, sizeof X_SOCKET);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return;
	}
	x_fd = fd;
	xb_start = xb_end = 0;
	x_seq = 0;
	/* Connection setup (protocol section 8): little-endian, 11.0, no authorization. */
	static const unsigned char setup[12] = {'l', 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	if (write(fd, setup, sizeof setup) != (ssize_t)sizeof setup) {
		x_close(NULL);
		return;
	}
	uint64_t deadline = now_ms() + X_TIMEOUT_MS;
	size_t need = 8;
	while (xb_end < need) {
		uint64_t now = now_ms();
		if (now >= deadline || x_fill((int)(deadline - now)) < 0) {
			x_close("no answer to the connection setup");
			return;
		}
		if (xb_end >= 8)
			need = 8 + (size_t)get_le16(xbuf + 6) * 4;
		if (need > sizeof xbuf) {
			x_close("the connection setup is too large");
			return;
		}
	}
	const unsigned char *s = xbuf;
	if (s[0] != 1) {
		static int told; /* retried every second: said once */
		unsigned reason = s[0] == 0 ? s[1] : 0;
		if (reason > need - 8)
			reason = (unsigned)(need - 8);
		if (!told++)
			logmsg("the X server refused the connection (it must run without -auth, or with -ac): %.*s", (int)reason, (const char *)s + 8);
		x_close(NULL);
		return;
	}
	size_t vendor = get_le16(s + 24), formats = s[29], screens = s[28];
	size_t at = 40 + ((vendor + 3) & ~(size_t)3) + 8 * formats;
	if (screens < 1 || need < 40 || at + 40 > need) {
		x_close("the connection setup is malformed");
		return;
	}
	x_root = get_le32(s + at);
	x_root_w = get_le16(s + at + 20);
	x_root_h = get_le16(s + at + 22);
	xclip_setup(get_le32(s + 12), get_le32(s + 16), get_le16(s + 26));
	xb_start = need;
	for (int i = 0; i < A_COUNT; i++)
		if (x_intern(atom_names[i], &atoms[i]) < 0) {
			x_close("cannot look up the window manager's atoms");
			return;
		}
	x_select(x_root, X_PROPERTY_CHANGE | X_SUBSTRUCTURE_NOTIFY | X_STRUCTURE_NOTIFY);
	xclip_connected();
	if (x_fd < 0)
		return;
	check_display();
	if (verbose)
		logmsg("connected to X display :0, root window 0x%x", (unsigned)x_root);
	if (x_lost_at) {
		x_lost_at = 0; /* the next scans' list replaces the one kept, once its windows are framed again */
		x_regroup_until = 0;
		x_regroup_start();
		x_regroup_lost = 1;
	}
	x_changed();
}

/* A window as nested fields (messages.ts: WINDOW_FIELD). */
static void msg_window(const struct xwin *w)
{
	size_t at = msg_open(1);
	msg_u32(1, w->id);
	msg_bytes(2, w->title, w->title_len);
	msg_u32(3, (uint32_t)w->x);
	msg_u32(4, (uint32_t)w->y);
	msg_u32(5, w->w);
	msg_u32(6, w->h);
	msg_u32(7, w->flags);
	if (w->pid)
		msg_u32(8, w->pid);
	if (w->class_len)
		msg_bytes(9, w->cls, w->class_len);
	msg_u32(10, (uint32_t)w->fx);
	msg_u32(11, (uint32_t)w->fy);
	msg_u32(12, w->fw);
	msg_u32(13, w->fh);
	msg_close(at);
}

/* The client list, bottom of the stack first, if it differs from what the host has. */
static void send_windows(void)
{
	if (!negotiated)
		return;
	msg_begin(negotiated, T_WINDOWS, 0);
	for (int i = 0; i < n_xwins; i++)
		msg_window(&xwins[i]);
	if (out_overflow)
		return;
	const unsigned char *payload = out + FRAME_HEADER;
	size_t len = out_len - FRAME_HEADER;
	if (win_sent_valid && len == win_sent_len && memcmp(payload, win_sent, len) == 0)
		return;
	unsigned char *copy = realloc(win_sent, len);
	if (copy) {
		memcpy(copy, payload, len);
		win_sent = copy;
		win_sent_len = len;
		win_sent_valid = 1;
	}
	msg_send();
	if (verbose)
		logmsg("sent %d windows", n_xwins);
}

/* ------------------------------------------------------------------------ */
/*
 * The X clipboard (the CLIPBOARD selection), kept in step with the host's. The agent owns
 * CLIPBOARD with what the host set (text or a PNG), and PRIMARY with text (what a middle click
 * pastes), and answers SelectionRequest for TARGETS,
 * UTF8_STRING/STRING/TEXT or image/png, with INCR for data larger than one request. When
 * another client takes CLIPBOARD (XFixes tells; without XFixes the owner is polled) the agent
 * converts it, image/png first, else UTF8_STRING, INCR included, and sends it to the host.
 * PRIMARY likewise, with XFixes: X's old apps (xterm, the Athena editor) copy by selecting, and
 * their users paste that on the host, as X servers beside Windows' own windows do by default.
 * Events are queued as they arrive and handled from the main loop (an X call inside another
 * would take its reply); every conversion and INCR transfer has a deadline, and sizes a cap.
 */

#define XCLIP_STEP_MS 3000   /* for a client to answer one step of a conversion */
#define XCLIP_TRIES 3        /* conversions of one copy, when its owner does not answer in time (a busy guest) */
#define XCLIP_POLL_MS 250    /* the owner's poll without XFixes */
#define XCLIP_QUEUE 64
#define XCLIP_SENDS 4
#define XCLIP_CHUNK (64 * 1024)
#define XCLIP_REQ_MAX (256 * 1024)
#define XA_ATOM 4
#define XA_PRIMARY 1

/*
 * Each conversion names the next of XCLIP_PROPS properties for its answer: an owner's late answer
 * to an earlier conversion (one that timed out, or another owner's) names another, and is ignored.
 */
#define XCLIP_PROPS 4
enum { C_CLIPBOARD, C_TARGETS, C_INCR, C_PNG, C_TEXT, C_TIMESTAMP, C_PROP, C_COUNT = C_PROP + XCLIP_PROPS };
static const char *const xc_atom_names[C_COUNT] = {"CLIPBOARD", "TARGETS", "INCR", "image/png", "TEXT", "TIMESTAMP", "UMAGENT_SELECTION", "UMAGENT_SELECTION_1", "UMAGENT_SELECTION_2", "UMAGENT_SELECTION_3"};
static uint32_t xc_atoms[C_COUNT];

static uint32_t xc_id_base, xc_id_mask;
static size_t xc_req_bytes;     /* the largest request the server takes, in bytes */
static uint32_t xc_win;         /* the agent's own (unmapped) window; 0 without X */
static unsigned xc_fixes_event; /* XFixes' first event code; 0 without XFixes */
static uint32_t xc_owner_seen;  /* the polled owner */
/* Each selection's owner as last told (CLIPBOARD, PRIMARY), kept while the display is lost: a copy made meanwhile is read after. */
static uint32_t xc_owners[2];
static int xc_was_connected;
static int xc_lost_owning, xc_lost_primary; /* what the agent owned when the display was lost: owned again after */
static uint64_t xc_poll_at;

static int host_png; /* the host takes PNG clipboards ("clipboard.png") */

/* What the host set: owned by the agent while xc_owning. */
static int xc_kind; /* 0 nothing, 1 text, 2 PNG */
static unsigned char *xc_data;
static size_t xc_len;
static int xc_owning;
/* Text from the host is PRIMARY too: a middle click, or xterm's Shift+Insert, pastes it. */
static int xc_owning_primary;

static unsigned char xc_queue[XCLIP_QUEUE][32];
static int xc_queued;

/* Converting another client's selection. */
enum { R_IDLE, R_TARGETS, R_DATA, R_INCR };
static int xc_rstate;
static uint32_t xc_rselection; /* CLIPBOARD or PRIMARY, being converted */
static uint32_t xc_rtarget;
static uint32_t xc_rprop;    /* the property this conversion's answer comes in */
static unsigned xc_rconversions; /* conversions asked for: picks the next property */
static uint64_t xc_rdeadline;
static int xc_ragain; /* an owner changed during a conversion: convert xc_ragain_selection after it */
static uint32_t xc_ragain_selection;
static int xc_rtries; /* conversions of this copy started after the first timed out */
static unsigned char *xc_rbuf;
static size_t xc_rlen;
static int xc_rtoo_big;

/* INCR transfers to requestors. */
struct xc_send {
	int used;
	uint32_t requestor, property, type;
	size_t at;
	uint64_t deadline;
};
static struct xc_send xc_sends[XCLIP_SENDS];
static unsigned char xc_req[24 + XCLIP_REQ_MAX];

static void xclip_setup(uint32_t base, uint32_t mask, unsigned max_request)
{
	xc_id_base = base;
	xc_id_mask = mask;
	xc_req_bytes = (size_t)max_request * 4;
	if (xc_req_bytes > sizeof xc_req)
		xc_req_bytes = sizeof xc_req;
}

/* ChangeProperty (mode Replace) of n bytes in format 8 or 32. */
static void xc_change_property(uint32_t window, uint32_t property, uint32_t type, unsigned format, const void *data, size_t n)
{
	size_t padded = (n + 3) & ~(size_t)3;
	if (24 + padded > sizeof xc_req)
		return;
	memset(xc_req, 0, 24);
	xc_req[0] = 18;
	xc_req[1] = 0;
	put_le16(xc_req + 2, (unsigned)((24 + padded) / 4));
	put_le32(xc_req + 4, window);
	put_le32(xc_req + 8, property);
	put_le32(xc_req + 12, type);
	xc_req[16] = (unsigned char)format;
	put_le32(xc_req + 20, (uint32_t)(n / (format / 8)));
	if (n)
		memcpy(xc_req + 24, data, n);
	memset(xc_req + 24 + n, 0, padded - n);
	x_write(xc_req, 24 + padded);
}

static void xc_simple(unsigned char opcode, uint32_t a, uint32_t b, uint32_t c, unsigned words)
{
	unsigned char req[16];
	memset(req, 0, sizeof req);
	req[0] = opcode;
	put_le16(req + 2, words);
	put_le32(req + 4, a);
	put_le32(req + 8, b);
	put_le32(req + 12, c);
	x_write(req, (size_t)words * 4);
}

static void xc_notify(uint32_t requestor, uint32_t time, uint32_t selection, uint32_t target, uint32_t property)
{
	unsigned char req[44];
	memset(req, 0, sizeof req);
	req[0] = 25; /* SendEvent, propagate false, no mask */
	put_le16(req + 2, 11);
	put_le32(req + 4, requestor);
	req[12] = 31; /* SelectionNotify */
	put_le32(req + 16, time);
	put_le32(req + 20, requestor);
	put_le32(req + 24, selection);
	put_le32(req + 28, target);
	put_le32(req + 32, property);
	x_write(req, sizeof req);
}

static void xc_convert(uint32_t target)
{
	unsigned char req[24];
	req[0] = 24; /* ConvertSelection */
	req[1] = 0;
	put_le16(req + 2, 6);
	put_le32(req + 4, xc_win);
	put_le32(req + 8, xc_rselection);
	put_le32(req + 12, target);
	xc_rprop = xc_atoms[C_PROP + xc_rconversions++ % XCLIP_PROPS];
	put_le32(req + 16, xc_rprop);
	put_le32(req + 20, 0); /* CurrentTime */
	x_write(req, sizeof req);
	xc_rtarget = target;
	xc_rdeadline = now_ms() + XCLIP_STEP_MS;
}

/* Converts `selection` (CLIPBOARD or PRIMARY) another client took; after the conversion under way, if one is. */
static void xc_start_read(uint32_t selection)
{
	if (x_fd < 0 || !xc_win)
		return;
	if (xc_rstate != R_IDLE) {
		xc_ragain = 1;
		xc_ragain_selection = selection; /* the newest change is what the user copied */
		return;
	}
	xc_rselection = selection;
	xc_rlen = 0;
	xc_rtoo_big = 0;
	xc_rtries = 0;
	xc_rstate = R_TARGETS;
	xc_convert(xc_atoms[C_TARGETS]);
}

/* Appends the property xc_rprop of the agent's window to xc_rbuf, then deletes it: its type, 0 if absent. */
static uint32_t xc_read_property(size_t *added)
{
	uint32_t type = 0;
	uint32_t offset = 0;
	*added = 0;
	for (;;) {
		unsigned char req[24];
		req[0] = 20; /* GetProperty, delete false */
		req[1] = 0;
		put_le16(req + 2, 6);
		put_le32(req + 4, xc_win);
		put_le32(req + 8, xc_rprop);
		put_le32(req + 12, 0);
		put_le32(req + 16, offset);
		put_le32(req + 20, XCLIP_CHUNK / 4);
		const unsigned char *r;
		size_t rlen;
		if (x_call(req, sizeof req, &r, &rlen) != 1)
			return 0;
		unsigned fmt = r[1];
		type = get_le32(r + 8);
		uint32_t after = get_le32(r + 12), count = get_le32(r + 16);
		if (type == 0)
			break;
		if ((fmt != 8 && fmt != 16 && fmt != 32) || count > XCLIP_CHUNK) {
			type = 0;
			break;
		}
		size_t bytes = (size_t)count * (fmt / 8);
		if (bytes > rlen - 32) {
			type = 0;
			break;
		}
		if (xc_rlen + bytes > MAX_CLIP_IMAGE) {
			xc_rtoo_big = 1;
		} else if (bytes) {
			unsigned char *grown = realloc(xc_rbuf, xc_rlen + bytes);
			if (!grown) {
				xc_rtoo_big = 1;
			} else {
				xc_rbuf = grown;
				memcpy(xc_rbuf + xc_rlen, r + 32, bytes);
				xc_rlen += bytes;
				*added += bytes;
			}
		}
		if (after == 0 || bytes == 0 || bytes % 4)
			break;
		offset += (uint32_t)(bytes / 4);
	}
	xc_simple(19, xc_win, xc_rprop, 0, 3); /* DeleteProperty */
	return type;
}

static void xc_read_done(void)
{
	xc_rstate = R_IDLE;
	if (xc_rtoo_big) {
		logmsg("the X clipboard holds more than %d bytes; not sent", MAX_CLIP_IMAGE);
	} else if (negotiated && xc_rtarget == xc_atoms[C_PNG]) {
		if (!host_png)
			logmsg("the host takes no images on the clipboard; not sent");
		else if (xc_rlen < 8 || memcmp(xc_rbuf, "\x89PNG\r\n\x1a\n", 8) != 0)
			logmsg("the X clipboard's image/png is not a PNG; not sent");
		else {
			msg_begin(negotiated, T_CLIPBOARD, 0);
			msg_cstr(2, MIME_PNG, 64);
			msg_bytes(3, xc_rbuf, xc_rlen);
			msg_send();
		}
	} else if (negotiated) {
		size_t len = xc_rlen > MAX_CLIPBOARD ? MAX_CLIPBOARD : xc_rlen;
		size_t clean = xc_rtarget == XA_STRING ? latin1_to_utf8(clip_clean, sizeof clip_clean, xc_rbuf ? xc_rbuf : clip_clean, len)
		                                       : utf8_clean(clip_clean, sizeof clip_clean, xc_rbuf ? xc_rbuf : clip_clean, len);
		msg_begin(negotiated, T_CLIPBOARD, 0);
		msg_bytes(1, clip_clean, clean);
		msg_send();
	}
	xc_rlen = 0;
	if (xc_ragain) {
		xc_ragain = 0;
		xc_start_read(xc_ragain_selection);
	}
}

static void xc_selection_notify(const unsigned char *e)
{
	/*
	 * An answer to an earlier conversion (timed out and asked again, or another owner's) may
	 * still come: it names another target or property. A refusal (property 0) cannot be told apart.
	 */
	uint32_t property = get_le32(e + 20);
	if (get_le32(e + 8) != xc_win || get_le32(e + 12) != xc_rselection || get_le32(e + 16) != xc_rtarget || (property != 0 && property != xc_rprop) ||
	    xc_rstate == R_IDLE || xc_rstate == R_INCR)
		return;
	if (xc_rstate == R_TARGETS) {
		uint32_t want = atoms[A_UTF8_STRING];
		if (property != 0) {
			size_t added;
			xc_rlen = 0;
			uint32_t type = xc_read_property(&added);
			int png = 0, utf8 = 0, str = 0;
			for (size_t i = 0; type == XA_ATOM && i + 4 <= xc_rlen; i += 4) {
				uint32_t a = get_le32(xc_rbuf + i);
				png |= a == xc_atoms[C_PNG];
				utf8 |= a == atoms[A_UTF8_STRING];
				str |= a == XA_STRING;
			}
			want = png && host_png ? xc_atoms[C_PNG] : utf8 ? atoms[A_UTF8_STRING] : str ? XA_STRING : 0;
		}
		xc_rlen = 0;
		if (!want) {
			xc_rstate = R_IDLE;
			if (verbose)
				logmsg("the X clipboard offers neither text nor image/png");
			return;
		}
		xc_rstate = R_DATA;
		xc_convert(want);
		return;
	}
	if (property == 0) {
		logmsg("the X clipboard's owner refused to convert it");
		xc_rstate = R_IDLE;
		return;
	}
	size_t added;
	uint32_t type = xc_read_property(&added);
	if (type == xc_atoms[C_INCR]) {
		xc_rlen = 0; /* the size announced; the data follows in pieces */
		xc_rstate = R_INCR;
		xc_rdeadline = now_ms() + XCLIP_STEP_MS;
		return;
	}
	xc_read_done();
}

/* PropertyNotify: a piece of an INCR transfer to the agent, or a requestor ready for the next. */
static void xc_property_notify(const unsigned char *e)
{
	uint32_t window = get_le32(e + 4), atom = get_le32(e + 8);
	unsigned state = e[16];
	if (window == xc_win && atom == xc_rprop && state == 0 && xc_rstate == R_INCR) {
		size_t added;
		uint32_t type = xc_read_property(&added);
		xc_rdeadline = now_ms() + XCLIP_STEP_MS;
		if (type == 0 || added == 0)
			xc_read_done();
		return;
	}
	if (state != 1)
		return;
	for (int i = 0; i < XCLIP_SENDS; i++) {
		struct xc_send *s = &xc_sends[i];
		if (!s->used || s->requestor != window || s->property != atom)
			continue;
		size_t n = xc_len - s->at;
		if (n > XCLIP_CHUNK)
			n = XCLIP_CHUNK;
		xc_change_property(window, atom, s->type, 8, xc_data + s->at, n);
		s->at += n;
		s->deadline = now_ms() + XCLIP_STEP_MS;
		if (n == 0) {
			s->used = 0;
			xc_simple(2, window, 0x800, 0, 4); /* its events no longer wanted */
		}
		return;
	}
}

static void xc_selection_request(const unsigned char *e)
{
	uint32_t time = get_le32(e + 4), requestor = get_le32(e + 12), selection = get_le32(e + 16);
	uint32_t target = get_le32(e + 20), property = get_le32(e + 24);
	if (property == 0)
		property = target;
	uint32_t type = 0;
	if (!(xc_owning && selection == xc_atoms[C_CLIPBOARD]) && !(xc_owning_primary && selection == XA_PRIMARY)) {
		property = 0;
	} else if (target == xc_atoms[C_TARGETS]) {
		uint32_t list[6];
		size_t n = 0;
		list[n++] = xc_atoms[C_TARGETS];
		if (xc_kind == 1) {
			list[n++] = atoms[A_UTF8_STRING];
			list[n++] = XA_STRING;
			list[n++] = xc_atoms[C_TEXT];
		} else {
			list[n++] = xc_atoms[C_PNG];
		}
		xc_change_property(requestor, property, XA_ATOM, 32, list, n * 4);
	} else if (xc_kind == 1 && (target == atoms[A_UTF8_STRING] || target == XA_STRING || target == xc_atoms[C_TEXT])) {
		type = target == XA_STRING ? XA_STRING : atoms[A_UTF8_STRING];
	} else if (xc_kind == 2 && target == xc_atoms[C_PNG]) {
		type = xc_atoms[C_PNG];
	} else {
		property = 0;
	}
	if (type == XA_STRING && xc_len + 24 <= xc_req_bytes) {
		/* STRING is Latin-1 (ICCCM): characters beyond it become '?'. */
		static unsigned char latin1[XCLIP_REQ_MAX];
		size_t n = 0;
		for (size_t i = 0; i < xc_len && n < sizeof latin1;) {
			size_t seq = utf8_seq(xc_data + i, xc_len - i);
			unsigned c = xc_data[i];
			if (seq == 2 && c < 0xc4)
				latin1[n++] = (unsigned char)((c & 0x1f) << 6 | (xc_data[i + 1] & 0x3f));
			else
				latin1[n++] = seq == 1 ? (unsigned char)c : '?';
			i += seq ? seq : 1;
		}
		xc_change_property(requestor, property, type, 8, latin1, n);
	} else if (type == XA_STRING) {
		property = 0; /* too large for one request: clients take UTF8_STRING, offered first */
	} else if (type && xc_len + 24 <= xc_req_bytes) {
		xc_change_property(requestor, property, type, 8, xc_data, xc_len);
	} else if (type) {
		int slot = -1;
		for (int i = 0; i < XCLIP_SENDS && slot < 0; i++)
			if (!xc_sends[i].used)
				slot = i;
		if (slot < 0) {
			logmsg("too many clipboard transfers at once; one refused");
			property = 0;
		} else {
			struct xc_send *s = &xc_sends[slot];
			s->used = 1;
			s->requestor = requestor;
			s->property = property;
			s->type = type;
			s->at = 0;
			s->deadline = now_ms() + XCLIP_STEP_MS;
			xc_simple(2, requestor, 0x800, X_PROPERTY_CHANGE, 4); /* ChangeWindowAttributes: its deletions */
			uint32_t size = (uint32_t)xc_len;
			xc_change_property(requestor, property, xc_atoms[C_INCR], 32, &size, 4);
		}
	}
	xc_notify(requestor, time, selection, target, property);
}

/* The host set the clipboard: the agent owns CLIPBOARD with it (kind 1 text, 2 PNG). */
static void xclip_take(int kind, const unsigned char *data, size_t len)
{
	unsigned char *copy = malloc(len ? len : 1);
	if (!copy) {
		logmsg("out of memory for the clipboard");
		return;
	}
	if (len)
		memcpy(copy, data, len);
	free(xc_data);
	xc_data = copy;
	xc_len = len;
	xc_kind = kind;
	for (int i = 0; i < XCLIP_SENDS; i++)
		xc_sends[i].used = 0; /* transfers of the old content end */
	if (x_fd < 0 || !xc_win)
		return;
	xc_simple(22, xc_win, xc_atoms[C_CLIPBOARD], 0, 4); /* SetSelectionOwner, CurrentTime */
	xc_owning = 1;
	xc_owner_seen = xc_win;
	if (kind == 1)
		xc_simple(22, xc_win, XA_PRIMARY, 0, 4);
	else if (xc_owning_primary)
		xc_simple(22, 0, XA_PRIMARY, 0, 4); /* an image is no selection: PRIMARY is given up */
	xc_owning_primary = kind == 1;
}

/* After the connection setup: the agent's window, its atoms, XFixes' selection events. */
static void xclip_connected(void)
{
	for (int i = 0; i < C_COUNT; i++)
		if (x_intern(xc_atom_names[i], &xc_atoms[i]) < 0)
			return;
	xc_win = xc_id_base | (0x10 & xc_id_mask);
	unsigned char req[36];
	memset(req, 0, sizeof req);
	req[0] = 1; /* CreateWindow, depth CopyFromParent */
	put_le16(req + 2, 9);
	put_le32(req + 4, xc_win);
	put_le32(req + 8, x_root);
	put_le16(req + 12, (unsigned)-10 & 0xffff);
	put_le16(req + 14, (unsigned)-10 & 0xffff);
	put_le16(req + 16, 1);
	put_le16(req + 18, 1);
	put_le16(req + 22, 2); /* InputOnly */
	put_le32(req + 28, 0x800);
	put_le32(req + 32, X_PROPERTY_CHANGE);
	x_write(req, sizeof req);
	xc_fixes_event = 0;
	static const char ext[] = "XFIXES";
	unsigned char q[16];
	memset(q, 0, sizeof q);
	q[0] = 98; /* QueryExtension */
	put_le16(q + 2, 4);
	put_le16(q + 4, sizeof ext - 1);
	memcpy(q + 8, ext, sizeof ext - 1);
	const unsigned char *r;
	size_t rlen;
	if (x_call(q, sizeof q, &r, &rlen) == 1 && r[8]) {
		unsigned major = r[9], first_event = r[10];
		unsigned char v[12] = {(unsigned char)major, 0, 3, 0, 5, 0, 0, 0, 0, 0, 0, 0}; /* QueryVersion 5.0 */
		if (x_call(v, sizeof v, &r, &rlen) == 1) {
			unsigned char s[16];
			s[0] = (unsigned char)major;
			s[1] = 2; /* SelectSelectionInput */
			put_le16(s + 2, 4);
			put_le32(s + 4, xc_win);
			put_le32(s + 8, xc_atoms[C_CLIPBOARD]);
			put_le32(s + 12, 1); /* SetSelectionOwner */
			x_write(s, sizeof s);
			put_le32(s + 8, XA_PRIMARY);
			x_write(s, sizeof s);
			xc_fixes_event = first_event;
		}
	}
	if (x_fd < 0)
		return;
	xc_owner_seen = 0;
	xc_poll_at = now_ms() + XCLIP_POLL_MS;
	/* Back after losing the display: a selection another client took meanwhile is read now. */
	for (int i = 0; i < 2 && xc_was_connected && xc_fixes_event; i++) {
		uint32_t selection = i == 0 ? xc_atoms[C_CLIPBOARD] : XA_PRIMARY;
		unsigned char o[8];
		o[0] = 23; /* GetSelectionOwner */
		o[1] = 0;
		put_le16(o + 2, 2);
		put_le32(o + 4, selection);
		if (x_call(o, sizeof o, &r, &rlen) != 1)
			return;
		uint32_t owner = get_le32(r + 8);
		int ours = i == 0 ? xc_lost_owning : xc_lost_primary;
		if (owner == 0 && ours) {
			xc_simple(22, xc_win, selection, 0, 4); /* SetSelectionOwner: the host's copy is pasted again */
			if (i == 0)
				xc_owning = 1;
			else
				xc_owning_primary = 1;
			owner = xc_win;
		} else if (owner != 0 && owner != xc_owners[i]) {
			xc_start_read(selection);
		}
		xc_owners[i] = owner;
	}
	xc_lost_owning = xc_lost_primary = 0;
	xc_was_connected = 1;
	if (verbose)
		logmsg("X clipboard: window 0x%x, %s, requests up to %zu bytes", (unsigned)xc_win, xc_fixes_event ? "XFixes" : "polling the owner", xc_req_bytes);
}

static void xclip_closed(void)
{
	xc_lost_owning = xc_owning;
	xc_lost_primary = xc_owning_primary;
	xc_win = 0;
	xc_owning = 0;
	xc_owning_primary = 0;
	xc_queued = 0;
	xc_rstate = R_IDLE;
	xc_ragain = 0;
	for (int i = 0; i < XCLIP_SENDS; i++)
		xc_sends[i].used = 0;
}

/* Called for each event as it arrives: the clipboard's are kept for xclip_process. */
static void xclip_event(const unsigned char *p)
{
	unsigned code = p[0] & 0x7f;
	int wanted = code == 28 || code == 29 || code == 30 || code == 31 || (xc_fixes_event && code == xc_fixes_event);
	if (!wanted || !xc_win)
		return;
	if (code == 28) {
		uint32_t window = get_le32(p + 4);
		int ours = window == xc_win;
		for (int i = 0; i < XCLIP_SENDS && !ours; i++)
			ours = xc_sends[i].used && xc_sends[i].requestor == window;
		if (!ours)
			return;
	}
	if (xc_queued == XCLIP_QUEUE) {
		logmsg("too many X clipboard events at once; one dropped");
		return;
	}
	memcpy(xc_queue[xc_queued++], p, 32);
}

/* When the main loop must call xclip_process next. */
static uint64_t xclip_wake(void)
{
	if (x_fd < 0 || !xc_win)
		return UINT64_MAX;
	if (xc_queued)
		return 0;
	uint64_t wake = xc_fixes_event ? UINT64_MAX : xc_poll_at;
	if (xc_rstate != R_IDLE && xc_rdeadline < wake)
		wake = xc_rdeadline;
	for (int i = 0; i < XCLIP_SENDS; i++)
		if (xc_sends[i].used && xc_sends[i].deadline < wake)
			wake = xc_sends[i].deadline;
	return wake;
}

static void xclip_process(void)
{
	if (x_fd < 0 || !xc_win)
		return;
	while (xc_queued > 0 && x_fd >= 0) {
		unsigned char e[32];
		memcpy(e, xc_queue[0], 32);
		memmove(xc_queue[0], xc_queue[1], (size_t)(--xc_queued) * 32);
		unsigned code = e[0] & 0x7f;
		if (xc_fixes_event && code == xc_fixes_event) {
			uint32_t owner = get_le32(e + 8), selection = get_le32(e + 12);
			if (selection == xc_atoms[C_CLIPBOARD] || selection == XA_PRIMARY)
				xc_owners[selection == XA_PRIMARY] = owner;
			if (owner == xc_win)
				continue;
			if (selection == xc_atoms[C_CLIPBOARD])
				xc_owning = 0;
			else if (selection == XA_PRIMARY)
				xc_owning_primary = 0;
			else
				continue;
			if (owner)
				xc_start_read(selection);
			continue;
		}
		switch (code) {
		case 28:
			xc_property_notify(e);
			break;
		case 29: /* SelectionClear */
			if (get_le32(e + 12) == xc_atoms[C_CLIPBOARD])
				xc_owning = 0;
			else if (get_le32(e + 12) == XA_PRIMARY)
				xc_owning_primary = 0;
			break;
		case 30:
			xc_selection_request(e);
			break;
		case 31:
			xc_selection_notify(e);
			break;
		default:
			break;
		}
	}
	if (x_fd < 0)
		return;
	uint64_t now = now_ms();
	if (xc_rstate != R_IDLE && now >= xc_rdeadline) {
		xc_rstate = R_IDLE;
		xc_rlen = 0;
		if (xc_ragain) {
			logmsg("the X clipboard's owner did not answer within %d ms; reading the newer copy", XCLIP_STEP_MS);
			xc_ragain = 0;
			xc_start_read(xc_ragain_selection);
		} else if ((xc_owning && xc_rselection == xc_atoms[C_CLIPBOARD]) || (xc_owning_primary && xc_rselection == XA_PRIMARY)) {
			/* the host's copy took the selection meanwhile: the agent's own, not to be read back */
			logmsg("the X clipboard's owner did not answer within %d ms; the host's copy has replaced it", XCLIP_STEP_MS);
		} else if (xc_rtries + 1 < XCLIP_TRIES) {
			int tries = xc_rtries + 1;
			logmsg("the X clipboard's owner did not answer within %d ms; asking again", XCLIP_STEP_MS);
			xc_start_read(xc_rselection);
			xc_rtries = tries;
		} else {
			logmsg("the X clipboard's owner did not answer within %d ms, %d times; that copy is not sent", XCLIP_STEP_MS, XCLIP_TRIES);
		}
	}
	for (int i = 0; i < XCLIP_SENDS; i++)
		if (xc_sends[i].used && now >= xc_sends[i].deadline) {
			logmsg("a clipboard transfer to window 0x%x stalled; dropped", (unsigned)xc_sends[i].requestor);
			xc_sends[i].used = 0;
		}
	if (!xc_fixes_event && now >= xc_poll_at) {
		xc_poll_at = now + XCLIP_POLL_MS;
		unsigned char req[8];
		req[0] = 23; /* GetSelectionOwner */
		req[1] = 0;
		put_le16(req + 2, 2);
		put_le32(req + 4, xc_atoms[C_CLIPBOARD]);
		const unsigned char *r;
		size_t rlen;
		if (x_call(req, sizeof req, &r, &rlen) == 1) {
			uint32_t owner = get_le32(r + 8);
			if (owner != xc_owner_seen) {
				xc_owner_seen = owner;
				if (owner != xc_win) {
					xc_owning = 0;
					if (owner)
						xc_start_read(xc_atoms[C_CLIPBOARD]);
				}
			}
		}
	}
}

/* ------------------------------------------------------------------------ */
/* apps: the .desktop files of /usr/share/applications (Desktop Entry Specification 1.5) */

#define APPS_DIR "/usr/share/applications"

struct app {
	char id[MAX_APP_ID];
	char name[MAX_APP_NAME];
	char exec[MAX_APP_EXEC];
	char icon[256];
	char wmclass[MAX_APP_ID];
};

static void copy_value(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

/* Exec without its field codes (%f %U ...; %% is a percent sign). */
static void strip_field_codes(char *s)
{
	char *w = s;
	for (const char *r = s; *r; r++) {
		if (*r == '%' && r[1]) {
			if (r[1] == '%')
				*w++ = '%';
			r++;
			continue;
		}
		*w++ = *r;
	}
	while (w > s && (w[-1] == ' ' || w[-1] == '\t'))
		w--;
	*w = 0;
}

/* One .desktop file; 0 if it is a launchable application. */
static int app_read(const char *file, struct app *a)
{
	static char text[64 * 1024 + 1];
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/%s", APPS_DIR, file) >= (int)sizeof path)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = 0;
	memset(a, 0, sizeof *a);
	size_t id_len = strlen(file) - strlen(".desktop");
	if (id_len == 0 || id_len >= sizeof a->id)
		return -1;
	memcpy(a->id, file, id_len);
	int in_entry = 0, application = 0;
	for (char *line = text, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		size_t len = strlen(line);
		if (len && line[len - 1] == '\r')
			line[--len] = 0;
		if (line[0] == '[') {
			if (in_entry)
				break;
			in_entry = strcmp(line, "[Desktop Entry]") == 0;
			continue;
		}
		char *eq = strchr(line, '=');
		if (!in_entry || line[0] == '#' || !eq)
			continue;
		char *key_end = eq;
		while (key_end > line && (key_end[-1] == ' ' || key_end[-1] == '\t'))
			key_end--;
		*key_end = 0;
		char *value = eq + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		if (strcmp(line, "Type") == 0)
			application = strcmp(value, "Application") == 0;
		else if (strcmp(line, "Name") == 0)
			copy_value(a->name, sizeof a->name, value);
		else if (strcmp(line, "Exec") == 0)
			copy_value(a->exec, sizeof a->exec, value);
		else if (strcmp(line, "Icon") == 0)
			copy_value(a->icon, sizeof a->icon, value);
		else if (strcmp(line, "StartupWMClass") == 0)
			copy_value(a->wmclass, sizeof a->wmclass, value);
		else if ((strcmp(line, "NoDisplay") == 0 || strcmp(line, "Hidden") == 0) && strcmp(value, "true") == 0)
			return -1;
	}
	strip_field_codes(a->exec);
	return application && a->name[0] && a->exec[0] ? 0 : -1;
}

static int app_compare(const void *a, const void *b)
{
	return strcmp(((const struct app *)a)->id, ((const struct app *)b)->id);
}

/* The launchable apps, sorted by id. */
static int apps_list(struct app *apps, int max)
{
	DIR *dir = opendir(APPS_DIR);
	if (!dir)
		return 0;
	int count = 0;
	struct dirent *e;
	while (count < max && (e = readdir(dir)) != NULL) {
		size_t len = strlen(e->d_name);
		if (len <= 8 || strcmp(e->d_name + len - 8, ".desktop") != 0)
			continue;
		if (app_read(e->d_name, &apps[count]) == 0)
			count++;
	}
	closedir(dir);
	qsort(apps, (size_t)count, sizeof apps[0], app_compare);
	return count;
}

/* The icon's PNG bytes (at most MAX_ICON), from a path or a name; 0 if there is none. */
static size_t app_icon(const char *icon, unsigned char *dst)
{
	static const char *const places[] = {
		"/usr/share/icons/hicolor/48x48/apps/%s.png", "/usr/share/icons/hicolor/32x32/apps/%s.png",
		"/usr/share/icons/hicolor/64x64/apps/%s.png", "/usr/share/icons/hicolor/24x24/apps/%s.png",
		"/usr/share/icons/hicolor/128x128/apps/%s.png", "/usr/share/icons/hicolor/16x16/apps/%s.png",
		"/usr/share/pixmaps/%s.png",
	};
	char path[PATH_MAX];
	if (!icon[0] || strstr(icon, ".."))
		return 0;
	for (size_t i = 0; i < sizeof places / sizeof places[0] + 1; i++) {
		if (i == 0) {
			if (icon[0] != '/')
				continue;
			copy_value(path, sizeof path, icon);
		} else if (icon[0] == '/' || snprintf(path, sizeof path, places[i - 1], icon) >= (int)sizeof path)
			continue;
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			continue;
		struct stat st;
		ssize_t n = -1;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 8 && st.st_size <= MAX_ICON)
			n = read(fd, dst, MAX_ICON);
		close(fd);
		if (n > 8 && memcmp(dst, "\x89PNG\r\n\x1a\n", 8) == 0)
			return (size_t)n;
	}
	return 0;
}

static struct app apps_buf[MAX_APPS];

static void handle_apps(unsigned version, uint32_t id)
{
	static unsigned char icon[MAX_ICON];
	int count = apps_list(apps_buf, MAX_APPS);
	size_t icons = 0;
	msg_begin(version, T_APPS, id);
	for (int i = 0; i < count; i++) {
		const struct app *a = &apps_buf[i];
		size_t at = msg_open(1);
		msg_cstr(1, a->id, MAX_APP_ID);
		msg_cstr(2, a->name, MAX_APP_NAME);
		msg_cstr(3, a->exec, MAX_APP_EXEC);
		size_t n = app_icon(a->icon, icon);
		if (n > 0 && icons + n <= APPS_ICON_BUDGET) {
			msg_bytes(4, icon, n);
			icons += n;
		}
		msg_close(at);
	}
	msg_send();
}

/* In a child about to become a program of the guest's desktop: `sh -c command` on display :0, its
 * standard files /dev/null. Never returns. */
__attribute__((noreturn)) static void exec_on_display(const char *command)
{
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	setenv("DISPLAY", ":0", 1);
	execl("/bin/sh", "sh", "-c", command, (char *)NULL);
	_exit(127);
}

/* ------------------------------------------------------------------------ */
/* launch: an app's Exec, detached, with DISPLAY=:0; answered with its first window */

static pid_t spawn_detached(const char *exec)
{
	char command[MAX_APP_EXEC + 8];
	snprintf(command, sizeof command, "exec %s", exec);
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return -1;
	pid_t child = fork();
	if (child < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (child == 0) {
		child_reset();
		pid_t app = fork();
		if (app == 0)
			exec_on_display(command);
		if (write(fds[1], &app, sizeof app) < 0)
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	pid_t app = -1;
	while (read(fds[0], &app, sizeof app) < 0 && errno == EINTR) {
	}
	close(fds[0]);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
	}
	return app;
}

/* The app a launch names: its id, else its name (any case), else its command's first word. */
static const struct app *app_find(const struct app *apps, int count, const char *want)
{
	for (int i = 0; i < count; i++)
		if (strcmp(apps[i].id, want) == 0)
			return &apps[i];
	for (int i = 0; i < count; i++)
		if (strcasecmp(apps[i].name, want) == 0)
			return &apps[i];
	for (int i = 0; i < count; i++) {
		size_t n = strcspn(apps[i].exec, " \t");
		if (strlen(want) == n && strncmp(apps[i].exec, want, n) == 0)
			return &apps[i];
	}
	return NULL;
}

static void handle_launch(unsigned version, uint32_t id, const struct field *fields, int count)
{
	char want[MAX_APP_NAME + 1];
	const struct field *f = find_field(fields, count, 1);
	if (!f || f->len == 0 || f->len >= sizeof want || memchr(f->value, 0, f->len)) {
		send_error(version, id, "malformed launch request");
		return;
	}
	memcpy(want, f->value, f->len);
	want[f->len] = 0;
	if (x_fd < 0) {
		send_error(version, id, "the guest has no X display (:0) to show an app on");
		return;
	}
	struct launch *l = NULL;
	for (int i = 0; i < MAX_LAUNCHES; i++)
		if (!launches[i].used) {
			l = &launches[i];
			break;
		}
	if (!l) {
		send_error(version, id, "too many launches waiting for their window (8); try again soon");
		return;
	}
	int n = apps_list(apps_buf, MAX_APPS);
	const struct app *a = app_find(apps_buf, n, want);
	if (!a) {
		char message[MAX_APP_NAME + 96];
		snprintf(message, sizeof message, "no app named \"%s\" in " APPS_DIR, want);
		send_error(version, id, message);
		return;
	}
	pid_t pid = spawn_detached(a->exec);
	if (pid <= 0) {
		send_error(version, id, "cannot start a process in the guest (fork failed)");
		return;
	}
	memset(l, 0, sizeof *l);
	l->used = 1;
	l->id = id;
	l->version = version;
	l->pid = pid;
	if (a->wmclass[0])
		copy_value(l->match, sizeof l->match, a->wmclass);
	else {
		size_t w = strcspn(a->exec, " \t");
		const char *base = a->exec;
		for (size_t i = 0; i < w; i++)
			if (a->exec[i] == '/')
				base = a->exec + i + 1;
		size_t len = (size_t)(a->exec + w - base);
		if (len >= sizeof l->match)
			len = sizeof l->match - 1;
		memcpy(l->match, base, len);
	}
	l->deadline = now_ms() + X_LAUNCH_MS;
	for (int i = 0; i < n_xwins; i++)
		l->known[l->n_known++] = xwins[i].id;
	if (verbose)
		logmsg("launched %s (pid %ld)", a->exec, (long)pid);
}

/* Answers each launch whose window has appeared: the new client with its pid, else its class, else any. */
static void launches_check(void)
{
	uint64_t now = now_ms();
	for (int i = 0; i < MAX_LAUNCHES; i++) {
		struct launch *l = &launches[i];
		if (!l->used)
			continue;
		const struct xwin *best = NULL;
		int best_score = 0;
		for (int k = 0; k < n_xwins; k++) {
			const struct xwin *w = &xwins[k];
			if (w->early || x_known(l->known, l->n_known, w->id))
				continue; /* an early window is answered once the scan has its pid and class */
			int score = 1;
			if (w->pid && (pid_t)w->pid == l->pid)
				score = 3;
			else if (w->class_len && strlen(l->match) == w->class_len && strncasecmp(l->match, (const char *)w->cls, w->class_len) == 0)
				score = 2;
			if (score > best_score) {
				best = w;
				best_score = score;
			}
		}
		if (best) {
			msg_begin(l->version, T_LAUNCHED, l->id);
			msg_u32(1, best->id);
			msg_u32(2, (uint32_t)l->pid);
			msg_send();
			l->used = 0;
		} else if (now >= l->deadline || x_fd < 0) {
			char message[MAX_APP_ID + 96];
			snprintf(message, sizeof message, "%s started (pid %ld) but showed no window within %d s", l->match, (long)l->pid, X_LAUNCH_MS / 1000);
			send_error(l->version, l->id, message);
			l->used = 0;
		}
	}
}

static uint64_t launches_deadline(void)
{
	uint64_t wake = UINT64_MAX;
	for (int i = 0; i < MAX_LAUNCHES; i++)
		if (launches[i].used && launches[i].deadline < wake)
			wake = launches[i].deadline;
	return wake;
}

/* ------------------------------------------------------------------------ */
/* one received message */

/* ------------------------------------------------------------------------ */
/* window actions: the host moves, resizes, raises or closes a listed window (EWMH 1.5) */

#define WA_MOVE 0
#define WA_RESIZE 1
#define WA_RAISE 2
#define WA_CLOSE 3
#define X_SUBSTRUCTURE_REDIRECT 0x100000u
#define X_NORTH_WEST_GRAVITY 1

/* An i32 field in [-32768, 32767]; 0 and *ok = 0 when absent or out of range. */
static int32_t field_coord(const struct field *fields, int count, unsigned tag, int *ok)
{
	const struct field *f = find_field(fields, count, tag);
	if (!f || f->len != 4) {
		*ok = 0;
		return 0;
	}
	int32_t v = (int32_t)get_le32(f->value);
	if (v < -32768 || v > 32767)
		*ok = 0;
	return v;
}

/* A ClientMessage of format 32 to the root, as EWMH asks clients to send their requests. */
static int x_root_message(uint32_t window, const char *type, const uint32_t data[5])
{
	uint32_t atom;
	if (x_intern(type, &atom) < 0)
		return -1;
	unsigned char req[44];
	memset(req, 0, sizeof req);
	req[0] = 25; /* SendEvent, propagate false */
	put_le16(req + 2, 11);
	put_le32(req + 4, x_root);
	put_le32(req + 8, X_SUBSTRUCTURE_REDIRECT | X_SUBSTRUCTURE_NOTIFY);
	unsigned char *e = req + 12;
	e[0] = 33; /* ClientMessage */
	e[1] = 32; /* format */
	put_le32(e + 4, window);
	put_le32(e + 8, atom);
	for (int i = 0; i < 5; i++)
		put_le32(e + 12 + 4 * i, data[i]);
	return x_write(req, sizeof req);
}

/* ConfigureWindow of the client's width and height (protocol, ConfigureWindow). */
static int x_configure_size(uint32_t window, uint32_t width, uint32_t height)
{
	unsigned char req[20];
	memset(req, 0, sizeof req);
	req[0] = 12; /* ConfigureWindow */
	put_le16(req + 2, 5);
	put_le32(req + 4, window);
	put_le16(req + 8, 4 | 8); /* width, height */
	put_le32(req + 12, width);
	put_le32(req + 16, height);
	return x_write(req, sizeof req);
}

static void handle_window_action(unsigned version, uint32_t id, const struct field *fields, int count)
{
	int ok = 1;
	uint32_t window = field_u32(fields, count, 1, 1, UINT32_MAX, &ok);
	uint32_t action = field_u32(fields, count, 2, WA_MOVE, WA_CLOSE, &ok);
	if (!ok) {
		send_error(version, id, "malformed windowAction request");
		return;
	}
	if (x_fd < 0) {
		send_error(version, id, "the guest has no X display (:0)");
		return;
	}
	const struct xwin *w = NULL;
	for (int i = 0; i < n_xwins; i++)
		if (xwins[i].id == window)
			w = &xwins[i];
	if (!w) {
		send_error(version, id, "no such window in the guest's list");
		return;
	}
	uint32_t data[5] = {0, 0, 0, 0, 0};
	const char *type = NULL;
	switch (action) {
	case WA_MOVE: {
		int32_t x = field_coord(fields, count, 3, &ok), y = field_coord(fields, count, 4, &ok);
		if (!ok) {
			send_error(version, id, "malformed windowAction move (x, y)");
			return;
		}
		/*
		 * North-west gravity places the frame's corner; the host names the content's. The size
		 * goes too, as it is: fluxbox takes its frame's size for a size not given, and the
		 * window would grow by its title bar at each move.
		 */
		data[0] = X_NORTH_WEST_GRAVITY | 0xfu << 8 | (uint32_t)X_SOURCE_PAGER << 12;
		data[1] = (uint32_t)(x - (w->x - w->fx));
		data[2] = (uint32_t)(y - (w->y - w->fy));
		data[3] = w->w;
		data[4] = w->h;
		type = "_NET_MOVERESIZE_WINDOW";
		break;
	}
	case WA_RESIZE: {
		uint32_t width = field_u32(fields, count, 5, 1, 65535, &ok), height = field_u32(fields, count, 6, 1, 65535, &ok);
		if (!ok) {
			send_error(version, id, "malformed windowAction resize (width, height)");
			return;
		}
		/* As the app itself would: the window manager gets it as a ConfigureRequest (ICCCM 4.1.5). */
		if (x_configure_size(window, width, height) < 0) {
			send_error(version, id, "the X display went away");
			return;
		}
		msg_begin(version, T_PONG, id);
		msg_send();
		return;
	}
	case WA_RAISE:
		data[0] = X_SOURCE_PAGER; /* then the timestamp 0 (CurrentTime), no active window of ours */
		type = "_NET_ACTIVE_WINDOW";
		if (x_regroup_until != 0)
			x_regroup_focus = window; /* a restarting window manager may miss it: asked again after */
		break;
	default:
		data[1] = X_SOURCE_PAGER; /* the timestamp 0 first */
		type = "_NET_CLOSE_WINDOW";
		break;
	}
	if (x_root_message(window, type, data) < 0) {
		send_error(version, id, "the X display went away");
		return;
	}
	if (verbose)
		logmsg("window 0x%x: %s", (unsigned)window, type);
	msg_begin(version, T_PONG, id);
	msg_send();
}

/* display size: the host asks for a screen size, xrandr sets it (RandR on the bochs DRM output) */

#define DISPLAY_MIN_W 640
#define DISPLAY_MIN_H 480
#define DISPLAY_MAX_W 1920
#define DISPLAY_MAX_H 1200
/* v86's VGA memory (8 MiB) at 32 bits a pixel. */
#define DISPLAY_MAX_PIXELS (8u * 1024 * 1024 / 4)

/*
 * The X screen's size once X has run (the framebuffer device keeps its boot size); 0 before.
 * Kept while the agent reconnects (a mode change can keep the server busy past X_TIMEOUT_MS).
 */
static int x_screen_size(unsigned *w, unsigned *h)
{
	if (x_root_w == 0 || x_root_h == 0)
		return 0;
	*w = x_root_w;
	*h = x_root_h;
	return 1;
}

/* The root window's ConfigureNotify: the screen changed size (RandR); the host hears it at once. */
static void x_root_resized(unsigned w, unsigned h)
{
	if (w == 0 || h == 0)
		return;
	if (x_root_w != 0 && (w != x_root_w || h != x_root_h))
		x_regroup_start();
	x_root_w = w;
	x_root_h = h;
	check_display();
}

/* Clamps a requested size to what the guest's VGA shows: within the bounds above, width a multiple of 8. */
static void display_clamp(unsigned *w, unsigned *h)
{
	if (*w < DISPLAY_MIN_W)
		*w = DISPLAY_MIN_W;
	if (*w > DISPLAY_MAX_W)
		*w = DISPLAY_MAX_W;
	*w &= ~7u;
	if (*h < DISPLAY_MIN_H)
		*h = DISPLAY_MIN_H;
	if (*h > DISPLAY_MAX_H)
		*h = DISPLAY_MAX_H;
	if (*w * *h > DISPLAY_MAX_PIXELS)
		*h = DISPLAY_MAX_PIXELS / *w;
}

/*
 * A 60 Hz mode line for w x h with the VESA Coordinated Video Timings (CVT 1.1, standard
 * blanking): clock in MHz, then the horizontal and vertical timings, as xrandr --newmode takes
 * them. 1024x768 gives 63.50 1024 1072 1176 1328 768 771 775 798.
 */
static void display_modeline(unsigned w, unsigned h, char *dst, size_t cap)
{
	const double min_vsync_bp = 550.0, c_prime = 30.0, m_prime = 300.0, clock_step = 0.25;
	const unsigned cell = 8, v_porch = 3, min_v_bporch = 6;
	unsigned hp = w / cell * cell;
	unsigned vsync = w * 3 == h * 4 ? 4 : w * 9 == h * 16 ? 5 : w * 10 == h * 16 ? 6 : (w * 4 == h * 5 || w * 9 == h * 15) ? 7 : 10;
	double h_period = (1000000.0 / 60.0 - min_vsync_bp) / (h + v_porch);
	unsigned vsync_bp = (unsigned)(min_vsync_bp / h_period) + 1;
	if (vsync_bp < vsync + min_v_bporch)
		vsync_bp = vsync + min_v_bporch;
	unsigned v_total = h + vsync_bp + v_porch;
	double duty = c_prime - m_prime * h_period / 1000.0;
	if (duty < 20.0)
		duty = 20.0;
	unsigned h_blank = (unsigned)(hp * duty / (100.0 - duty) / (2 * cell)) * 2 * cell;
	unsigned h_total = hp + h_blank;
	double clock = clock_step * (double)(unsigned)(h_total / h_period / clock_step);
	unsigned h_sync = (unsigned)(0.08 * h_total / cell) * cell;
	unsigned h_sync_end = hp + h_blank / 2;
	snprintf(dst, cap, "%.2f %u %u %u %u %u %u %u %u -hsync +vsync", clock, hp, h_sync_end - h_sync, h_sync_end, h_total, h, h + v_porch,
		 h + v_porch + vsync, v_total);
}

/*
 * xrandr with --current: the server's outputs as it has them, not probed again (the emulated
 * VGA's one output never changes; the server is busy enough with the change itself). Then
 * xrefresh: the server's new framebuffer starts black and it exposes nothing that was on the
 * screen, so the desktop and every window not redrawn on their own would stay black; xrefresh
 * maps a window over the whole screen and takes it away, and each is drawn again.
 * One size change at a time: each is a few xrandr runs (a new size needs a mode made first), and
 * two at once could end in either order, the older size last. A request that comes while one
 * runs waits, and only the newest waits; a run that takes over DISPLAY_RUN_MS is killed and,
 * unless a newer size waits, tried again (DISPLAY_TRIES in all): the page asks a size once.
 */
#define DISPLAY_RUN_MS 30000
#define DISPLAY_TRIES 3
static pid_t display_pid;
static uint64_t display_deadline;
static unsigned display_w, display_h, display_tries; /* the size being set, and its runs so far */
static unsigned display_next_w, display_next_h; /* waiting; 0 when none */

/* Runs the size change's script with DISPLAY=:0 and no output; the screen's new size comes as ConfigureNotify. */
static void display_run(unsigned w, unsigned h)
{
	unsigned cur_w, cur_h;
	if (x_screen_size(&cur_w, &cur_h) && cur_w == w && cur_h == h)
		return;
	display_tries = display_w == w && display_h == h ? display_tries + 1 : 1;
	display_w = w;
	display_h = h;
	char modeline[160], script[768];
	display_modeline(w, h, modeline, sizeof modeline);
	snprintf(script, sizeof script,
		 "o=$(xrandr --current | awk '/ connected/ { print $1; exit }'); [ -n \"$o\" ] || exit 1; "
		 "to() { xrandr --current --output \"$o\" --mode \"$1\" && { xrefresh 2>/dev/null; true; }; }; "
		 "to %ux%u && exit 0; "
		 "xrandr --current --newmode um%ux%u %s 2>/dev/null; "
		 "xrandr --current --addmode \"$o\" um%ux%u; to um%ux%u",
		 w, h, w, h, modeline, w, h, w, h);
	if (verbose)
		logmsg("display size %ux%u: %s", w, h, modeline);
	pid_t child = fork();
	if (child < 0) {
		logmsg("cannot start xrandr: %s", strerror(errno));
		return;
	}
	if (child == 0) {
		child_reset();
		exec_on_display(script);
	}
	display_pid = child;
	display_deadline = now_ms() + DISPLAY_RUN_MS;
}

/* The size change under way ended (or ran too long): the one waiting, if any, runs. */
static void display_reap(uint64_t now)
{
	if (display_pid <= 0)
		return;
	if (waitpid(display_pid, NULL, WNOHANG) != display_pid) {
		if (now < display_deadline)
			return;
		logmsg("xrandr did not finish within %d ms; stopped", DISPLAY_RUN_MS);
		kill(-display_pid, SIGKILL);
		while (waitpid(display_pid, NULL, 0) < 0 && errno == EINTR) {
		}
		if (!display_next_w && display_tries < DISPLAY_TRIES) {
			display_next_w = display_w;
			display_next_h = display_h;
		}
	} else {
		display_w = display_h = 0; /* done: the same size asked again later is a first try */
	}
	display_pid = 0;
}

/* The size waiting runs once none runs and X is there (it may be reconnecting, busy after the last change). */
static void display_pump(void)
{
	if (display_pid > 0 || !display_next_w || x_fd < 0)
		return;
	unsigned w = display_next_w, h = display_next_h;
	display_next_w = display_next_h = 0;
	display_run(w, h);
}

/* setDisplay (16): width (1) and height (2), clamped; the mode is the output's own, else one made here. */
static void handle_set_display(const struct field *fields, int count)
{
	int ok = 1;
	unsigned w = field_u32(fields, count, 1, 1, 65535, &ok);
	unsigned h = field_u32(fields, count, 2, 1, 65535, &ok);
	if (!ok || !find_field(fields, count, 1) || !find_field(fields, count, 2)) {
		logmsg("ignoring a malformed display size request");
		return;
	}
	if (x_fd < 0 && x_root_w == 0) {
		logmsg("ignoring a display size request: X is not running");
		return;
	}
	display_clamp(&w, &h);
	if (display_pid > 0 || x_fd < 0) {
		display_next_w = w;
		display_next_h = h;
		return;
	}
	display_run(w, h);
}

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
	host_png = 0;
	for (int i = 0; i < count; i++)
		if (fields[i].tag == 10 && fields[i].len == 13 && memcmp(fields[i].value, "clipboard.png", 13) == 0)
			host_png = 1;
	disp_w = 0; /* report the display to this host */
	check_display();
	win_sent_valid = 0; /* and the windows */
	if (x_fd >= 0)
		x_scan();
}

/* The host's clipboard: text (field 1) for the file and X, or a PNG (fields 2 and 3) for X. */
static void handle_clipboard(const struct field *fields, int count)
{
	const struct field *text = find_field(fields, count, 1);
	const struct field *mime = find_field(fields, count, 2);
	const struct field *data = find_field(fields, count, 3);
	if (mime && mime->len == strlen(MIME_PNG) && memcmp(mime->value, MIME_PNG, mime->len) == 0) {
		if (!data || data->len > MAX_CLIP_IMAGE || data->len < 8 || memcmp(data->value, "\x89PNG\r\n\x1a\n", 8) != 0) {
			logmsg("ignoring a clipboard image that is not a PNG of at most %d bytes", MAX_CLIP_IMAGE);
			return;
		}
		if (x_fd < 0)
			logmsg("a clipboard image arrived, but there is no X display to hold it");
		xclip_take(2, data->value, data->len);
		return;
	}
	if (mime && !(mime->len == strlen(MIME_TEXT) && memcmp(mime->value, MIME_TEXT, mime->len) == 0)) {
		logmsg("ignoring a clipboard of an unknown type");
		return;
	}
	if (!text || text->len > MAX_CLIPBOARD) {
		logmsg("ignoring a malformed clipboard message");
		return;
	}
	clip_set(text->value, text->len);
	xclip_take(1, text->value, text->len);
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
	case T_CLIPBOARD:
		handle_clipboard(fields, count);
		break;
	case T_SET_TIME:
		handle_set_time(fields, count);
		break;
	case T_APPS_REQUEST:
		if (id != 0)
			handle_apps(version, id);
		break;
	case T_LAUNCH:
		if (id != 0)
			handle_launch(version, id, fields, count);
		break;
	case T_WINDOW_ACTION:
		if (id != 0)
			handle_window_action(version, id, fields, count);
		break;
	case T_SET_DISPLAY:
		handle_set_display(fields, count);
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
		struct pollfd pfd[3 + MAX_JOBS];
		int slot[3 + MAX_JOBS];
		int nfds = 0;
		pfd[nfds].fd = port_fd;
		pfd[nfds++].events = POLLIN;
		pfd[nfds].fd = sigchld_pipe[0];
		pfd[nfds++].events = POLLIN;
		/* Slot 2 is the X connection; -1 (ignored by poll) while there is none. */
		pfd[nfds].fd = x_fd;
		pfd[nfds++].events = POLLIN;
		uint64_t now = now_ms();
		uint64_t wake = next_tick;
		if (x_fd < 0 && x_retry_at < wake)
			wake = x_retry_at;
		if (x_fd < 0 && x_lost_at && x_lost_at + X_LOST_MS < wake)
			wake = x_lost_at + X_LOST_MS;
		if (x_scan_at && x_scan_at < wake)
			wake = x_scan_at;
		if (launches_deadline() < wake)
			wake = launches_deadline();
		if (xclip_wake() < wake)
			wake = xclip_wake();
		if (display_pid > 0 && display_deadline < wake)
			wake = display_deadline;
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
			for (int k = 3; k < nfds; k++)
				if (pfd[k].revents)
					job_read(&jobs[slot[k]]);
			if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
				read_port();
			if (pfd[2].revents && x_fd >= 0 && pfd[2].fd == x_fd)
				x_pump();
		}
		jobs_reap();
		now = now_ms();
		display_reap(now);
		display_pump();
		jobs_check_deadlines(now);
		for (int i = 0; i < MAX_JOBS; i++)
			if (jobs[i].used && jobs[i].exited)
				job_finish(&jobs[i]);
		if (x_fd < 0 && now >= x_retry_at)
			x_connect();
		x_lost_check(now_ms());
		if (x_fd >= 0 && x_scan_at && now_ms() >= x_scan_at)
			x_scan();
		if (launches_deadline() <= now_ms())
			launches_check();
		xclip_process();
		if (now >= next_tick) {
			check_clipboard();
			check_display();
			next_tick = now + TICK_MS;
		}
	}
}
