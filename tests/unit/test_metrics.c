/*
 * Tests the counters (lib/net/metrics.h) and the admin endpoints' pure
 * part (lib/serve/admin.h): what an answer counts, what the writer is handed,
 * the exposition formats, and who may see them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/metrics.h"
#include "serve/admin.h"
#include "unit.h"

static int
has_line(const struct buf *b, const char *line)
{
	const char *p = buf_cstr((struct buf *)b);
	size_t n = strlen(line);

	for (; p != NULL; p = strchr(p, '\n'), p = p != NULL ? p + 1 : NULL)
		if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
			return 1;
	printf("# no line '%s' in:\n%s", line, buf_cstr((struct buf *)b));
	return 0;
}

/* The writer gets deltas by name; what was taken is not taken again. */
static void
counting(void)
{
	struct buf lines = BUF_INIT;

	metrics_answered("hit", 0, 200, 100);
	metrics_answered("hit", 0, 304, 0);
	metrics_answered("hit", 1, 200, 3);	/* from the shared tier */
	metrics_answered("expired", 0, 200, 7);	/* a miss */
	metrics_answered("throttled", 0, 429, 99);	/* not the cache's bytes */
	metrics_answered("-", 0, 400, 10);
	metrics_upstream_sent();
	metrics_upstream_head(30);
	CHECK(metrics_take(&lines) == 22);	/* 8 buckets of 12 among them */
	CHECK(has_line(&lines, "2 relay_requests_total{outcome=\"hit\",tier=\"local\"}"));
	CHECK(has_line(&lines, "1 relay_requests_total{outcome=\"hit\",tier=\"shared\"}"));
	CHECK(has_line(&lines, "1 relay_requests_total{outcome=\"miss\",tier=\"upstream\"}"));
	CHECK(has_line(&lines, "1 relay_requests_total{outcome=\"throttled\",tier=\"none\"}"));
	CHECK(has_line(&lines, "1 relay_requests_total{outcome=\"error\",tier=\"none\"}"));
	CHECK(has_line(&lines, "3 relay_responses_total{code=\"2xx\"}"));
	CHECK(has_line(&lines, "1 relay_responses_total{code=\"3xx\"}"));
	CHECK(has_line(&lines, "2 relay_responses_total{code=\"4xx\"}"));
	CHECK(has_line(&lines, "103 relay_sent_bytes_total{source=\"cache\"}"));
	CHECK(has_line(&lines, "7 relay_sent_bytes_total{source=\"upstream\"}"));
	CHECK(has_line(&lines, "1 relay_upstream_requests_total"));
	CHECK(has_line(&lines, "1 relay_upstream_duration_seconds_bucket{le=\"0.05\"}"));
	CHECK(has_line(&lines, "30000 relay_upstream_duration_seconds_sum"));
	CHECK(strstr(buf_cstr(&lines), "le=\"0.025\"") == NULL);
	buf_reset(&lines);
	CHECK(metrics_take(&lines) == 0 && lines.len == 0);
	buf_free(&lines);
}

/* The file's rows, added up, shown in the text format and as JSON. */
static void
exposition(void)
{
	long long *v = calloc(metrics_count(), sizeof *v);
	struct buf out = BUF_INIT;
	static const char sum[] = "relay_upstream_duration_seconds_sum";

	static const char shared_hit[] =
	    "relay_requests_total{outcome=\"hit\",tier=\"shared\"}";

	/* a file written before tiers: a hit was this host's */
	metrics_add_row(v, "relay_requests_total{outcome=\"hit\"}", 35, 5);
	metrics_add_row(v, "relay_requests_total{outcome=\"miss\"}", 36, 4);
	metrics_add_row(v, shared_hit, sizeof shared_hit - 1, 2);
	metrics_add_row(v, sum, sizeof sum - 1, 1250000);
	metrics_add_row(v, "relay_from_the_future_total", 27, 9);
	metrics_prometheus(&out, v, &(struct metrics_gauges){ 3, 4096, { 1, 0, 2 }, 1 });
	CHECK(has_line(&out, "# TYPE relay_requests_total counter"));
	CHECK(has_line(&out, "relay_requests_total{outcome=\"hit\",tier=\"local\"} 5"));
	CHECK(has_line(&out, "relay_requests_total{outcome=\"hit\",tier=\"shared\"} 2"));
	CHECK(has_line(&out, "relay_requests_total{outcome=\"miss\",tier=\"upstream\"} 4"));
	CHECK(has_line(&out, "relay_requests_total{outcome=\"stale\",tier=\"local\"} 0"));
	CHECK(has_line(&out, "# TYPE relay_upstream_duration_seconds histogram"));
	CHECK(has_line(&out, "relay_upstream_duration_seconds_sum 1.250000"));
	CHECK(has_line(&out, "relay_cache_entries 3"));
	CHECK(has_line(&out, "relay_queue_depth{state=\"failed\"} 2"));
	CHECK(has_line(&out, "relay_shared_up 1"));
	CHECK(strstr(buf_cstr(&out), "future") == NULL);
	buf_reset(&out);
	metrics_json(&out, v);
	CHECK(strncmp(buf_cstr(&out), "\"requests\":{\"hit\":7,", 20) == 0);
	CHECK(strstr(buf_cstr(&out), ",\"requests_by_tier\":{\"local\":5,"
	    "\"shared\":2,\"upstream\":4,\"none\":0}") != NULL);
	CHECK(strstr(buf_cstr(&out), "\"sum\":1.250000,\"count\":0}") != NULL);
	buf_reset(&out);
	metrics_text(&out, v, 0);
	CHECK(has_line(&out, "requests.hit\t7"));
	CHECK(has_line(&out, "requests_by_tier.shared\t2"));
	CHECK(has_line(&out, "upstream_duration_seconds.sum\t1.250000"));
	buf_free(&out);
	free(v);
}

static void
admission(void)
{
	struct admin *open = admin_new("unused.db", NULL);
	struct admin *locked = admin_new("unused.db", "tok");

	CHECK(admin_target("/_relay/stats"));
	CHECK(admin_target("/_relay"));
	CHECK(!admin_target("/_relayed"));
	CHECK(!admin_target("/x/_relay/stats"));
	CHECK(admin_allowed(open, "127.0.0.1:4000", ""));
	CHECK(admin_allowed(open, "127.9.9.9:4000", ""));
	CHECK(admin_allowed(open, "[::1]:4000", ""));
	CHECK(admin_allowed(open, "[::ffff:127.0.0.1]:4000", ""));
	CHECK(admin_allowed(open, "::1", ""));
	CHECK(!admin_allowed(open, "::10", ""));
	CHECK(!admin_allowed(open, "[::1f]:4000", ""));
	CHECK(!admin_allowed(open, "10.0.0.1:4000", ""));
	CHECK(!admin_allowed(open, "-", ""));
	CHECK(admin_allowed(locked, "10.0.0.1:4000",
	    "Authorization: bearer tok\r\n"));
	CHECK(!admin_allowed(locked, "10.0.0.1:4000",
	    "Authorization: Bearer to\r\n"));
	CHECK(!admin_allowed(locked, "10.0.0.1:4000",
	    "Authorization: Bearer tokk\r\n"));
	CHECK(!admin_allowed(locked, "10.0.0.1:4000",
	    "Authorization: Basic tok\r\n"));
	CHECK(!admin_allowed(open, "10.0.0.1:4000",
	    "Authorization: Bearer tok\r\n"));
	admin_free(open);
	admin_free(locked);
}

static const struct unit_test tests[] = {
	TEST(counting),
	TEST(exposition),
	TEST(admission),
};

UNIT_MAIN(tests)
