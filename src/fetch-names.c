/* relay-fetch's -o file names (fetch-names.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/prog.h"
#include "fetch-names.h"

/* The last segment of the URL's path, safe as a file name. */
static void
add_url_file(struct buf *name, const char *url)
{
	const char *path = strstr(url, "://"), *end, *p;

	path = path != NULL ? strchr(path + 3, '/') : NULL;
	if (path == NULL || (end = path + strcspn(path, "?#")) == path + 1) {
		buf_adds(name, "index");
		return;
	}
	for (p = end; p > path && p[-1] != '/'; p--)
		;
	if (p == end || (end - p == 2 && p[0] == '.' && p[1] == '.'))
		buf_adds(name, "index");
	else
		buf_add(name, p, (size_t)(end - p));
}

/* -o's template: a name, its escapes known ones; else a usage error. */
void
check_template(const char *t)
{
	const char *p;

	if (*t == '\0')
		prog_errx(EXIT_USAGE, "-o needs a file name");
	for (p = t; (p = strchr(p, '%')) != NULL; p += 2)
		if (p[1] == '\0' || strchr("nf%", p[1]) == NULL)
			prog_errx(EXIT_USAGE,
			    "bad -o '%s': %% is followed by %s%.1s, "
			    "not n, f or %%", t, p[1] ? "" : "nothing", p + 1);
}

/* -o: %n is the URL's number in the input, %f its file name, %% a %. */
char *
output_name(const char *template, long long seq, const char *url)
{
	struct buf name = BUF_INIT;
	const char *p;

	for (p = template; *p != '\0'; p++) {
		if (*p != '%' || p[1] == '\0') {
			buf_addc(&name, *p);
			continue;
		}
		switch (*++p) {
		case 'n':
			buf_printf(&name, "%lld", seq);
			break;
		case 'f':
			add_url_file(&name, url);
			break;
		default:
			buf_addc(&name, *p);
		}
	}
	return buf_take(&name);
}

/* The names -o has given out, so that no URL overwrites another's file. */
struct claim {
	struct claim	*next;
	long long	 seq;
	char		 name[];
};
static struct claim *claims[4096];

/* Claims a file name for URL seq; returns the seq that has it already, or 0. */
long long
claim_name(const char *name, long long seq)
{
	unsigned long h = 5381;
	const char *p;
	struct claim *c, **slot;
	size_t len = strlen(name);

	for (p = name; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	slot = &claims[h % (sizeof claims / sizeof claims[0])];
	for (c = *slot; c != NULL; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c->seq;
	c = xmalloc(sizeof *c + len + 1);
	memcpy(c->name, name, len + 1);
	c->seq = seq;
	c->next = *slot;
	*slot = c;
	return 0;
}

/* --create-dirs: the directories a file name needs. */
void
make_parents(const char *name)
{
	char *path = xstrdup(name), *p;

	for (p = strchr(path + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		mkdir(path, 0777);	/* one that fails shows at fopen */
		*p = '/';
	}
	free(path);
}
