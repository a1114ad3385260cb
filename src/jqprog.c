/*
 * A jq program compiled once and run on many inputs (libjq). jq
 * reports compile errors through a callback, and a run's own error as
 * the invalid value that ends it; both become text here.
 */
#include "jqprog.h"

/* jq's reports, formatted as jq does, a line apart. */
static void
collect_error(void *ctx, jv msg)
{
	struct buf *errors = ctx;

	msg = jq_format_error(msg);
	buf_printf(errors, "%s%s", errors->len > 0 ? "\n" : "",
	    jv_string_value(msg));
	jv_free(msg);
}

/*
 * Compiles text with the named arguments args (an object: each key is
 * $key in it). On failure the program is freed and p->errors says why
 * (jq's messages point at the text).
 */
int
jqprog_compile(struct jqprog *p, const char *text, jv args)
{
	p->errors = (struct buf)BUF_INIT;
	if ((p->jq = jq_init()) == NULL)
		out_of_memory();
	jq_set_error_cb(p->jq, collect_error, &p->errors);
	if (jq_compile_args(p->jq, text, args))
		return 0;
	jq_teardown(&p->jq);
	return -1;
}

void
jqprog_start(struct jqprog *p, jv input)
{
	jq_start(p->jq, input, 0);
}

/* The run's next value; an invalid one at its end (see jqprog_failed). */
jv
jqprog_next(struct jqprog *p)
{
	return jq_next(p->jq);
}

/*
 * Takes the value a run ended with: whether it ended by an error, whose
 * message goes to why (a value that is not a string, as JSON).
 */
int
jqprog_failed(jv end, struct buf *why)
{
	jv msg;

	if (!jv_invalid_has_msg(jv_copy(end))) {
		jv_free(end);
		return 0;
	}
	msg = jv_invalid_get_msg(end);
	if (jv_get_kind(msg) == JV_KIND_STRING)
		buf_adds(why, jv_string_value(msg));
	else {
		msg = jv_dump_string(msg, 0);
		buf_printf(why, "%s (not a string)", jv_string_value(msg));
	}
	jv_free(msg);
	return 1;
}

void
jqprog_free(struct jqprog *p)
{
	if (p->jq != NULL)
		jq_teardown(&p->jq);
	buf_free(&p->errors);
}
