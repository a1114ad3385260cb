/*
 * The options that relay-fetch and relay-serve share, parsed once;
 * a bad value exits with the option, the value and what was expected.
 */
#include <sysexits.h>
#include <unistd.h>

#include "base/num.h"
#include "base/prog.h"
#include "through/options.h"

/* Applies option opt; returns 0 if it is not one of the shared ones. */
int
options_parse(struct options *o, int opt, const char *arg)
{
	switch (opt) {
	case OPTIONS_CACHE:
		o->cache = arg;
		break;
	case OPTIONS_CACERT:
		if (access(arg, R_OK) < 0)
			prog_err(EX_NOINPUT, "cannot read --cacert '%s'", arg);
		o->limits.ca_file = arg;
		break;
	case OPTIONS_COLLAPSE_TIMEOUT:
		o->collapse_ms = prog_duration("--collapse-timeout", arg) * 1000;
		break;
	case OPTIONS_CONNECT_TIMEOUT:
		o->limits.connect_timeout_ms =
		    prog_duration("--connect-timeout", arg) * 1000;
		break;
	case OPTIONS_DEFAULT_TTL:
		o->rules.default_ttl = prog_duration("--default-ttl", arg);
		break;
	case OPTIONS_FORCE_TTL:
		o->rules.force_ttl = prog_duration("--force-ttl", arg);
		break;
	case OPTIONS_MAX_OBJECT_SIZE:
		o->rules.max_object = prog_size("--max-object-size", arg);
		o->max_object_given = 1;
		break;
	case OPTIONS_MAX_SIZE:
		o->max_size = prog_size("--max-size", arg);
		if (!o->max_object_given)	/* one body cannot empty it */
			o->rules.max_object = o->max_size / 4;
		break;
	case OPTIONS_MAX_TIME:
		o->limits.timeout_ms = prog_duration("--max-time", arg) * 1000;
		break;
	case OPTIONS_STALE_IF_ERROR:
		o->stale_if_error = prog_duration("--stale-if-error", arg);
		break;
	case OPTIONS_STORE_SET_COOKIE:
		o->rules.store_set_cookie = 1;
		break;
	case OPTIONS_TARGETED_CACHE_CONTROL:
		if (policy_set_targets(arg) < 0)
			prog_errx(EXIT_USAGE,
			    "bad --targeted-cache-control '%s': "
			    "expected up to %d field names separated by commas, "
			    "or none", arg, POLICY_MAX_TARGETS);
		break;
	case OPTIONS_UPSTREAM:
		o->upstream = arg;
		break;
	case OPTIONS_UPSTREAM_BURST:
		if (num_parse(arg, 1, 1000000, &o->upstream_burst) < 0)
			prog_errx(EXIT_USAGE, "bad --upstream-burst '%s': "
			    "expected 1 to 1000000", arg);
		break;
	case OPTIONS_UPSTREAM_RATE:
		o->upstream_rate = arg;
		break;
	case OPTIONS_UPSTREAM_WAIT:
		o->upstream_wait_ms = prog_duration("--upstream-wait", arg) *
		    1000;
		break;
	default:
		return 0;
	}
	return 1;
}

/* Once every option is read: what depends on more than one of them. */
void
options_finish(struct options *o)
{
	if (o->upstream_rate != NULL && gcra_parse(o->upstream_rate,
	    o->upstream_burst, &o->upstream_limit) < 0)
		prog_errx(EXIT_USAGE, "bad --upstream-rate '%s': expected a "
		    "count per s, m, h or d, as 5/s", o->upstream_rate);
}
