/* relay-fetch's progress line (fetch-progress.h). */
#include <stdio.h>
#include <unistd.h>

#include "base/prog.h"
#include "base/text.h"
#include "fetch-progress.h"

static int shown;	/* a progress line is on the terminal */

/* Whether the line is shown: not over bodies written to the terminal. */
int
progress_on(void)
{
	static int tty = -1;

	if (tty == -1)
		tty = isatty(STDERR_FILENO) && !isatty(STDOUT_FILENO);
	return tty;
}

void
progress_show(const struct progress *p)
{
	static long long last_ms;
	long long now = prog_now_ms();
	char total[16], rate[16];

	if (!progress_on() || now - last_ms < 100)
		return;
	last_ms = now;
	fprintf(stderr, "\r\033[Krelay-fetch: %lld/%lld%s done, %lld failed, "
	    "%s, %s/s", p->done, p->started, p->more ? "+" : "", p->failed,
	    text_size(p->bytes, total, sizeof total),
	    text_size(p->bytes * 1000 / (now - p->start_ms + 1), rate,
	    sizeof rate));
	shown = 1;
}

/* Erases the line so that a message starts on a clean line. */
void
progress_clear(void)
{
	if (shown)
		fputs("\r\033[K", stderr);
	shown = 0;
}
