/* relay-fetch's options (fetch-options.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/config.h"
#include "base/num.h"
#include "base/prog.h"
#include "http/headers.h"
#include "fetch-names.h"
#include "fetch-options.h"

static const char help_text[] =
    "\nFetches each URL (each line of standard input when none is given)"
    " through\nthe relay cache, many at once, bodies to standard output in"
    " input order.\n\n"
    "  -i, --include                 the status line and fields first\n"
    "  -j, --jobs N                  transfers at once (1-1000, 8)\n"
    "  -o, --output TEMPLATE         bodies to files: %n number, %f file"
    " name, %% %\n"
    "      --create-dirs             create the directories -o names need\n"
    "  -L, --location                follow redirects, up to --max-redirs\n"
    "      --max-redirs N            redirects -L follows (1-100, 20)\n"
    "  -H, --header 'NAME: VALUE'    add a request header field\n"
    "      --records                 one NDJSON record per URL (relay(7))\n"
    "      --unordered               each URL's output as soon as it is"
    " done\n"
    "      --no-cache                revalidate stored responses first\n"
    "      --no-store                store nothing fetched\n"
    "      --offline                 answer from the cache only\n"
    OPTIONS_HELP
    "      --retry N                 retry a failed transfer (0-20, 2)\n"
    "      --upstream-rate RATE      requests every relay-fetch and"
    " relay-serve on\n"
    "                                the cache file send upstream, as 5/s\n"
    "      --upstream-burst N        of them at once (1)\n"
    "      --upstream-wait TIME      for a turn at a time (5s)\n"
    "      --shared redis://HOST[:PORT][/DB]\n"
    "                                look in relay-serve's shared tier"
    " before the\n"
    "                                upstream, and keep what is fetched"
    " there (RELAY_SHARED)\n"
    "      --shared-password-file FILE\n"
    "                                its password, on the first line\n"
    "      --shared-prefix PREFIX    of its keys (relay:)\n"
    "      --shared-timeout MS       for a connect or a command, then"
    " alone (250)\n"
    "      --shared-max-object-size SIZE\n"
    "                                larger bodies are not shared (1M)\n"
    "  -h, --help                    this text\n"
    "      --version                 the version\n"
    "\nTIME is seconds, or a number with s, m, h or d. See relay-fetch(1).\n";

static const char usage_text[] =
    "usage: relay-fetch [-i] [-j N] [-o template] [--create-dirs] [-L]\n"
    "           [--max-redirs N] [-H header]... [--records]\n"
    "           [--unordered] [--no-cache] [--no-store] [--offline]\n"
    "           [--cache file] [--upstream url] [--default-ttl duration]\n"
    "           [--force-ttl duration] [--stale-if-error duration]\n"
    "           [--max-size size] [--max-object-size size]\n"
    "           [--store-set-cookie] [--targeted-cache-control fields]\n"
    "           [--collapse-timeout duration] [--retry N]\n"
    "           [--upstream-rate rate] [--upstream-burst N]\n"
    "           [--upstream-wait duration]\n"
    "           [--connect-timeout duration] [--max-time duration]\n"
    "           [--cacert file] [--shared redis://host:port/db]\n"
    "           [--shared-password-file file] [--shared-prefix prefix]\n"
    "           [--shared-timeout ms] [--shared-max-object-size size]"
    " [url ...]\n";

static void
usage(void)
{
	fputs(usage_text, stderr);
	exit(EXIT_USAGE);
}

enum {
	OPT_CREATE_DIRS = OPTIONS_OWN, OPT_MAX_REDIRS, OPT_NO_CACHE, OPT_NO_STORE,
	OPT_OFFLINE, OPT_RECORDS, OPT_RETRY, OPT_UNORDERED, OPT_VERSION,
};

static const struct option long_options[] = {
	OPTIONS_LONG,
	{ "header", required_argument, NULL, 'H' },
	{ "help", no_argument, NULL, 'h' },
	{ "include", no_argument, NULL, 'i' },
	{ "jobs", required_argument, NULL, 'j' },
	{ "create-dirs", no_argument, NULL, OPT_CREATE_DIRS },
	{ "location", no_argument, NULL, 'L' },
	{ "max-redirs", required_argument, NULL, OPT_MAX_REDIRS },
	{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
	{ "no-store", no_argument, NULL, OPT_NO_STORE },
	{ "offline", no_argument, NULL, OPT_OFFLINE },
	{ "output", required_argument, NULL, 'o' },
	{ "records", no_argument, NULL, OPT_RECORDS },
	{ "retry", required_argument, NULL, OPT_RETRY },
	{ "unordered", no_argument, NULL, OPT_UNORDERED },
	{ "version", no_argument, NULL, OPT_VERSION },
	SHARED_LONG,
	{ "shared-max-object-size", required_argument, NULL,
	    SHARED_OPT_MAX_OBJECT },
	{ NULL, 0, NULL, 0 },
};

/*
 * Reads the options into o, and what the relay's shared ones (options.h)
 * make of them; optind is then at the first URL.
 */
void
fetch_options_parse(struct fetch_options *o, int argc, char **argv)
{
	long redirect_limit = 20;	/* --max-redirs */
	const char *why;
	int opt;

	while ((opt = prog_getopt(argc, argv, ":H:hij:Lo:",
	    long_options)) != -1) {
		if (options_parse(&o->relay, opt, optarg) ||
		    shared_option(&o->shared, opt, optarg))
			continue;
		switch (opt) {
		case 'H':
			if (headers_add_line(&o->headers, optarg, &why) < 0)
				prog_errx(EXIT_USAGE, "bad header '%s': %s",
				    optarg, why);
			break;
		case 'h':
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			exit(prog_finish_stdout(0));
		case 'i':
			o->include_head = 1;
			break;
		case 'o':
			check_template(optarg);
			o->output_template = optarg;
			break;
		case OPT_CREATE_DIRS:
			o->create_dirs = 1;
			break;
		case 'L':
			o->max_redirects = -1;	/* set below */
			break;
		case OPT_MAX_REDIRS:
			redirect_limit = (long)prog_range("--max-redirs",
			    optarg, 1, 100);
			break;
		case 'j':
			o->jobs = (int)prog_range("-j", optarg, 1, 1000);
			break;
		case OPT_NO_CACHE:
			o->no_cache = 1;
			break;
		case OPT_NO_STORE:
			o->no_store = 1;
			break;
		case OPT_OFFLINE:
			o->offline = 1;
			break;
		case OPT_RECORDS:
			o->records = 1;
			break;
		case OPT_RETRY:
			o->retries = prog_range("--retry", optarg, 0, 20);
			break;
		case OPT_UNORDERED:
			o->unordered = 1;
			break;
		case OPT_VERSION:
			printf("relay-fetch %s\n", VERSION);
			exit(prog_finish_stdout(0));
		default:
			usage();
		}
	}
	if (o->max_redirects != 0)
		o->max_redirects = redirect_limit;
	if (o->records && o->output_template != NULL)	/* bodies go in records */
		prog_errx(EXIT_USAGE, "--records and -o cannot be used "
		    "together");
	options_finish(&o->relay);
}
