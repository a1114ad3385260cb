/*
 * relay-merge: combines JSON documents, or the records relay-fetch
 * writes, into one output with a jq program (libjq). The program runs
 * once; positional inputs come to it through `inputs`, named ones as
 * $name.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jq.h>

#include "base/buf.h"
#include "base/jqprog.h"
#include "base/prog.h"
#include "base/text.h"

#define EXIT_FAILED 5	/* the program failed at run time, as in jq */

enum on_error { ON_ERROR_FAIL, ON_ERROR_PARTIAL };

static int compact;			/* -c */
static int raw;				/* -r */
static enum on_error on_error;		/* --on-error */
static struct jq_bounds bounds = JQ_BOUNDS_DEFAULT;	/* --program-… */

static const char usage_text[] =
    "usage: relay-merge [-c] [-r] [--on-error fail|partial]"
    " [--input name=file]...\n"
    "           [--arg name value]... [--program-timeout time]\n"
    "           [--program-max-memory size] program [file ...]\n";

static const char help_text[] =
    "\nRuns a jq program over JSON documents and relay records: the"
    " values of the\nfiles (standard input when none) are its inputs.\n\n"
    "  -c, --compact-output            one line per result\n"
    "  -r, --raw-output                strings without quotes\n"
    "      --on-error fail|partial     a failed record stops it (fail),"
    " or is null\n"
    "                                  and named in $incomplete (partial)\n"
    "      --input NAME=FILE           FILE's value (or array of values)"
    " as $NAME\n"
    "      --arg NAME VALUE            the string VALUE as $NAME\n"
    "      --program-timeout TIME      stop the program after TIME (2s)\n"
    "      --program-max-memory SIZE   stop it if it needs more (256M)\n"
    "  -h, --help                      this text\n"
    "      --version                   the version\n"
    "\nSee relay-merge(1).\n";

static void
usage(void)
{
	fputs(usage_text, stderr);
	exit(EXIT_USAGE);
}

/* One value read, and where it came from, for messages. */
struct value {
	jv		 v;
	char		*from;		/* "file", or "file: URL" for records */
	const char	*url;		/* a record's, to sort by */
	size_t		 seq;		/* the order it was read in */
};

struct values {
	struct value	*items;
	size_t		 len, cap;
	size_t		 next;		/* the next one `inputs` gives */
};

static struct values positional;
static jv named;			/* name -> value, for $name */
static jv incomplete;			/* names of failed inputs */
static const char *current = "no input";	/* what `inputs` gave last */

/* A relay record: an object with url, status and source. */
static int
is_record(jv v)
{
	jv url, status;
	int yes;

	if (jv_get_kind(v) != JV_KIND_OBJECT)
		return 0;
	url = jv_object_get(jv_copy(v), jv_string("url"));
	status = jv_object_get(jv_copy(v), jv_string("status"));
	yes = jv_get_kind(url) == JV_KIND_STRING &&
	    jv_get_kind(status) == JV_KIND_NUMBER;
	jv_free(url);
	jv_free(status);
	return yes;
}

/* Why a record failed: its error, or its status if not 2xx; or NULL. */
static char *
record_failure(jv v)
{
	jv error = jv_object_get(jv_copy(v), jv_string("error"));
	jv status = jv_object_get(jv_copy(v), jv_string("status"));
	struct buf why = BUF_INIT;
	double s = jv_get_kind(status) == JV_KIND_NUMBER ?
	    jv_number_value(status) : 0;

	if (jv_get_kind(error) == JV_KIND_STRING)
		buf_adds(&why, jv_string_value(error));
	else if (s < 200 || s >= 300)
		buf_printf(&why, "HTTP status %.0f", s);
	jv_free(error);
	jv_free(status);
	return why.len > 0 ? buf_take(&why) : NULL;
}

static void
add_value(struct values *vs, jv v, const char *file)
{
	struct value *it;
	struct buf from = BUF_INIT;
	jv url;

	if (vs->len == vs->cap) {
		vs->cap = vs->cap ? vs->cap * 2 : 16;
		vs->items = xrealloc(vs->items, vs->cap * sizeof *vs->items);
	}
	it = &vs->items[vs->len];
	it->seq = vs->len++;
	it->v = v;
	it->url = NULL;
	buf_adds(&from, file);
	if (is_record(v)) {
		url = jv_object_get(jv_copy(v), jv_string("url"));
		it->url = jv_string_value(url);	/* v holds it */
		buf_printf(&from, ": %s", it->url);
		jv_free(url);
	}
	it->from = buf_take(&from);
}

/* Reads every JSON value of a file ("-": standard input). */
static void
read_file(const char *file, struct values *vs)
{
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	jv_parser *p = jv_parser_new(0);
	char buf[65536];
	size_t n;
	jv v;

	if (f == NULL)
		prog_err(EX_NOINPUT, "cannot open '%s'", file);
	do {
		n = fread(buf, 1, sizeof buf, f);
		/* Partial while more may come: a value may span reads. */
		jv_parser_set_buf(p, buf, (int)n, n > 0);
		while (jv_is_valid(v = jv_parser_next(p)))
			add_value(vs, v, file);
		if (jv_invalid_has_msg(jv_copy(v))) {
			jv msg = jv_invalid_get_msg(v);

			prog_errx(EX_DATAERR, "'%s': %s", file,
			    jv_string_value(msg));
		}
		jv_free(v);
	} while (n > 0);
	if (ferror(f))
		prog_err(EX_NOINPUT, "cannot read '%s'", file);
	if (f != stdin)
		fclose(f);
	jv_parser_free(p);
}

/*
 * A failed record: with --on-error fail, the end; with partial, null
 * in its place, and its name noted for $incomplete.
 */
static jv
checked(jv v, const char *name, const char *from)
{
	char *why;

	if (!is_record(v) || (why = record_failure(v)) == NULL)
		return v;
	if (on_error == ON_ERROR_FAIL)
		prog_errx(EXIT_PARTIAL, "%s (%s): %s", name, from, why);
	prog_warnx("incomplete: %s (%s): %s", name, from, why);
	incomplete = jv_array_append(incomplete, jv_string(name));
	free(why);
	jv_free(v);
	return jv_null();
}

/* A jq variable name: letters, digits and _, not first a digit. */
static void
check_name(const char *name, const char *opt)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++)
		if (!(name[i] == '_' || (name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') || (i > 0 &&
		    name[i] >= '0' && name[i] <= '9')))
			break;
	if (name[0] >= '0' && name[0] <= '9')
		prog_errx(EXIT_USAGE,
		    "bad %s name '%s': a jq variable name cannot "
		    "start with a digit", opt, name);
	if (i == 0 || name[i] != '\0')
		prog_errx(EXIT_USAGE, "bad %s name '%s': letters, digits and _ "
		    "only", opt, name);
}

/* --input name=file: the file's one value, or an array of several. */
static void
add_named(const char *spec)
{
	const char *eq = strchr(spec, '=');
	struct values vs = { 0 };
	char *name;
	jv v;
	size_t i;

	if (eq == NULL || eq == spec)
		prog_errx(EXIT_USAGE, "bad --input '%s': expected name=file",
		    spec);
	name = xstrndup(spec, (size_t)(eq - spec));
	check_name(name, "--input");
	read_file(eq + 1, &vs);
	if (vs.len == 1) {
		v = checked(vs.items[0].v, name, vs.items[0].from);
	} else {
		v = jv_array();
		for (i = 0; i < vs.len; i++)
			v = jv_array_append(v, checked(vs.items[i].v, name,
			    vs.items[i].from));
	}
	for (i = 0; i < vs.len; i++)
		free(vs.items[i].from);
	free(vs.items);
	named = jv_object_set(named, jv_string(name), v);
	free(name);
}

/*
 * Records sort by URL, so that the output does not depend on the order
 * in which concurrent fetches finished; documents keep theirs.
 */
static int
by_url(const void *a, const void *b)
{
	const struct value *x = a, *y = b;
	int c = 0;

	if (x->url != NULL && y->url != NULL)
		c = strcmp(x->url, y->url);
	else if (x->url != NULL || y->url != NULL)
		c = x->url != NULL ? 1 : -1;
	return c != 0 ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* jq's `inputs`: the positional values in turn. */
static jv
next_input(jq_state *jq, void *ctx)
{
	struct values *vs = ctx;
	struct value *it;
	jv v;

	(void)jq;
	if (vs->next == vs->len)
		return jv_invalid();
	it = &vs->items[vs->next++];
	current = it->from;
	v = it->v;
	it->v = jv_null();
	return v;
}

/* In the child: an output as -c, -r or the default write it. */
static jv
output_text(jv out, void *ctx)
{
	(void)ctx;
	if (raw && jv_get_kind(out) == JV_KIND_STRING)
		return out;
	return jv_dump_string(out, compact ? 0 :
	    JV_PRINT_PRETTY | JV_PRINT_SPACE1);
}

/* In the child: the run's error, with the input it was working on. */
static jv
error_text(jv msg, void *ctx)
{
	jv text = jv_string_fmt("error at %s: %s", current,
	    jv_string_value(msg));

	(void)ctx;
	jv_free(msg);
	return text;
}

/*
 * What the program writes to standard error (stderr, debug, halt_error's
 * message): as jq(1) writes it, but each line escaped as diagnostics are
 * (text_printable), so that no control character reaches a terminal.
 */
static void
put_stderr(const char *p, size_t n)
{
	const char *nl;
	char *safe;
	size_t k;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		k = nl != NULL ? (size_t)(nl - p) : n;
		safe = text_printable_n(p, k, 0);
		fputs(safe, stderr);
		free(safe);
		if (nl != NULL) {
			fputc('\n', stderr);
			k++;
		}
		p += k;
		n -= k;
	}
}

/* The exit status of a run that ended, and its message. */
static int
run_status(const struct jqrun *r)
{
	const char *msg;
	size_t len;
	int status;

	switch (jqrun_end(r)) {
	case JQRUN_DONE:
		return 0;
	case JQRUN_HALTED:
		msg = jqrun_halt(r, &status, &len);
		put_stderr(msg, len);
		return status;
	case JQRUN_FAILED:
		prog_warnx("%s", jqrun_why(r));
		return EXIT_FAILED;
	case JQRUN_TIMEOUT:
		prog_warnx("the program %s (--program-timeout)", jqrun_why(r));
		return EX_DATAERR;
	case JQRUN_MEMORY:
		prog_warnx("the program %s (--program-max-memory)", jqrun_why(r));
		return EX_DATAERR;
	default:
		prog_warnx("the program %s", jqrun_why(r));
		return EX_SOFTWARE;
	}
}

/*
 * Runs the program once, in a child bounded in time and memory, and
 * writes its outputs as they come, until standard output fails;
 * returns the exit status.
 */
static int
run(const char *program)
{
	static const struct jq_text text = { .value = output_text,
	    .error = error_text };
	struct jqprog p;
	struct jqrun *r;
	struct buf out = BUF_INIT;
	char *errors, *line, *next;
	int rc, status;

	named = jv_object_set(named, jv_string("incomplete"),
	    jv_copy(incomplete));
	if (jqprog_compile(&p, "", program, jv_copy(named)) < 0) {
		/* jq's messages point at the program text. */
		errors = buf_take(&p.errors);
		for (line = errors; line != NULL; line = next) {
			if ((next = strchr(line, '\n')) != NULL)
				*next++ = '\0';
			prog_warnx("%s", line);
		}
		free(errors);
		jqprog_free(&p);
		return EX_DATAERR;
	}
	jq_set_input_cb(p.jq, next_input, &positional);
	if ((r = jqrun_start(&p, jv_null(), &bounds, &text)) == NULL)
		prog_err(EX_OSERR, "cannot start the program");
	while (!ferror(stdout) && (rc = jqrun_next(r, &out)) >= 0) {
		if (rc == 0) {
			jqrun_wait(r);
		} else if (rc == JQRUN_STDERR) {
			put_stderr(out.data, out.len);
		} else {
			fwrite(out.data, 1, out.len, stdout);
			putchar('\n');
		}
	}
	/* with nowhere to write, it is stopped: prog_finish_stdout says so */
	status = ferror(stdout) ? 0 : run_status(r);
	jqrun_free(r);
	buf_free(&out);
	jqprog_free(&p);
	return status;
}

static const struct option long_options[] = {
	{ "arg", required_argument, NULL, 'A' },
	{ "compact-output", no_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	{ "input", required_argument, NULL, 'I' },
	{ "on-error", required_argument, NULL, 'E' },
	{ "program-max-memory", required_argument, NULL, 'M' },
	{ "program-timeout", required_argument, NULL, 'T' },
	{ "raw-output", no_argument, NULL, 'r' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* --on-error: fail or partial. */
static enum on_error
on_error_of(const char *arg)
{
	if (strcmp(arg, "fail") == 0)
		return ON_ERROR_FAIL;
	if (strcmp(arg, "partial") != 0)
		prog_errx(EXIT_USAGE, "bad --on-error '%s': expected fail or "
		    "partial", arg);
	return ON_ERROR_PARTIAL;
}

int
main(int argc, char *argv[])
{
	const char **inputs = xcalloc((size_t)argc, sizeof *inputs);
	int opt, status, i, ninputs = 0;
	size_t k;

	prog_init(argv);
	named = jv_object();
	incomplete = jv_array();
	while ((opt = prog_getopt(argc, argv, ":chr", long_options)) != -1) {
		switch (opt) {
		case 'c':
			compact = 1;
			break;
		case 'r':
			raw = 1;
			break;
		case 'I':
			inputs[ninputs++] = optarg;
			break;
		case 'A':	/* --arg name value, as in jq */
			if (optind >= argc)
				prog_errx(EXIT_USAGE, "--arg %s: no value",
				    optarg);
			check_name(optarg, "--arg");
			named = jv_object_set(named, jv_string(optarg),
			    jv_string(argv[optind++]));
			break;
		case 'E':
			on_error = on_error_of(optarg);
			break;
		case 'T':
			jq_bounds_timeout(&bounds, optarg);
			break;
		case 'M':
			jq_bounds_memory(&bounds, optarg);
			break;
		case 'h':
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			exit(prog_finish_stdout(0));
		case 'V':
			printf("relay-merge %s\n", VERSION);
			exit(prog_finish_stdout(0));
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	for (i = 0; i < ninputs; i++)
		add_named(inputs[i]);
	for (i = optind + 1; i < argc; i++)
		read_file(argv[i], &positional);
	if (optind + 1 == argc && ninputs == 0)
		read_file("-", &positional);
	if (positional.len > 0)
		qsort(positional.items, positional.len,
		    sizeof *positional.items, by_url);
	for (k = 0; k < positional.len; k++)
		positional.items[k].v = checked(positional.items[k].v, "input",
		    positional.items[k].from);
	status = run(argv[optind]);
	if (status == 0 && jv_array_length(jv_copy(incomplete)) > 0)
		status = EXIT_PARTIAL;
	for (k = 0; k < positional.len; k++) {
		jv_free(positional.items[k].v);
		free(positional.items[k].from);
	}
	free(positional.items);
	free(inputs);
	jv_free(named);
	jv_free(incomplete);
	return prog_finish_stdout(status);
}
