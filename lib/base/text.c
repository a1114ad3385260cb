/*
 * Text for people: the columns a UTF-8 string takes on a terminal,
 * cutting it to fit, folding case and accents for searching, and how
 * far apart two words are, for suggestions; text from elsewhere made
 * safe to print.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/text.h"
#include "base/utf8.h"

static int
is_continuation(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/*
 * Columns on a terminal: one per code point. Menus are Latin script;
 * wide (East Asian) and combining characters are not told apart.
 */
size_t
text_width(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += !is_continuation((unsigned char)*s);
	return n;
}

/* The bytes of s's longest prefix of at most width columns. */
size_t
text_fit(const char *s, size_t width)
{
	size_t i = 0, cols = 0;

	while (s[i] != '\0') {
		if (!is_continuation((unsigned char)s[i]) && cols++ == width)
			break;
		i++;
	}
	return i;
}

/* The base letter of a Latin-1 letter (U+00C0 to U+00FF), or 0. */
static char
latin1_base(unsigned cp)
{
	static const char base[] =
	    "aaaaaaaceeeeiiii" "dnooooo*ouuuuyts"	/* U+00C0 to U+00DF */
	    "aaaaaaaceeeeiiii" "dnooooo/ouuuuyty";	/* U+00E0 to U+00FF */

	return cp >= 0xC0 && cp <= 0xFF ? base[cp - 0xC0] : 0;
}

/* Decodes one code point of valid UTF-8 at *p, advancing it. */
static unsigned
next_code_point(const unsigned char **p)
{
	const unsigned char *s = *p;
	unsigned cp = *s++;
	int more = cp >= 0xF0 ? 3 : cp >= 0xE0 ? 2 : cp >= 0xC0 ? 1 : 0;

	if (more > 0)
		cp &= 0x3F >> more;
	while (more-- > 0 && is_continuation(*s))
		cp = cp << 6 | (*s++ & 0x3F);
	*p = s;
	return cp;
}

/*
 * s in lower case without accents, for comparing as people do:
 * "Räfven" and "RAFVEN" fold to the same "rafven". Other characters
 * are kept as they are.
 */
char *
text_fold(const char *s)
{
	struct buf out = BUF_INIT;
	const unsigned char *p = (const unsigned char *)s, *start;
	unsigned cp;
	char base;

	while (*p != '\0') {
		start = p;
		cp = next_code_point(&p);
		if (cp < 0x80)
			buf_addc(&out, (char)(cp >= 'A' && cp <= 'Z' ?
			    cp + 32 : cp));
		else if ((base = latin1_base(cp)) != 0 && base != '*' &&
		    base != '/')
			buf_addc(&out, base);
		else
			buf_add(&out, start, (size_t)(p - start));
	}
	return buf_take(&out);
}

/* Levenshtein distance in bytes; for short words such as identifiers. */
size_t
text_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, *row, prev, cur;

	row = xcalloc(lb + 1, sizeof *row);
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			cur = row[j];
			row[j] = prev + (a[i - 1] != b[j - 1]);
			if (row[j] > row[j - 1] + 1)
				row[j] = row[j - 1] + 1;
			if (row[j] > cur + 1)
				row[j] = cur + 1;
			prev = cur;
		}
	}
	cur = row[lb];
	free(row);
	return cur;
}

/*
 * Text from elsewhere made safe to print for a person: no control
 * character reaches the terminal (ANSI and OSC sequences, BEL, C1
 * controls), nor bytes that are not UTF-8. They are shown escaped,
 * \t \n \r as such and the others as \xHH (\u00HH for C1). With tsv,
 * a backslash is doubled too, so that a field can never split into
 * false columns or rows and every escape reads back one way.
 */
char *
text_printable(const char *in, int tsv)
{
	return text_printable_n(in, strlen(in), tsv);
}

/* text_printable of len bytes, which may hold a NUL (shown \x00). */
char *
text_printable_n(const char *in, size_t len, int tsv)
{
	const unsigned char *s = (const unsigned char *)in;
	const unsigned char *end = s + len;
	struct buf out = BUF_INIT;
	size_t n;

	buf_cstr(&out);
	while (s < end) {
		n = utf8_sequence(s, (size_t)(end - s));
		if (n == 1 && *s == '\t')
			buf_adds(&out, "\\t");
		else if (n == 1 && *s == '\n')
			buf_adds(&out, "\\n");
		else if (n == 1 && *s == '\r')
			buf_adds(&out, "\\r");
		else if (n == 1 && *s == '\\' && tsv)
			buf_adds(&out, "\\\\");
		else if (n == 0 || (n == 1 && (*s < 0x20 || *s == 0x7F)))
			buf_printf(&out, "\\x%02X", *s);
		else if (n == 2 && s[0] == 0xC2 && s[1] < 0xA0)
			buf_printf(&out, "\\u%04X", s[1]);
		else
			buf_add(&out, s, n);
		s += n > 0 ? n : 1;
	}
	return buf_take(&out);
}

/*
 * Bytes as ls -h shows them, into out: "512", "1.5K", "20M"; a tenth
 * below ten of a unit, whole units above.
 */
const char *
text_size(long long n, char *out, size_t len)
{
	static const char units[] = "KMGTP";
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(out, len, "%lld", n);
		return out;
	}
	while (v >= 1024 && u < 4)
		v /= 1024, u++;
	snprintf(out, len, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
	return out;
}

/*
 * Seconds in the largest unit that keeps two digits' worth: seconds
 * below two minutes, minutes below two hours, hours below two days,
 * then days. A negative age is "-".
 */
const char *
text_age(long long secs, enum text_age_style style, char *out, size_t len)
{
	static const char *const unit[2][4] = {
		{ "s", "m", "h", "d" }, { " s", " min", " h", " days" },
	};
	static const long long per[] = { 1, 60, 3600, 86400 };
	int u = secs < 120 ? 0 : secs < 7200 ? 1 : secs < 172800 ? 2 : 3;

	if (secs < 0) {
		snprintf(out, len, "-");
		return out;
	}
	snprintf(out, len, "%lld%s", secs / per[u], unit[style][u]);
	return out;
}
