/*
 * Counters of what relay-serve does: a fixed set of series, each an
 * index into this process's pending counts; the writer adds them to
 * the cache file's counters table by name ("relay_requests_total
 * {outcome="hit"}"), so a newer relay with more series reads an older
 * file. Names follow Prometheus's conventions: the relay_ prefix,
 * _total counters, base units (seconds, bytes), labels of a few known
 * values and never a URL. Requests have two: how they were answered,
 * and which tier answered them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "net/metrics.h"

enum kind { COUNTER, GAUGE, HISTOGRAM };

struct family {
	const char		*name;
	const char		*short_name;	/* in JSON and relay-cache stats */
	enum kind		 kind;
	const char		*help;
	const char		*label;		/* NULL: one series */
	const char *const	*values;	/* the label's; histogram: le */
	const char		*label2;	/* NULL: one label */
	const char *const	*values2;
};

static const char *const outcomes[] = {
	"hit", "stale", "miss", "revalidated", "collapsed", "bypass",
	"merged", "throttled", "queued", "error", NULL,
};
/* Which tier answered: this host's file, the shared one, the upstream. */
static const char *const tiers[] = {
	"local", "shared", "upstream", "none", NULL,
};
enum { TIER_LOCAL, TIER_SHARED, TIER_UPSTREAM, TIER_NONE, TIERS };
/* The tier of each outcome but the shared tier's answers. */
static const int outcome_tiers[] = {
	TIER_LOCAL, TIER_LOCAL, TIER_UPSTREAM, TIER_UPSTREAM, TIER_LOCAL,
	TIER_UPSTREAM, TIER_NONE, TIER_NONE, TIER_NONE, TIER_NONE,
};
static const char *const classes[] = { "1xx", "2xx", "3xx", "4xx", "5xx", NULL };
static const char *const sources[] = { "cache", "upstream", NULL };
static const char *const results[] = { "delivered", "retried", "failed", NULL };
/* Prometheus's default buckets, in seconds, and in microseconds. */
static const char *const bounds[] = {
	"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
	"5", "10", "+Inf", NULL,
};
static const long long bounds_us[] = {
	5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
	5000000, 10000000,
};

enum {
	F_REQUESTS, F_RESPONSES, F_SENT_BYTES, F_UPSTREAM_REQUESTS,
	F_UPSTREAM_ERRORS, F_UPSTREAM_SECONDS, F_DELIVERIES, F_EVICTIONS,
	F_SHARED_LOST, F_COUNT
};

static const struct family families[F_COUNT] = {
	[F_REQUESTS] = { "relay_requests_total", "requests", COUNTER,
	    "Requests answered, by how and by which tier.", "outcome",
	    outcomes, "tier", tiers },
	[F_RESPONSES] = { "relay_responses_total", "responses", COUNTER,
	    "Responses sent, by status class.", "code", classes },
	[F_SENT_BYTES] = { "relay_sent_bytes_total", "sent_bytes", COUNTER,
	    "Response body bytes sent, by where they came from.", "source",
	    sources },
	[F_UPSTREAM_REQUESTS] = { "relay_upstream_requests_total",
	    "upstream_requests", COUNTER, "Requests sent to the upstream.",
	    NULL, NULL },
	[F_UPSTREAM_ERRORS] = { "relay_upstream_errors_total",
	    "upstream_errors", COUNTER,
	    "Upstream requests that got no complete response.", NULL, NULL },
	[F_UPSTREAM_SECONDS] = { "relay_upstream_duration_seconds",
	    "upstream_duration_seconds", HISTOGRAM,
	    "Time until the upstream's response head.", "le", bounds },
	[F_DELIVERIES] = { "relay_queue_deliveries_total", "queue_deliveries",
	    COUNTER, "Attempts to deliver queued requests, by how they ended.",
	    "result", results },
	/* counted by the store itself, in the transaction that evicts */
	[F_EVICTIONS] = { "relay_cache_evictions_total", "evictions", COUNTER,
	    "Entries removed to keep the cache within --max-size.", NULL,
	    NULL },
	[F_SHARED_LOST] = { "relay_shared_failures_total", "shared_failures",
	    COUNTER, "Times the shared tier (--shared) was lost: a connect "
	    "or a command failed or was too slow.", NULL, NULL },
};

/* The series, laid out once: where each family starts, and the names. */
static struct {
	size_t		 base[F_COUNT + 1];
	char		**names;	/* as the file keeps them */
	long long	*pending;	/* this process's, not yet taken */
} series;

static size_t
values_count(const char *const *values)
{
	size_t n = 0;

	while (values[n] != NULL)
		n++;
	return n;
}

/*
 * How many series a family has: a histogram's buckets, sum and count;
 * with two labels, one for each pair of their values.
 */
static size_t
family_size(const struct family *f)
{
	size_t n;

	if (f->values == NULL)
		return 1;
	n = values_count(f->values);
	if (f->values2 != NULL)
		return n * values_count(f->values2);
	return f->kind == HISTOGRAM ? n + 2 : n;
}

/* The k-th series of family f, as the file names it. */
static char *
series_name(const struct family *f, size_t k)
{
	struct buf out = BUF_INIT;
	size_t n = family_size(f);

	buf_adds(&out, f->name);
	if (f->kind == HISTOGRAM)
		buf_adds(&out, k < n - 2 ? "_bucket" : k == n - 2 ? "_sum" :
		    "_count");
	if (f->values2 != NULL) {
		n = values_count(f->values2);
		buf_printf(&out, "{%s=\"%s\",%s=\"%s\"}", f->label,
		    f->values[k / n], f->label2, f->values2[k % n]);
	} else if (f->label != NULL && (f->kind != HISTOGRAM || k < n - 2))
		buf_printf(&out, "{%s=\"%s\"}", f->label, f->values[k]);
	return buf_take(&out);
}

static void
layout(void)
{
	size_t i = 0, k;
	int f;

	if (series.names != NULL)
		return;
	for (f = 0; f < F_COUNT; f++) {
		series.base[f] = i;
		i += family_size(&families[f]);
	}
	series.base[F_COUNT] = i;
	series.names = xcalloc(i, sizeof *series.names);
	series.pending = xcalloc(i, sizeof *series.pending);
	for (f = 0; f < F_COUNT; f++)
		for (k = 0; k < family_size(&families[f]); k++)
			series.names[series.base[f] + k] =
			    series_name(&families[f], k);
}

size_t
metrics_count(void)
{
	layout();
	return series.base[F_COUNT];
}

/* The index of the series named name (n bytes), or -1. */
static long long
metrics_find(const char *name, size_t n)
{
	size_t i, count = metrics_count();

	for (i = 0; i < count; i++)
		if (strlen(series.names[i]) == n &&
		    memcmp(series.names[i], name, n) == 0)
			return (long long)i;
	return -1;
}

static void
count(int family, size_t k, long long n)
{
	layout();
	series.pending[series.base[family] + k] += n;
}

static size_t
value_index(const char *const *values, const char *value)
{
	size_t i;

	for (i = 0; strcmp(values[i], value) != 0; i++)
		;
	return i;
}

/*
 * A request's series named as a relay without tiers named it
 * (relay_requests_total{outcome="hit"}): its outcome's own tier's; -1
 * if name is not one.
 */
static long long
untiered_find(const char *name, size_t n)
{
	static const char head[] = "relay_requests_total{outcome=\"";
	size_t o, len = sizeof head - 1;

	if (n < len + 2 || memcmp(name, head, len) != 0 ||
	    memcmp(name + n - 2, "\"}", 2) != 0)
		return -1;
	for (o = 0; outcomes[o] != NULL; o++)
		if (strlen(outcomes[o]) == n - len - 2 &&
		    memcmp(name + len, outcomes[o], n - len - 2) == 0)
			return (long long)(series.base[F_REQUESTS] + o * TIERS +
			    (size_t)outcome_tiers[o]);
	return -1;
}

/*
 * A row of the file's counters (store_counters) added to ctx, an array
 * of metrics_count() values; a series this relay does not know is
 * left out.
 */
void
metrics_add_row(void *ctx, const char *name, size_t n, long long value)
{
	long long *v = ctx, i = metrics_find(name, n);

	if (i < 0)
		i = untiered_find(name, n);
	if (i >= 0)
		v[i] += value;
}

/*
 * One answer sent: how (the access log's word for it), whether the
 * shared tier had it, its status and its body bytes, which came from
 * the cache or from the upstream unless relay-serve made the answer
 * itself.
 */
void
metrics_answered(const char *how, int shared, int status, long long bytes)
{
	static const struct { const char *log, *outcome; int source; } words[] = {
		{ "hit", "hit", 0 }, { "stale", "stale", 0 },
		{ "revalidated", "revalidated", 0 },
		{ "collapsed", "collapsed", 0 }, { "miss", "miss", 1 },
		{ "expired", "miss", 1 }, { "bypass", "bypass", 1 },
		{ "merge", "merged", -1 }, { "throttled", "throttled", -1 },
		{ "queued", "queued", -1 },
	};
	size_t i, o;

	for (i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strcmp(how, words[i].log) == 0)
			break;
	o = value_index(outcomes, i < sizeof words / sizeof words[0] ?
	    words[i].outcome : "error");
	count(F_REQUESTS, o * TIERS + (size_t)(shared ? TIER_SHARED :
	    outcome_tiers[o]), 1);
	if (i < sizeof words / sizeof words[0] && words[i].source >= 0)
		count(F_SENT_BYTES, (size_t)words[i].source, bytes);
	if (status >= 100 && status <= 599)
		count(F_RESPONSES, (size_t)(status / 100 - 1), 1);
}

/* A request went to the upstream. */
void
metrics_upstream_sent(void)
{
	count(F_UPSTREAM_REQUESTS, 0, 1);
}

/* Its response head came after ms. */
void
metrics_upstream_head(long long ms)
{
	size_t n = sizeof bounds_us / sizeof bounds_us[0], i;

	for (i = 0; i < n; i++)
		if (ms * 1000 <= bounds_us[i])
			count(F_UPSTREAM_SECONDS, i, 1);
	count(F_UPSTREAM_SECONDS, n, 1);		/* +Inf */
	count(F_UPSTREAM_SECONDS, n + 1, ms * 1000);	/* sum, in us */
	count(F_UPSTREAM_SECONDS, n + 2, 1);		/* count */
}

/* It got no complete response. */
void
metrics_upstream_failed(void)
{
	count(F_UPSTREAM_ERRORS, 0, 1);
}

/* The shared tier was lost: each host goes on alone. */
void
metrics_shared_lost(void)
{
	count(F_SHARED_LOST, 0, 1);
}

/* A queued request's attempt ended: delivered, retried or failed. */
void
metrics_delivery(const char *result)
{
	count(F_DELIVERIES, value_index(results, result), 1);
}

/*
 * Hands over what was counted since the last time, as lines of
 * "DELTA SERIES" for the writer; returns how many.
 */
int
metrics_take(struct buf *out)
{
	size_t i, n = metrics_count();
	int lines = 0;

	for (i = 0; i < n; i++)
		if (series.pending[i] != 0) {
			buf_printf(out, "%lld %s\n", series.pending[i],
			    series.names[i]);
			series.pending[i] = 0;
			lines++;
		}
	return lines;
}

/*
 * v and the gauges that are sums (entries, bytes) as rows of "VALUE
 * NAME", for another host to add up (metrics_add_rows).
 */
void
metrics_rows(struct buf *out, const long long *v,
    const struct metrics_gauges *g)
{
	size_t i, n = metrics_count();

	for (i = 0; i < n; i++)
		if (v[i] != 0)
			buf_printf(out, "%lld %s\n", v[i], series.names[i]);
	buf_printf(out, "%lld relay_cache_entries\n%lld relay_cache_bytes\n",
	    g->entries, g->bytes);
}

/*
 * Adds another host's rows (metrics_rows) to v and g. They came
 * through Redis: a line that is not a row, or a series this relay
 * does not know, is left out.
 */
void
metrics_add_rows(long long *v, struct metrics_gauges *g, const char *p,
    size_t n)
{
	const char *end = p + n, *eol, *space;
	char digits[24];
	long long value;

	for (; p < end; p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		if ((space = memchr(p, ' ', (size_t)(eol - p))) == NULL ||
		    (size_t)(space - p) >= sizeof digits)
			continue;
		memcpy(digits, p, (size_t)(space - p));
		digits[space - p] = '\0';
		if (num_parse(digits, 0, 1LL << 60, &value) < 0)
			continue;
		space++;
		if ((size_t)(eol - space) == 19 &&
		    memcmp(space, "relay_cache_entries", 19) == 0)
			g->entries += value;
		else if ((size_t)(eol - space) == 17 &&
		    memcmp(space, "relay_cache_bytes", 17) == 0)
			g->bytes += value;
		else
			metrics_add_row(v, space, (size_t)(eol - space), value);
	}
}

/* A value as Prometheus and JSON write it: sums are kept in us. */
static void
add_value(struct buf *out, const struct family *f, size_t k, long long v)
{
	if (f->kind == HISTOGRAM && k == family_size(f) - 2)
		buf_printf(out, "%lld.%06lld", v / 1000000, v % 1000000);
	else
		buf_printf(out, "%lld", v);
}

/* The text exposition format (version 0.0.4), every series. */
void
metrics_prometheus(struct buf *out, const long long *v,
    const struct metrics_gauges *g)
{
	const struct family *f;
	size_t i = 0, k, n;

	for (f = families; f < families + F_COUNT; f++) {
		buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name,
		    f->help, f->name, f->kind == HISTOGRAM ? "histogram" :
		    "counter");
		for (k = 0, n = family_size(f); k < n; k++, i++) {
			buf_adds(out, series.names[i]);
			buf_addc(out, ' ');
			add_value(out, f, k, v[i]);
			buf_addc(out, '\n');
		}
	}
	buf_printf(out, "# HELP relay_cache_entries Responses stored.\n"
	    "# TYPE relay_cache_entries gauge\nrelay_cache_entries %lld\n"
	    "# HELP relay_cache_bytes Body bytes stored.\n"
	    "# TYPE relay_cache_bytes gauge\nrelay_cache_bytes %lld\n"
	    "# HELP relay_queue_depth Queued requests not delivered, by state.\n"
	    "# TYPE relay_queue_depth gauge\n"
	    "relay_queue_depth{state=\"queued\"} %lld\n"
	    "relay_queue_depth{state=\"delivering\"} %lld\n"
	    "relay_queue_depth{state=\"failed\"} %lld\n",
	    g->entries, g->bytes, g->queue[0], g->queue[1], g->queue[2]);
	if (g->shared_up >= 0)
		buf_printf(out, "# HELP relay_shared_up Whether the process "
		    "that answered reaches the shared tier.\n"
		    "# TYPE relay_shared_up gauge\nrelay_shared_up %d\n",
		    g->shared_up);
}

/*
 * A two-label family's v (from its first series) summed over the
 * other label: by its first label's values (second 0), a group named
 * as the family, or by its second's, named NAME_by_LABEL2. Returns
 * the values the sums are by.
 */
static const char *const *
label_sums(const struct family *f, const long long *v, int second,
    long long *sums, struct buf *group)
{
	size_t n1 = values_count(f->values), n2 = values_count(f->values2);
	size_t k;

	memset(sums, 0, (second ? n2 : n1) * sizeof *sums);
	for (k = 0; k < n1 * n2; k++)
		sums[second ? k % n2 : k / n2] += v[k];
	buf_reset(group);
	buf_adds(group, f->short_name);
	if (second)
		buf_printf(group, "_by_%s", f->label2);
	return second ? f->values2 : f->values;
}

/* "requests" by outcome, then "requests_by_tier": sums of the pairs. */
static void
json_two_labels(struct buf *out, const struct family *f, const long long *v)
{
	struct buf group = BUF_INIT;
	const char *const *values;
	long long sums[16];
	int second;
	size_t k;

	for (second = 0; second < 2; second++) {
		values = label_sums(f, v, second, sums, &group);
		if (second)
			buf_printf(out, ",\"%s\":", buf_cstr(&group));
		for (k = 0; values[k] != NULL; k++)
			buf_printf(out, "%s\"%s\":%lld", k > 0 ? "," : "{",
			    values[k], sums[k]);
		buf_addc(out, '}');
	}
	buf_free(&group);
}

/*
 * The same as JSON object members, without the braces: one a family,
 * an object of its labels' values if it has a label; a family of two
 * labels is two, each summed over the other label.
 */
void
metrics_json(struct buf *out, const long long *v)
{
	const struct family *f;
	size_t i = 0, k;

	for (f = families; f < families + F_COUNT; f++) {
		buf_printf(out, "%s\"%s\":", f == families ? "" : ",",
		    f->short_name);
		if (f->values2 != NULL) {
			json_two_labels(out, f, v + i);
			i += family_size(f);
			continue;
		}
		if (f->values == NULL) {
			buf_printf(out, "%lld", v[i++]);
			continue;
		}
		buf_adds(out, f->kind == HISTOGRAM ? "{\"buckets\":{" : "{");
		for (k = 0; f->values[k] != NULL; k++, i++) {
			buf_printf(out, "%s\"%s\":", k > 0 ? "," : "",
			    f->values[k]);
			add_value(out, f, k, v[i]);
		}
		if (f->kind == HISTOGRAM) {
			buf_adds(out, "},\"sum\":");
			add_value(out, f, k, v[i++]);
			buf_printf(out, ",\"count\":%lld", v[i++]);
		}
		buf_addc(out, '}');
	}
}

/* requests.hit…, then requests_by_tier.local…: sums of the pairs. */
static void
text_two_labels(struct buf *out, const struct family *f, const long long *v,
    int aligned)
{
	struct buf group = BUF_INIT, name = BUF_INIT;
	const char *const *values;
	long long sums[16];
	int second;
	size_t k;

	for (second = 0; second < 2; second++) {
		values = label_sums(f, v, second, sums, &group);
		for (k = 0; values[k] != NULL; k++) {
			buf_reset(&name);
			buf_printf(&name, "%s.%s", buf_cstr(&group), values[k]);
			buf_printf(out, aligned ? "%-32s %lld\n" : "%s\t%lld\n",
			    buf_cstr(&name), sums[k]);
		}
	}
	buf_free(&group);
	buf_free(&name);
}

/*
 * The same as lines of "NAME VALUE" for relay-cache stats, with a tab
 * between (aligned for a terminal): requests.hit, upstream_requests…
 */
void
metrics_text(struct buf *out, const long long *v, int aligned)
{
	const struct family *f;
	struct buf name = BUF_INIT;
	size_t i = 0, k, n;

	for (f = families; f < families + F_COUNT; f++) {
		if (f->values2 != NULL) {
			text_two_labels(out, f, v + i, aligned);
			i += family_size(f);
			continue;
		}
		for (k = 0, n = family_size(f); k < n; k++, i++) {
			if (f->kind == HISTOGRAM && k < n - 2)
				continue;	/* buckets: in JSON */
			buf_reset(&name);
			buf_adds(&name, f->short_name);
			if (f->kind == HISTOGRAM)
				buf_adds(&name, k == n - 2 ? ".sum" : ".count");
			else if (f->values != NULL)
				buf_printf(&name, ".%s", f->values[k]);
			buf_printf(out, aligned ? "%-32s " : "%s\t",
			    buf_cstr(&name));
			add_value(out, f, k, v[i]);
			buf_addc(out, '\n');
		}
	}
	buf_free(&name);
}
